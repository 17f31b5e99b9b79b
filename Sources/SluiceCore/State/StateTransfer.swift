import Foundation

/// A value of a state row, as `sluice state export` writes it.
public enum StateValue: Sendable, Hashable {
    case null
    case int(Int64)
    case real(Double)
    case text(String)
    case bytes([UInt8])
    case bool(Bool)
}

/// One table of the state, as every store kind keeps it (its name and columns are the same in
/// SQLite and in PostgreSQL's `sluice` schema; the embedded store keeps dead letters in blocks
/// and exports them as these rows).
public struct StateTable: Sendable {
    public enum ColumnType: Sendable { case int, real, text, bytes, bool }

    public var name: String
    public var columns: [(name: String, type: ColumnType)]
    /// The column a store numbers by itself (kept as exported; the next number follows the largest).
    public var idColumn: String?
    /// The feature of the store that keeps it (nil: every store keeps it).
    public var feature: StateFeature?

    public var columnNames: [String] { columns.map(\.name) }
}

/// Every table of the state, in the order they are exported and imported (a table before
/// those that refer to it).
public enum StateTables {
    public static let all: [StateTable] = [
        // Not a table: the counter of each numbered table (its largest number ever given out,
        // which may lie above every row left), first so that an import sets them before any
        // row takes a number. A push queue's sequence and a dead letter's id must never be
        // given out twice: a checkpoint or a sink's pending commit may name an old one.
        table(sequencesTable, "table T, value I"),
        table("checkpoints", "pipeline T, partition T, value T, updated_at R"),
        table("checkpoint_history", "id I, pipeline T, partition T, value T, committed_at R", id: "id"),
        table("dedupe_keys", "pipeline T, key T, seen_at R"),
        table("dedupe_meta", "pipeline T, seed B, last_run I"),
        table("dedupe_runs", "pipeline T, bucket I, run I, seen_at R, writer I, keys B"),
        table(
            "dead_letters", "id I, pipeline T, stage T, error_kind T, message T, location T, raw B, attempts I, first_seen R, last_seen R, schema T",
            id: "id"),
        table("file_intents", "id I, pipeline T, temp_path T, final_path T, records I, bytes I, resolved Z, created_at R", id: "id"),
        table(
            "runs", "id I, pipeline T, started_at R, ended_at R, status T, records_in I, records_out I, dead_lettered I, duplicates I, message T",
            id: "id"),
        table("schedule_claims", "pipeline T, slot R, claimed_at R, renewed_at R, finished Z"),
        table("registry_schemas", "id I, format T, canonical T, text T", id: "id", feature: .schemaRegistry),
        table("registry_versions", "subject T, version I, schema_id I, deleted Z, created_at R", feature: .schemaRegistry),
        table("registry_config", "subject T, compatibility T", feature: .schemaRegistry),
        table("registry_mode", "subject T, mode T", feature: .schemaRegistry),
        table("schema_drift", "id I, pipeline T, subject T, from_version I, to_version I, kinds T, diff T, action T, at R", id: "id"),
        table("alerts", "id I, pipeline T, name T, severity T, summary T, value R, fired_at R, resolved_at R", id: "id"),
        table("hourly_volume", "pipeline T, hour I, records I"),
        table(
            "usage_hourly",
            "pipeline T, hour I, bytes_in I, bytes_out I, records_in I, records_out I, cpu_seconds R, requests I, storage_bytes I, ingest_dollars R"),
        table("push_queue", "seq I, stream T, request_id T, payload B, records I, bytes I, received_at R", id: "seq", feature: .pushQueue),
        table("push_streams", "stream T, consumed_through I", feature: .pushQueue),
        table("idempotency_keys", "stream T, key T, fingerprint T, status I, response B, created_at R", feature: .pushQueue),
        table("api_keys", "id T, name T, secret_hash T, streams T, created_at R, revoked_at R", feature: .pushQueue),
    ]

    public static func named(_ name: String) -> StateTable? { all.first { $0.name == name } }

    /// The name of the counters' pseudo-table (rows: a numbered table's name, its counter).
    public static let sequencesTable = "sequences"

    /// The suffix of the name a dead-letter sink's position is committed under
    /// (`<pipeline>~dead_letters`, partition `id`: the id of the last letter it copied).
    public static let deadLetterSinkSuffix = "~dead_letters"

