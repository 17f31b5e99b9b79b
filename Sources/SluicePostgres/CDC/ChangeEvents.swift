import Foundation
import SluiceCore

/// Change events in the Debezium envelope convention, one row per change:
/// `op` (c create, u update, d delete, t truncate, r snapshot read), `key` (the row's replica
/// identity key as JSON, Debezium's message key), `before` and `after` (the row as JSON),
/// `source` (JSON: db, schema, table, snapshot_epoch for snapshot reads, lsn, txId, ts_ms) and the same source fields flattened
/// into columns for an audit trail. The first change of each table in a batch also carries
/// `source.column_types` (column → PostgreSQL type, for the built-in types), from which
/// `mode: apply` creates tables with the source's exact types.
enum ChangeEvents {
    /// A commit time (microseconds since 2000-01-01, as pgoutput sends it) as a date.
    static func date(_ commitTime: Int64) -> Date {
        Date(timeIntervalSince1970: Double(commitTime + BinaryValue.epochMicros) / 1_000_000)
    }

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

    /// One decoded change, not yet in columns. `key`, `before` and `after` are JSON (UTF-8).
    struct Change: Sendable {
        var op: String
        var table: String
        var key: [UInt8]?
        var before: [UInt8]?
        var after: [UInt8]?
        var seq: Int
        /// `{"column":"type",…}` of the change's table (``columnTypes(_:)``), shared by its changes.
        var types: [UInt8]? = nil
        /// For a snapshot read (`r`): the epoch of the slot's snapshots (``CDCPosition/epoch``),
        /// rendered as `source.snapshot_epoch`.
        var snapshotEpoch: UInt64? = nil
        /// Its `after` lacks an unchanged TOASTed value (``ChangeEnvelope/partialMarker``).
        var partial = false
    }

    /// The JSON object of the relation's column types that ``PgTypeName`` knows (nil if none).
    static func columnTypes(_ relation: PgRelation) -> [UInt8]? {
        var out: [UInt8] = [UInt8(ascii: "{")]
        for column in relation.columns {
            guard let name = PgTypeName.format(oid: column.typeOID, typmod: column.typeModifier) else { continue }
            if out.count > 1 { out.append(UInt8(ascii: ",")) }
            appendQuoted(column.name.utf8, to: &out)
            out.append(UInt8(ascii: ":"))
            appendQuoted(name.utf8, to: &out)
        }
        guard out.count > 1 else { return nil }
        out.append(UInt8(ascii: "}"))
        return out
    }

    /// A committed transaction's changes.
    struct Transaction: Sendable {
        var xid: UInt32
        var commitTime: Int64
        var endLSN: UInt64
        /// Its changes in memory: all of them, or (``spill``) those after the spilled ones.
        var changes: [Change]
        /// The checkpoint once this transaction is committed downstream.
        var position: CDCPosition?
        /// The LSN of its commit record (its Begin's `final_lsn`; 0 when not known).
        var commitLSN: UInt64 = 0
        /// The changes the server sent for it so far, skipped ones included: the next one's `seq`.
        var seen = 0
        /// Its first changes, committed downstream before a crash: not kept again.
        var skip = 0
        /// The bytes of ``changes`` (their JSON), roughly.
        var bytes = 0
        /// A large transaction's first changes, in a file (see ``ChangeSpill``).
        var spill: ChangeSpill?
        /// Changes handed over in parts so far (after ``skip``).
        var handedOver = 0
        /// Snapshot rows were added to it (at a high watermark): it is handed over whole.
        var hasSnapshotRows = false
        /// The checkpoint before it: that of its parts, with ``CDCPosition/partial``.
        var before: CDCPosition?

        init(xid: UInt32, commitTime: Int64, endLSN: UInt64, changes: [Change], position: CDCPosition? = nil) {
            self.xid = xid
            self.commitTime = commitTime
            self.endLSN = endLSN
            self.changes = changes
            self.position = position
        }

        /// Numbers the next change the server sent; nil when it is among the ``skip`` first.
        mutating func number() -> Int? {
            defer { seen += 1 }
            return seen >= skip ? seen : nil
        }

