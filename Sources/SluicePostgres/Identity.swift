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
    /// `apply` takes change events only.
    public var takesAnyRecords: Bool { options.mode != .apply }

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

    /// Columns PostgreSQL's statistics find entirely null (`pg_stats.null_frac = 1`; they exist
    /// once the table was analyzed, which autovacuum does after enough rows).
    public func alwaysNullColumns() async throws -> [String]? {
        guard outputIdentity != nil else { return nil }
        let connection = try await PostgresConnection.connect(options.url)
        let table = options.table
        let columns = try await connection.run { session -> [String]? in
            let analyzed = try session.query(
                "SELECT 1 FROM pg_stats WHERE schemaname = $1 AND tablename = $2 LIMIT 1", [table.schemaOrDefault, table.name])
            guard analyzed.rows == 1 else { return nil }
            let r = try session.query(
                "SELECT attname::text FROM pg_stats WHERE schemaname = $1 AND tablename = $2 AND null_frac = 1 ORDER BY attname",
                [table.schemaOrDefault, table.name])
            return (0..<r.rows).compactMap { r.string($0, 0) }
        }
        await connection.close()
        return columns
    }
}
