/// Catalog lookups shared by the sink, CDC and trigger installation.
enum PostgresCatalog {
    /// The primary key columns of `table`, in key order (empty without one).
    static func primaryKey(of table: QualifiedName, session s: PostgresSession) throws -> [String] {
        let r = try s.query(
            """
            SELECT a.attname FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey)
            WHERE i.indrelid = $1::regclass AND i.indisprimary ORDER BY array_position(i.indkey::int2[], a.attnum)
            """, [SQLText.qualified(table)])
        return (0..<r.rows).compactMap { r.string($0, 0) }
    }
}

extension PostgresSession {
    /// Creates `schema` unless it exists. `CREATE SCHEMA IF NOT EXISTS` alone needs CREATE on the
    /// database even when the schema is there, which a user granted only `USAGE, CREATE ON
    /// SCHEMA` lacks ("permission denied for database").
    func ensureSchema(_ schema: String) throws {
        guard try query("SELECT 1 FROM pg_namespace WHERE nspname = $1", [schema]).rows == 0 else { return }
        try execute("CREATE SCHEMA IF NOT EXISTS \(SQLText.identifier(schema))")
    }
}