        /// Keeps a change in memory; true once the changes in memory reach `count` or `bytes`.
        mutating func keep(_ change: Change, spillingAt count: Int, bytes limit: Int) -> Bool {
            bytes += 64 + (change.key?.count ?? 0) + (change.before?.count ?? 0) + (change.after?.count ?? 0)
            changes.append(change)
            return changes.count >= count || bytes >= limit
        }

        /// Handed over in parts (a batch at a time from its file, each part checkpointed): it
        /// was spilled, it can be named before its commit, and no snapshot rows were added.
        var inParts: Bool { spill != nil && commitLSN != 0 && !hasSnapshotRows }
    }

    /// Builds the batch of `transactions`, in commit order.
    static func batch(_ transactions: [Transaction], database: String) -> RecordBatch {
        let rows = transactions.reduce(0) { $0 + $1.changes.count }
        var b = schema.fields.map { ColumnBuilder(type: $0.type, capacity: rows) }
        let db = quoted(database)
        /// Tables whose column types this batch has carried already (once per table per batch).
        var typed: Set<String> = []
        for t in transactions {
            // PostgreSQL timestamps count microseconds from 2000-01-01.
            let tsMillis = (t.commitTime + BinaryValue.epochMicros) / 1000
            let lsn = LSN.format(t.endLSN)
            let tail = Array(",\"lsn\":\"\(lsn)\",\"txId\":\(t.xid),\"ts_ms\":\(tsMillis)}".utf8)
            // The `source` object of each table of the transaction, built once.
            var sources: [String: [UInt8]] = [:]
            for c in t.changes {
                let source: [UInt8]
                let cacheKey = c.snapshotEpoch.map { c.table + "@" + LSN.format($0) } ?? c.table
                if let known = sources[cacheKey] {
                    source = known
                } else {
                    let parts = c.table.split(separator: ".", maxSplits: 1).map(String.init)
                    let snapshot = c.snapshotEpoch.map { Array(",\"snapshot_epoch\":\"\(LSN.format($0))\"".utf8) } ?? []
                    source =
                        Array("{\"db\":".utf8) + db + Array(",\"schema\":".utf8) + quoted(parts.first ?? "")
                        + Array(",\"table\":".utf8) + quoted(parts.last ?? "") + snapshot + tail
                    sources[cacheKey] = source
                }
                b[0].append(string: c.op)
                b[1].append(string: c.table)
                if let key = c.key { b[2].appendBytes(key) } else { b[2].appendNull() }
                if let before = c.before { b[3].appendBytes(before) } else { b[3].appendNull() }
                if let after = c.after { b[4].appendBytes(after) } else { b[4].appendNull() }
                if let types = c.types, typed.insert(c.table).inserted {
                    // `{"db":…,"table":"t","column_types":{…},"lsn":…}` for the table's first change.
                    let cut = source.count - tail.count
                    let typedSource = Array(source[..<cut]) + Array(",\"column_types\":".utf8) + types + Array(source[cut...])
                    b[5].appendBytes(c.partial ? ChangeEnvelope.markedPartial(typedSource) : typedSource)
                } else {
                    b[5].appendBytes(c.partial ? ChangeEnvelope.markedPartial(source) : source)
                }
                b[6].append(string: lsn)
                b[7].append(Int64(t.xid))
                b[8].append(tsMillis)
                b[9].append(Int64(c.seq))
            }
        }
        return RecordBatch(schema: schema, columns: b.indices.map { b[$0].finish() })
    }

    static func quoted(_ text: String) -> [UInt8] {
        var out: [UInt8] = []
        appendQuoted(Array(text.utf8), to: &out)
        return out
    }

