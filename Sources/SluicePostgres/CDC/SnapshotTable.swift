import SluiceCore

/// One table of a CDC snapshot, read in primary-key order a chunk at a time. Rows are rendered
/// exactly as the stream renders changes (PostgreSQL's text forms, see ``ChangeEvents/json``),
/// so a snapshot row and a streamed change of the same row compare equal by key.
struct SnapshotTable: Sendable {
    /// `schema.table`, as change events name it.
    var name: String
    var qualified: QualifiedName
    /// Primary key (or replica identity index) columns and their types, in key order.
    var keyColumns: [String]
    var keyTypes: [String]

    /// One chunk: its rows as snapshot changes (op `r`), each row's key (for watermark
    /// de-duplication), and the key of the last row (where the next chunk starts).
    struct Chunk: Sendable {
        var changes: [ChangeEvents.Change]
        var keys: [String]
        var last: [String?]?
        var isLast: Bool
    }

    static func describe(_ name: String, session: PostgresSession) throws -> SnapshotTable {
        let parts = name.split(separator: ".", maxSplits: 1).map(String.init)
        let qualified = QualifiedName(schema: parts.count == 2 ? parts[0] : nil, name: parts.last ?? name)
        let r = try session.query(
            """
            SELECT a.attname, format_type(a.atttypid, a.atttypmod) FROM pg_index i
            JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey)
            WHERE i.indrelid = $1::regclass AND i.indexrelid = (
                SELECT indexrelid FROM pg_index WHERE indrelid = $1::regclass AND (indisprimary OR indisreplident)
                ORDER BY indisprimary DESC LIMIT 1)
            ORDER BY array_position(i.indkey::int2[], a.attnum)
            """, [SQLText.qualified(qualified)])
        guard r.rows > 0 else {
            throw SluiceError(
                .configuration,
                "table \(name) has no primary key (nor a replica identity index): a snapshot reads rows in key order "
                    + "and needs one. Add a primary key, or skip snapshots (`snapshot: never`)", location: "source.postgres_cdc.snapshot", retryable: false)
        }
        return SnapshotTable(
            name: name, qualified: qualified, keyColumns: (0..<r.rows).map { r.string($0, 0)! },
            keyTypes: (0..<r.rows).map { r.string($0, 1)! })
    }

    /// The rows after key `after` (all rows when nil), at most `limit` of them.
    func chunk(after: [String?]?, limit: Int, session: PostgresSession) throws -> Chunk {
        let keys = keyColumns.map(SQLText.identifier).joined(separator: ", ")
        var sql = "SELECT * FROM \(SQLText.qualified(qualified))"
        if let after {
            let bound = keyTypes.indices.map { "$\($0 + 1)::\(keyTypes[$0])" }.joined(separator: ", ")
            sql += " WHERE (\(keys)) > (\(bound))"
        }
        sql += " ORDER BY \(keys) LIMIT \(limit)"
        let r = try session.query(sql, after ?? [])
        let relation = PgRelation(
            oid: 0, namespace: qualified.schemaOrDefault, name: qualified.name, replicaIdentity: UInt8(ascii: "d"),
            columns: (0..<r.columns).map {
                PgColumn(isKey: keyColumns.contains(r.name($0)), name: r.name($0), typeOID: r.typeOID($0), typeModifier: r.typeModifier($0))
            })
        let keyIndexes = keyColumns.map { k in relation.columns.firstIndex { $0.name == k }! }
        let types = ChangeEvents.columnTypes(relation)
        var chunk = Chunk(changes: [], keys: [], last: nil, isLast: r.rows < limit)
        chunk.changes.reserveCapacity(r.rows)
        for row in 0..<r.rows {
            let tuple: PgTuple = (0..<r.columns).map { c in
                r.isNull(row, c) ? .null : .text(Array(r.bytes(row, c)))
            }
            let key = ChangeEvents.json(tuple, relation: relation, keyOnly: true)
            chunk.keys.append(String(decoding: key, as: UTF8.self))
            chunk.changes.append(
                ChangeEvents.Change(
                    op: "r", table: name, key: key, before: nil,
                    after: ChangeEvents.json(tuple, relation: relation), seq: 0, types: types))
            if row == r.rows - 1 { chunk.last = keyIndexes.map { r.string(row, $0) } }
        }
        return chunk
    }

    /// The key of a streamed change of this table, rendered like ``Chunk/keys`` (nil when the
    /// tuple lacks a key column, e.g. after the key was dropped).
    func key(of tuple: PgTuple, relation: PgRelation) -> String? {
        var keyOnly = relation
        for i in keyOnly.columns.indices { keyOnly.columns[i].isKey = keyColumns.contains(keyOnly.columns[i].name) }
        guard keyColumns.allSatisfy({ k in keyOnly.columns.contains { $0.name == k } }) else { return nil }
        return String(decoding: ChangeEvents.json(tuple, relation: keyOnly, keyOnly: true), as: UTF8.self)
    }
}
