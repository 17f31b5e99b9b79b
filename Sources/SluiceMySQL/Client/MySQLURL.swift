import Foundation
import SluiceCore

/// A MySQL or MariaDB server address: `mysql://user:password@host:3306/database?tls=require`
/// (`mariadb://` too). The user and password may be percent-encoded. The password never
/// appears in ``description``, logs or errors.
///
/// `tls`: `disable`, `prefer` (the default: TLS when the server offers it), `require` (TLS or
/// refuse), `verify-full` (TLS with the server's certificate checked against `ca`, or the
/// system's roots, and its name against the host).
///
/// A full `caching_sha2_password` login (a password the server has not cached) without TLS
/// sends the password encrypted with the server's RSA public key, and only when one of these
/// says which key: `server_public_key=/path/key.pem` (the key, pinned, as the mysql client's
/// `--server-public-key-path`), or `get_server_public_key=true` (asked of the server, as
/// `--get-server-public-key`: whoever answers for the server can then read the password).
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
    /// The server's RSA public key (a PEM file) for a full login without TLS.
    public var serverPublicKeyFile: String?
    /// Whether a full login without TLS may ask the server for its RSA public key.
    public var getServerPublicKey = false
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
            case "server_public_key", "server-public-key-path":
                serverPublicKeyFile = item.value
            case "get_server_public_key", "get-server-public-key", "allowPublicKeyRetrieval":
                guard let flag = ["true": true, "1": true, "false": false, "0": false][(item.value ?? "true").lowercased()] else {
                    throw SluiceError(.configuration, "get_server_public_key in the MySQL URL is true or false, not '\(item.value ?? "")'", retryable: false)
                }
                getServerPublicKey = flag
            default:
                throw SluiceError(
                    .configuration, "unknown parameter '\(item.name)' in the MySQL URL; known: tls, ca, server_public_key, get_server_public_key",
                    retryable: false)
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
