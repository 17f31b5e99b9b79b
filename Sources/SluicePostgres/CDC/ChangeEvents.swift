import SluiceCore

/// Change events in the Debezium envelope convention, one row per change:
/// `op` (c create, u update, d delete, t truncate, r snapshot read), `key` (the row's replica
/// identity key as JSON, Debezium's message key), `before` and `after` (the row as JSON),
/// `source` (JSON: db, schema, table, lsn, txId, ts_ms) and the same source fields flattened
/// into columns for an audit trail.
enum ChangeEvents {
    static let schema = Schema([
        Field("op", .string, nullable: false),
        Field("table", .string, nullable: false),
        Field("key", .json),
        Field("before", .json),
        Field("after", .json),
        Field("source", .json, nullable: false),
        Field("lsn", .string, nullable: false),
        Field("tx_id", .int64, nullable: false),
        Field("ts_ms", .int64, nullable: false),
        Field("seq", .int64, nullable: false),
    ])

    /// One decoded change, not yet in columns.
    struct Change: Sendable {
        var op: String
        var table: String
        var key: String?
        var before: String?
        var after: String?
        var seq: Int
    }

    /// A committed transaction's changes.
    struct Transaction: Sendable {
        var xid: UInt32
        var commitTime: Int64
        var endLSN: UInt64
        var changes: [Change]
        /// The checkpoint value once this transaction is committed downstream (``CDCPosition``).
        var position = ""
    }

    /// Builds the batch of `transactions`, in commit order.
    static func batch(_ transactions: [Transaction], database: String) -> RecordBatch {
        var b = schema.fields.map { ColumnBuilder(type: $0.type) }
        for t in transactions {
            // PostgreSQL timestamps count microseconds from 2000-01-01.
            let tsMillis = (t.commitTime + BinaryValue.epochMicros) / 1000
            let lsn = LSN.format(t.endLSN)
            for c in t.changes {
                let parts = c.table.split(separator: ".", maxSplits: 1).map(String.init)
                let source = "{\"db\":\(RowRendering.quote(database)),\"schema\":\(RowRendering.quote(parts.first ?? "")),"
                    + "\"table\":\(RowRendering.quote(parts.last ?? "")),\"lsn\":\(RowRendering.quote(lsn)),\"txId\":\(t.xid),\"ts_ms\":\(tsMillis)}"
                b[0].append(string: c.op)
                b[1].append(string: c.table)
                if let key = c.key { b[2].append(string: key) } else { b[2].appendNull() }
                if let before = c.before { b[3].append(string: before) } else { b[3].appendNull() }
                if let after = c.after { b[4].append(string: after) } else { b[4].appendNull() }
                b[5].append(string: source)
                b[6].append(string: lsn)
                b[7].append(Int64(t.xid))
                b[8].append(tsMillis)
                b[9].append(Int64(c.seq))
            }
        }
        return RecordBatch(schema: schema, columns: b.indices.map { b[$0].finish() })
    }

    /// A tuple as a JSON object by the relation's column names. Numbers and booleans become JSON
    /// numbers and booleans, json/jsonb is embedded, everything else is a string in PostgreSQL's
    /// text form. An unchanged TOASTed value (not sent by the server) is left out of the object.
    /// With `keyOnly`, only the replica identity key columns are rendered.
    static func json(_ tuple: PgTuple, relation: PgRelation, keyOnly: Bool = false) -> String {
        var out = "{"
        var first = true
        for (i, value) in tuple.enumerated() where i < relation.columns.count {
            let column = relation.columns[i]
            if keyOnly && !column.isKey { continue }
            let rendered: String
            switch value {
            case .unchangedToast: continue
            case .null: rendered = "null"
            case let .text(bytes), let .binary(bytes):
                let text = String(decoding: bytes, as: UTF8.self)
                switch column.typeOID {
                case 16: rendered = text == "t" ? "true" : "false"
                case 20, 21, 23, 26, 700, 701, 1700:
                    rendered = text.allSatisfy({ $0.isNumber || $0 == "-" || $0 == "." || $0 == "e" || $0 == "E" || $0 == "+" })
                        && text.first != "." ? text : RowRendering.quote(text)
                case 114, 3802: rendered = text
                default: rendered = RowRendering.quote(text)
                }
            }
            out += (first ? "" : ",") + RowRendering.quote(column.name) + ":" + rendered
            first = false
        }
        return out + "}"
    }
}