    /// `"name T, n I"`: T text, I integer, R real, B bytes, Z boolean.
    static func table(_ name: String, _ spec: String, id: String? = nil, feature: StateFeature? = nil) -> StateTable {
        let columns = spec.split(separator: ",").map { part -> (String, StateTable.ColumnType) in
            let words = part.split(separator: " ")
            let type: StateTable.ColumnType =
                switch words[1] {
                case "I": .int
                case "R": .real
                case "B": .bytes
                case "Z": .bool
                default: .text
                }
            return (String(words[0]), type)
        }
        return StateTable(name: name, columns: columns, idColumn: id, feature: feature)
    }
}

/// One row of a state table, its values in the table's column order.
public struct StateRow: Sendable, Hashable {
    public var table: String
    public var values: [StateValue]

    public init(table: String, values: [StateValue]) {
        self.table = table
        self.values = values
    }
}

/// Rows and an order-independent checksum per table: what `sluice state migrate` compares
/// between the store it read and the store it wrote.
public struct StateSummary: Sendable, Hashable {
    public var rows: [String: Int] = [:]
    /// The sum (mod 2^64) of each row's 64-bit FNV-1a hash, so the order rows come in does not
    /// matter but a missing, extra or changed row does.
    public var checksums: [String: UInt64] = [:]

    public init() {}

    /// Counts `row`. Numbers a store gives out again on import (a dead letter's id in the
    /// embedded store, and the dead-letter sinks' positions that name them) are left out.
    public mutating func add(_ row: StateRow) {
        // Counters are the store's own (an import may only raise them): not compared.
        guard row.table != StateTables.sequencesTable else { return }
        rows[row.table, default: 0] += 1
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        func mix(_ bytes: some Sequence<UInt8>) {
            for b in bytes {
                hash ^= UInt64(b)
                hash = hash &* 0x100_0000_01b3
            }
            hash ^= 0xff
            hash = hash &* 0x100_0000_01b3
        }
        let renumbered = Self.renumberedColumns(row)
        for (i, value) in row.values.enumerated() where !renumbered.contains(i) {
            switch value {
            case .null: mix([0])
            case .int(let n): mix(Array("i\(n)".utf8))
            case .real(let d): mix(Array("r\(d)".utf8))
            case .text(let t): mix(Array(("t" + t).utf8))
            case .bytes(let b): mix([UInt8(ascii: "b")] + b)
            case .bool(let z): mix([z ? 1 : 2])
            }
        }
        checksums[row.table, default: 0] &+= hash
    }

    /// The columns of `row` that an import may renumber.
    static func renumberedColumns(_ row: StateRow) -> Set<Int> {
        switch row.table {
        case "dead_letters": return [0]
        case "checkpoints", "checkpoint_history":
            // A dead-letter sink's position: `<pipeline>~dead_letters`, partition `id`.
            let offset = row.table == "checkpoints" ? 0 : 1
            if case .text(let p) = row.values[offset], p.hasSuffix(StateTables.deadLetterSinkSuffix),
                case .text("id") = row.values[offset + 1]
            {
                return [offset + 2]
            }
            return []
        default: return []
        }
    }

    /// Tables whose rows or checksums differ from `other`'s.
    public func differences(from other: StateSummary) -> [String] {
        Set(rows.keys).union(other.rows.keys).filter { rows[$0, default: 0] != other.rows[$0, default: 0] || checksums[$0] != other.checksums[$0] }
            .sorted()
    }
}

/// A state store whose whole content can be copied out and into an empty store of any kind
/// (`sluice state export|import|migrate`).
public protocol StateTransferable: Sendable {
    /// Calls `emit` with every row, table by table in ``StateTables/all`` order, from one
    /// consistent snapshot of the store.
    func exportState(_ emit: @escaping @Sendable (StateRow) throws -> Void) async throws
    /// Inserts every row `next` returns (nil at the end) in one transaction: all or nothing.
    /// The store must hold nothing yet. Numbers the store gives out itself continue after the
    /// largest imported.
    func importState(_ next: @escaping @Sendable () throws -> StateRow?) async throws
    /// The rows each non-empty table holds (empty: nothing to lose by importing into it).
    func stateContents() async throws -> [String: Int]
    /// Other Sluice processes using this store now, described (empty: none).
    func otherUsers() async throws -> [String]
}
