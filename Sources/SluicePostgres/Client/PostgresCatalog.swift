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
