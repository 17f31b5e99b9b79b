import Foundation
import SluiceCore

/// A PostgreSQL connection address (`postgres://user:password@host:port/db?sslmode=require`).
///
/// libpq parses the URL itself (TLS through `sslmode`, `sslrootcert`, …). The password never
/// appears in ``description``, logs or errors: ``redacted`` replaces it with `***`.
public struct PostgresURL: Sendable, Hashable, CustomStringConvertible {
    /// What libpq gets: the URL, with `application_name` and `connect_timeout` added when absent.
    public private(set) var conninfo: String
    /// The URL with its password masked.
    public let redacted: String

    public init(_ url: String, applicationName: String = "sluice") throws {
        guard url.hasPrefix("postgres://") || url.hasPrefix("postgresql://") else {
            throw SluiceError(.configuration, "a PostgreSQL URL starts with postgres:// (postgres://user:password@host:5432/database)")
        }
        var info = url
        let separator = url.contains("?") ? "&" : "?"
        var extras: [String] = []
        if !url.contains("application_name=") { extras.append("application_name=\(applicationName)") }
        if !url.contains("connect_timeout=") { extras.append("connect_timeout=10") }
        if !extras.isEmpty { info += separator + extras.joined(separator: "&") }
        conninfo = info
        redacted = Self.redact(url)
        var secrets: [String] = []
        if let scheme = url.range(of: "://") {
            let rest = url[scheme.upperBound...]
            let authorityEnd = rest.firstIndex(where: { $0 == "/" || $0 == "?" }) ?? rest.endIndex
            if let at = rest[..<authorityEnd].lastIndex(of: "@"), let colon = rest[..<at].firstIndex(of: ":") {
                let raw = String(rest[rest.index(after: colon)..<at])
                secrets = [raw, raw.removingPercentEncoding].compactMap { $0 }.filter { !$0.isEmpty }
            }
        }
        if let r = url.range(of: #"password=[^&]*"#, options: .regularExpression) {
            let raw = String(url[r].dropFirst(9))
            secrets += [raw, raw.removingPercentEncoding].compactMap { $0 }.filter { !$0.isEmpty }
        }
        self.secrets = secrets
    }

    /// The same server, as a logical replication connection (`replication=database`).
    public var replication: PostgresURL {
        var copy = self
        copy.conninfo += (conninfo.contains("?") ? "&" : "?") + "replication=database"
        return copy
    }

    /// The password as written and decoded, to scrub from messages libpq echoes.
    let secrets: [String]

    /// `message` with any occurrence of the password masked.
    public func scrub(_ message: String) -> String {
        secrets.reduce(message) { $0.replacingOccurrences(of: $1, with: "***") }
    }

    public var description: String { redacted }

    /// Masks the password of the user-info part and any `password=` parameter.
    public static func redact(_ url: String) -> String { Redaction.url(url) }
}

/// Quoting for SQL text built by Sluice. Values are always bound as parameters; only
/// identifiers (table and column names) are written into SQL, and always through these.
public enum SQLText {
    /// `"name"` with embedded quotes doubled.
    public static func identifier(_ name: String) -> String {
        "\"" + name.replacingOccurrences(of: "\"", with: "\"\"") + "\""
    }

    /// `'text'` with embedded quotes doubled, for the few places that take no parameters
    /// (replication commands).
    public static func literal(_ text: String) -> String {
        "'" + text.replacingOccurrences(of: "'", with: "''") + "'"
    }

    /// `schema.table` → `"schema"."table"`; a name without a dot is quoted as one identifier.
    public static func qualified(_ name: QualifiedName) -> String {
        name.schema.map { identifier($0) + "." + identifier(name.name) } ?? identifier(name.name)
    }
}

/// A table name, optionally schema-qualified.
public struct QualifiedName: Sendable, Hashable, CustomStringConvertible {
    public var schema: String?
    public var name: String

    public init(schema: String?, name: String) {
        self.schema = schema
        self.name = name
    }

    /// Parses `table` or `schema.table` (each part letters, digits, `_`, `$`, or a "quoted" name).
    public init?(parsing text: String) {
        let parts = Self.split(text)
        guard let parts, (1...2).contains(parts.count), parts.allSatisfy({ !$0.isEmpty }) else { return nil }
        schema = parts.count == 2 ? parts[0] : nil
        name = parts.last!
    }

    public var description: String { schema.map { "\($0).\(name)" } ?? name }

    /// The schema to look the table up in (`public` when not given).
    public var schemaOrDefault: String { schema ?? "public" }

    /// Splits at dots outside quotes. Unquoted parts fold to lower case, as PostgreSQL does.
    static func split(_ text: String) -> [String]? {
        var parts: [String] = []
        var current = ""
        var quoted = false
        var wasQuoted = false
        var chars = Array(text)[...]
        while let c = chars.popFirst() {
            if quoted {
                if c == "\"" {
                    if chars.first == "\"" { current.append("\""); chars.removeFirst() } else { quoted = false }
                } else {
                    current.append(c)
                }
            } else if c == "\"" {
                quoted = true
                wasQuoted = true
            } else if c == "." {
                parts.append(wasQuoted ? current : current.lowercased())
                current = ""
                wasQuoted = false
            } else if c.isLetter || c.isNumber || c == "_" || c == "$" {
                current.append(c)
            } else {
                return nil
            }
        }
        guard !quoted else { return nil }
        parts.append(wasQuoted ? current : current.lowercased())
        return parts
    }
}

extension KeyedDecodingContainer {
    /// A `url` option as a ``PostgresURL``; a malformed one is a configuration error at its key.
    func decodePostgresURL(forKey key: Key) throws -> PostgresURL {
        do {
            return try PostgresURL(try decode(String.self, forKey: key))
        } catch let e as SluiceError {
            throw try superDecoder(forKey: key).configError(e.message)
        }
    }
}