    /// Appends `bytes` (UTF-8) as a JSON string: quotes, backslashes and control characters escaped.
    @inline(__always)
    static func appendQuoted<C: Collection>(_ bytes: C, to out: inout [UInt8]) where C.Element == UInt8 {
        out.append(UInt8(ascii: "\""))
        for byte in bytes {
            switch byte {
            case UInt8(ascii: "\""), UInt8(ascii: "\\"):
                out.append(UInt8(ascii: "\\"))
                out.append(byte)
            case 0x0A: out.append(UInt8(ascii: "\\")); out.append(UInt8(ascii: "n"))
            case 0x0D: out.append(UInt8(ascii: "\\")); out.append(UInt8(ascii: "r"))
            case 0x09: out.append(UInt8(ascii: "\\")); out.append(UInt8(ascii: "t"))
            case 0..<0x20:
                let hex = Array("0123456789abcdef".utf8)
                out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "u"), UInt8(ascii: "0"), UInt8(ascii: "0"), hex[Int(byte >> 4)], hex[Int(byte & 15)]])
            default: out.append(byte)
            }
        }
        out.append(UInt8(ascii: "\""))
    }

    /// True when PostgreSQL's text of a number is also a JSON number (not NaN, Infinity, `.5`).
    static func isJSONNumber(_ text: [UInt8]) -> Bool {
        guard let first = text.first, first != UInt8(ascii: "."), first != UInt8(ascii: "+") else { return false }
        for byte in text {
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "+"), UInt8(ascii: "."), UInt8(ascii: "e"), UInt8(ascii: "E"): continue
            default: return false
            }
        }
        return true
    }

    /// A tuple as a JSON object by the relation's column names. Numbers and booleans become JSON
    /// numbers and booleans, json/jsonb is embedded, everything else is a string in PostgreSQL's
    /// text form. An unchanged TOASTed value (not sent by the server) is left out of the object.
    /// With `keyOnly`, only the replica identity key columns are rendered.
    static func json(_ tuple: PgTuple, relation: PgRelation, keyOnly: Bool = false) -> [UInt8] {
        var out: [UInt8] = [UInt8(ascii: "{")]
        out.reserveCapacity(64 + tuple.count * 24)
        var first = true
        for (i, value) in tuple.enumerated() where i < relation.columns.count {
            let column = relation.columns[i]
            if keyOnly && !column.isKey { continue }
            if case .unchangedToast = value { continue }
            if !first { out.append(UInt8(ascii: ",")) }
            first = false
            appendQuoted(column.name.utf8, to: &out)
            out.append(UInt8(ascii: ":"))
            switch value {
            case .unchangedToast: break
            case .null: out.append(contentsOf: [UInt8(ascii: "n"), UInt8(ascii: "u"), UInt8(ascii: "l"), UInt8(ascii: "l")])
            case let .text(bytes), let .binary(bytes):
                switch column.typeOID {
                case 16: out.append(contentsOf: bytes.first == UInt8(ascii: "t") ? Array("true".utf8) : Array("false".utf8))
                case 20, 21, 23, 26, 700, 701, 1700:
                    if isJSONNumber(bytes) { out.append(contentsOf: bytes) } else { appendQuoted(bytes, to: &out) }
                case 114, 3802: out.append(contentsOf: bytes)
                default: appendQuoted(bytes, to: &out)
                }
            }
        }
        out.append(UInt8(ascii: "}"))
        return out
    }

    /// A table's columns as the schema registry holds them (every column nullable; types Sluice
    /// has no name for, arrays and unbounded numerics among them, as strings: their text form).
    static func registrySchema(_ r: PgRelation) -> Schema {
        Schema(r.columns.map { Field($0.name, dataType(oid: $0.typeOID, typmod: $0.typeModifier), nullable: true) })
    }

    static func dataType(oid: UInt32, typmod: Int32) -> DataType {
        switch oid {
        case 16: return .bool
        case 20, 21, 23, 26: return .int64
        case 700, 701: return .float64
        case 1700:
            // The scale is 11 bits, signed (PostgreSQL 15 allows negative scales and scales above
            // the precision); a decimal the registry cannot hold is a string.
            guard typmod >= 4 else { return .string }
            let precision = Int(((typmod - 4) >> 16) & 0xFFFF)
            var scale = Int((typmod - 4) & 0x7FF)
            if scale & 0x400 != 0 { scale -= 0x800 }
            return (1...38).contains(precision) && (0...precision).contains(scale) ? .decimal(precision: precision, scale: scale) : .string
        case 17: return .binary
        case 1082: return .date
        case 1114, 1184: return .timestamp
        case 114, 3802: return .json
        default: return .string
        }
    }
}
