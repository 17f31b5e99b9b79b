import Foundation
import SluiceCore

/// One row change, rendered (`key`, `before`, `after` are JSON objects).
struct MySQLChange: Sendable, Equatable {
    var op: String
    var table: String
    var key: [UInt8]?
    var before: [UInt8]?
    var after: [UInt8]?
    /// `{"column":"postgres type",…}` of its table (`source.column_types`).
    var types: [UInt8]?
    /// Its `after` lacks columns the server did not log (`binlog_row_image` MINIMAL or NOBLOB):
    /// `source.partial`, so that `mode: apply` does not take it for a whole row.
    var partial = false
}

/// A committed transaction's changes (or a snapshot chunk's rows, or a part of a large
/// transaction), and the checkpoint once it is committed downstream.
struct MySQLTransaction: Sendable {
    /// Where its first event starts.
    var start: BinlogCoordinates
    /// Where its commit event ends (a snapshot chunk: the binlog position it was read at).
    var end: BinlogCoordinates
    var gtid: String?
    /// The server that wrote it (`server_id`).
    var serverID: UInt32
    /// Its commit time (seconds since 1970, as binlog events carry it).
    var timestamp: UInt32
    var changes: [MySQLChange]
    /// The `seq` of its first change in ``changes`` (changes delivered before a crash, or in
    /// earlier parts, are not here).
    var firstSeq = 0
    /// Rows of a snapshot chunk (op `r`).
    var snapshot = false
    /// The checkpoint once it is committed downstream.
    var position: MySQLCDCPosition
}

/// Change events in the Debezium envelope convention, one row per change, as for `postgres_cdc`:
/// `op` (c create, u update, d delete, t truncate, r snapshot read), `table` (`db.table`), `key`
/// (the primary key as JSON), `before` and `after` (the row as JSON), `source` (JSON: connector,
/// server_id, db, table, file, pos, gtid, ts_ms, snapshot, partial), and the source's place flattened
/// into columns for an audit trail. `file` and `pos` are where the change's transaction begins
/// in the binlog (known for every part of a large one), so `file`, `pos` and `seq` (the change's
/// number in its transaction) name a change; snapshot reads carry the position they were read
/// at, and are named by table and key. The first change of each table in a batch also carries
/// `source.column_types` (column → PostgreSQL type), from which `mode: apply` creates tables.
enum MySQLChangeEvents {
    static let schema = Schema([
        Field("op", .string, nullable: false),
        Field("table", .string, nullable: false),
        Field("key", .json),
        Field("before", .json),
        Field("after", .json),
        Field("source", .json, nullable: false),
        Field("file", .string, nullable: false),
        Field("pos", .int64, nullable: false),
        Field("gtid", .string),
        Field("ts_ms", .int64, nullable: false),
        Field("seq", .int64, nullable: false),
    ])

    static func batch(_ transactions: [MySQLTransaction]) -> RecordBatch {
        let rows = transactions.reduce(0) { $0 + $1.changes.count }
        var b = schema.fields.map { ColumnBuilder(type: $0.type, capacity: rows) }
        var typed: Set<String> = []
        var lastTyped: String?
        for t in transactions {
            let tsMillis = Int64(t.timestamp) * 1000
            var sources: [String: [UInt8]] = [:]
            var lastTable: String?, lastSource: [UInt8] = []
            // Each change's fields read in place (copying a change retains all its buffers).
            t.changes.withUnsafeBufferPointer { changes in
                for i in changes.indices {
                    let table = changes[i].table
                    if table != lastTable {
                        if let known = sources[table] {
                            lastSource = known
                        } else {
                            lastSource = sourceJSON(t, table: table, types: nil)
                            sources[table] = lastSource
                        }
                        lastTable = table
                    }
                    b[0].append(string: changes[i].op)
                    b[1].append(string: table)
                    if let key = changes[i].key { b[2].appendBytes(key) } else { b[2].appendNull() }
                    if let before = changes[i].before { b[3].appendBytes(before) } else { b[3].appendNull() }
                    if let after = changes[i].after { b[4].appendBytes(after) } else { b[4].appendNull() }
                    var source = lastSource
                    if let types = changes[i].types, table != lastTyped, typed.insert(table).inserted {
                        source = sourceJSON(t, table: table, types: types)
                        lastTyped = table
                    }
                    b[5].appendBytes(changes[i].partial ? ChangeEnvelope.markedPartial(source) : source)
                    b[6].append(string: t.start.file)
                    b[7].append(Int64(t.start.position))
                    if let gtid = t.gtid { b[8].append(string: gtid) } else { b[8].appendNull() }
                    b[9].append(tsMillis)
                    b[10].append(Int64(t.firstSeq + i))
                }
            }
        }
        return RecordBatch(schema: schema, columns: b.indices.map { b[$0].finish() })
    }

    static func sourceJSON(_ t: MySQLTransaction, table: String, types: [UInt8]?) -> [UInt8] {
        let parts = table.split(separator: ".", maxSplits: 1).map(String.init)
        var out = Array("{\"connector\":\"mysql\",\"server_id\":\(t.serverID),\"db\":".utf8)
        MySQLJSON.appendString(parts.first ?? "", to: &out)
        out += Array(",\"table\":".utf8)
        MySQLJSON.appendString(parts.last ?? "", to: &out)
        if let types { out += Array(",\"column_types\":".utf8) + types }
        out += Array(",\"file\":".utf8)
        MySQLJSON.appendString(t.start.file, to: &out)
        out += Array(",\"pos\":\(t.start.position),\"gtid\":".utf8)
        if let gtid = t.gtid { MySQLJSON.appendString(gtid, to: &out) } else { out += Array("null".utf8) }
        out += Array(",\"ts_ms\":\(Int64(t.timestamp) * 1000)".utf8)
        if t.snapshot { out += Array(",\"snapshot\":true".utf8) }
        out.append(UInt8(ascii: "}"))
        return out
    }
}
