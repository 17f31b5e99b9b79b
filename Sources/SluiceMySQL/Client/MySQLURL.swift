import Foundation
import SluiceCore

/// A MySQL or MariaDB server address: `mysql://user:password@host:3306/database?tls=require`
/// (`mariadb://` too). The user and password may be percent-encoded. The password never
/// appears in ``description``, logs or errors.
///
/// `tls`: `disable`, `prefer` (the default: TLS when the server offers it), `require` (TLS or
/// refuse), `verify-full` (TLS with the server's certificate checked against `ca`, or the
/// system's roots, and its name against the host).
public struct MySQLURL: Sendable, Hashable, CustomStringConvertible {
    public enum TLSMode: String, Sendable, Hashable {
        case disable, prefer, require
        case verifyFull = "verify-full"
    }

    public var host: String
    public var port: Int
    public var user: String
    public var password: String
    public var database: String?
    public var tls: TLSMode
    /// A PEM file of certificate authorities for `verify-full`.
    public var caFile: String?
    public let redacted: String

    public init(_ text: String) throws {
        guard let components = URLComponents(string: text), ["mysql", "mariadb"].contains(components.scheme ?? "") else {
            throw SluiceError(.configuration, "a MySQL URL looks like mysql://user:password@host:3306/database (mariadb:// too)", retryable: false)
        }
        guard let host = components.host, !host.isEmpty else {
            throw SluiceError(.configuration, "the MySQL URL names no host (mysql://user:password@host:3306/database)", retryable: false)
        }
        self.host = host
        port = components.port ?? 3306
        user = components.percentEncodedUser.flatMap { $0.removingPercentEncoding } ?? "root"
        password = components.percentEncodedPassword.flatMap { $0.removingPercentEncoding } ?? ""
        let path = components.path.trimmingCharacters(in: CharacterSet(charactersIn: "/"))
        database = path.isEmpty ? nil : path
        tls = .prefer
        for item in components.queryItems ?? [] {
            switch item.name {
            case "tls", "ssl-mode", "sslmode":
                let value = (item.value ?? "").lowercased().replacingOccurrences(of: "_", with: "-")
                guard
                    let mode = TLSMode(
                        rawValue: value == "verify-identity" ? "verify-full" : value == "disabled" ? "disable" : value == "required" ? "require" : value)
                else {
                    throw SluiceError(
                        .configuration, "unknown tls mode '\(item.value ?? "")' in the MySQL URL; use disable, prefer, require or verify-full", retryable: false
                    )
                }
                tls = mode
            case "ca", "ssl-ca", "sslrootcert":
                caFile = item.value
            default:
                throw SluiceError(.configuration, "unknown parameter '\(item.name)' in the MySQL URL; known: tls, ca", retryable: false)
            }
        }
        redacted = Redaction.url(text)
    }

    public var description: String { redacted }

    /// `message` with the password masked.
    public func scrub(_ message: String) -> String {
        password.isEmpty ? message : message.replacingOccurrences(of: password, with: "***")
    }
}

extension KeyedDecodingContainer {
    func decodeMySQLURL(forKey key: Key) throws -> MySQLURL {
        do {
            return try MySQLURL(try decode(String.self, forKey: key))
        } catch let e as SluiceError {
            throw try superDecoder(forKey: key).configError(e.message)
        }
    }
}
