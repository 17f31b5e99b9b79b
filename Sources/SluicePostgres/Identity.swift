import Foundation
import SluiceCore

extension PostgresURL {
    /// `postgres://host:port/database`: the server and database, without user, password or
    /// options (two pipelines reading one table through different users read the same data).
    public var server: String {
        var rest = Substring(redacted)
        if let scheme = rest.range(of: "://") { rest = rest[scheme.upperBound...] }
        if let query = rest.firstIndex(of: "?") { rest = rest[..<query] }
        let authorityEnd = rest.firstIndex(of: "/") ?? rest.endIndex
        if let at = rest[..<authorityEnd].lastIndex(of: "@") { rest = rest[rest.index(after: at)...] }
        var hostAndDB = String(rest)
        let slash = hostAndDB.firstIndex(of: "/") ?? hostAndDB.endIndex
        if !hostAndDB[..<slash].contains(":") { hostAndDB.insert(contentsOf: ":5432", at: slash) }
        return "postgres://" + hostAndDB
    }

    /// A table of this server, named as ``Source/readIdentities`` and ``Sink/outputIdentity`` name it.
    func identity(of table: QualifiedName) -> String {
        "\(server) \(table.schemaOrDefault).\(table.name)"
    }
}

extension PostgresSource {
    public var readIdentities: [String] {
        if let table = options.table { return [options.url.identity(of: table)] }
        return options.query.map { ["\(options.url.server) query: \($0)"] } ?? []
    }
}

extension PostgresCDCSource {
    public var readIdentities: [String] { options.tables.map { options.url.identity(of: $0) } }
}

extension PostgresSink {
    public var outputIdentity: String? {
        // A template (`analytics.{table}`) names many tables: no single identity.
        options.table.description.contains("{") ? nil : options.url.identity(of: options.table)
    }

    /// Scans of the table (sequential and by index) since the server's statistics were reset:
    /// Sluice's own loads insert without scanning it.
    public func readEvidence() async throws -> ReadEvidence? {
        guard outputIdentity != nil else { return nil }
        let connection = try await PostgresConnection.connect(options.url)
        let table = options.table
        let scans = try await connection.run { session -> Int? in
            let r = try session.query(
                "SELECT coalesce(seq_scan, 0) + coalesce(idx_scan, 0) FROM pg_stat_user_tables WHERE schemaname = $1 AND relname = $2",
                [table.schemaOrDefault, table.name])
            return r.rows == 1 ? Int(r.string(0, 0) ?? "") : nil
        }
        await connection.close()
        return scans.map { .readCount($0) }
    }
}
