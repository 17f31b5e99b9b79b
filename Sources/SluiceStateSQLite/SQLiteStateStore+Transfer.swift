import Foundation
import GRDB
import SluiceCore

extension SQLiteStateStore: StateTransferable {
    public func exportState(_ emit: @escaping @Sendable (StateRow) throws -> Void) async throws {
        try await pool.read { db in
            for table in StateTables.all {
                if table.name == StateTables.sequencesTable {
                    try Self.exportSequences(db, emit)
                    continue
                }
                if table.name == "dead_letters" {
                    try Self.exportDeadLetters(db, emit)
                    continue
                }
                let order = table.idColumn.map { " ORDER BY \($0)" } ?? ""
                let rows = try Row.fetchCursor(db, sql: "SELECT \(table.columnNames.joined(separator: ", ")) FROM \(table.name)\(order)")
                while let row = try rows.next() {
                    try emit(StateRow(table: table.name, values: table.columns.indices.map { Self.value(row, $0, table.columns[$0].type) }))
                }
            }
        }
    }

    /// The AUTOINCREMENT counters, by logical table. Dead letters: the largest id the last
    /// block number given out can hold.
    static func exportSequences(_ db: Database, _ emit: (StateRow) throws -> Void) throws {
        for row in try Row.fetchAll(db, sql: "SELECT name, seq FROM sqlite_sequence ORDER BY name") {
            let name: String = row[0]
            let seq: Int64 = row[1]
            if name == "dead_letter_blocks" {
                try emit(StateRow(table: StateTables.sequencesTable, values: [.text("dead_letters"), .int(DeadLetterBlock.id(block: seq + 1, slot: 0) - 1)]))
            } else if StateTables.named(name)?.idColumn != nil {
                try emit(StateRow(table: StateTables.sequencesTable, values: [.text(name), .int(seq)]))
            }
        }
    }

    /// Raises the AUTOINCREMENT counter of `table` (the physical one) to at least `value`.
    static func raiseSequence(_ db: Database, table: String, to value: Int64) throws {
        let current = try Int64.fetchOne(db, sql: "SELECT seq FROM sqlite_sequence WHERE name = ?", arguments: [table]) ?? 0
        guard value > current else { return }
        try db.execute(sql: "DELETE FROM sqlite_sequence WHERE name = ?", arguments: [table])
        try db.execute(sql: "INSERT INTO sqlite_sequence(name, seq) VALUES (?, ?)", arguments: [table, value])
    }

    /// The letters of every block, in id order, as rows of the logical `dead_letters` table.
    static func exportDeadLetters(_ db: Database, _ emit: (StateRow) throws -> Void) throws {
        let blocks = try SQLiteDeadLetterBlocks.blocks(db, DeadLetterFilter(), columns: "id, pipeline, payload")
        while let row = try blocks.next() {
            for l in try SQLiteDeadLetterBlocks.decode(row).letters {
                try emit(
                    StateRow(
                        table: "dead_letters",
                        values: [
                            .int(l.id), .text(l.pipeline), .text(l.letter.stage), .text(l.letter.errorKind), .text(l.letter.message),
                            .text(l.letter.location), .bytes(l.letter.raw), .int(Int64(l.letter.attempts)),
                            .real(l.firstSeen.timeIntervalSince1970), .real(l.lastSeen.timeIntervalSince1970),
                            l.letter.schema.map(StateValue.text) ?? .null,
                        ]))
            }
        }
    }

    static func value(_ row: Row, _ index: Int, _ type: StateTable.ColumnType) -> StateValue {
        let dbValue = row[index] as DatabaseValue
        if dbValue.isNull { return .null }
        switch type {
        case .int: return .int(row[index])
        case .real: return .real(row[index])
        case .text: return .text(row[index])
        case .bytes: return .bytes([UInt8](row[index] as Data))
        case .bool: return .bool((row[index] as Int64) != 0)
        }
    }

    public func importState(_ next: @escaping @Sendable () throws -> StateRow?) async throws {
        try await write { db in
            var letters = DeadLetterImport()
            while let row = try next() {
                if row.table == StateTables.sequencesTable {
                    guard case .text(let name) = row.values[0], case .int(let value) = row.values[1] else { continue }
                    if name == "dead_letters" {
                        // New blocks are numbered above every id given out before: an old id
                        // kept elsewhere (a sink's pending commit) then names no letter.
                        try Self.raiseSequence(db, table: "dead_letter_blocks", to: DeadLetterBlock.split(value).block + 1)
                    } else if StateTables.named(name)?.idColumn != nil {
                        try Self.raiseSequence(db, table: name, to: value)
                    }
                    continue
                }
                if row.table == "dead_letters" {
                    try letters.add(row, db)
                    continue
                }
                guard let table = StateTables.named(row.table) else { continue }
                let statement = try db.cachedStatement(
                    sql:
                        "INSERT INTO \(table.name)(\(table.columnNames.joined(separator: ", "))) VALUES (\(table.columns.map { _ in "?" }.joined(separator: ", ")))"
                )
                try statement.execute(arguments: StatementArguments(row.values.map(Self.databaseValue)))
            }
            try letters.finish(db)
        }
    }

    static func databaseValue(_ value: StateValue) -> (any DatabaseValueConvertible)? {
        switch value {
        case .null: nil
        case .int(let n): n
        case .real(let d): d
        case .text(let t): t
        case .bytes(let b): Data(b)
        case .bool(let z): z ? 1 : 0
        }
    }

    /// Dead letters going into blocks, as a migration of the old table did: each pipeline's in
    /// order, a block filled up to the usual size. Letters get new ids (block and slot), so the
    /// position of a dead-letter sink, which names the last letter it copied, moves with them.
    struct DeadLetterImport {
        var pending: [String: [StoredDeadLetter]] = [:]
        var pendingBytes: [String: Int] = [:]
        var moved: [String: [(old: Int64, new: Int64)]] = [:]

        mutating func add(_ row: StateRow, _ db: Database) throws {
            let v = row.values
            func text(_ i: Int) -> String { if case .text(let t) = v[i] { t } else { "" } }
            func int(_ i: Int) -> Int64 { if case .int(let n) = v[i] { n } else { 0 } }
            func real(_ i: Int) -> Double { if case .real(let d) = v[i] { d } else { 0 } }
            let raw: [UInt8] = if case .bytes(let b) = v[6] { b } else { [] }
            let schema: String? = if case .text(let t) = v[10] { t } else { nil }
            let letter = StoredDeadLetter(
                id: int(0), pipeline: text(1),
                letter: DeadLetter(stage: text(2), errorKind: text(3), message: text(4), location: text(5), raw: raw, attempts: Int(int(7)), schema: schema),
                firstSeen: Date(timeIntervalSince1970: real(8)), lastSeen: Date(timeIntervalSince1970: real(9)))
            pending[letter.pipeline, default: []].append(letter)
            pendingBytes[letter.pipeline, default: 0] += raw.count + letter.letter.message.utf8.count
            if pending[letter.pipeline]!.count >= DeadLetterBlock.targetLetters || pendingBytes[letter.pipeline]! >= DeadLetterBlock.targetBytes {
                try flush(letter.pipeline, db)
            }
        }

        mutating func flush(_ pipeline: String, _ db: Database) throws {
            pendingBytes[pipeline] = 0
            guard let letters = pending.removeValue(forKey: pipeline), !letters.isEmpty else { return }
            let block = try SQLiteDeadLetterBlocks.insert(db, pipeline: pipeline, DeadLetterBlock(letters: letters))
            for (slot, l) in letters.enumerated() { moved[pipeline, default: []].append((l.id, DeadLetterBlock.id(block: block, slot: slot))) }
        }

        /// The new id of the last letter whose old id is at most `id` (0: none); `pairs` is in
        /// ascending order of old ids (each pipeline's letters arrive in id order).
        static func lastMoved(_ pairs: [(old: Int64, new: Int64)], atOrBefore id: Int64) -> Int64 {
            var low = 0, high = pairs.count
            while low < high {
                let mid = (low + high) / 2
                if pairs[mid].old <= id { low = mid + 1 } else { high = mid }
            }
            return low == 0 ? 0 : pairs[low - 1].new
        }

        mutating func finish(_ db: Database) throws {
            for pipeline in pending.keys.sorted() { try flush(pipeline, db) }
            let suffix = StateTables.deadLetterSinkSuffix
            for table in ["checkpoints", "checkpoint_history"] {
                let rows = try Row.fetchAll(
                    db, sql: "SELECT rowid, pipeline, value FROM \(table) WHERE pipeline LIKE ? AND partition = 'id'", arguments: ["%" + suffix])
                for row in rows {
                    let name: String = row[1]
                    guard name.hasSuffix(suffix), let forwarded = Int64(row[2] as String) else { continue }
                    let pipeline = String(name.dropLast(suffix.count))
                    let new = Self.lastMoved(moved[pipeline] ?? [], atOrBefore: forwarded)
                    try db.execute(sql: "UPDATE \(table) SET value = ? WHERE rowid = ?", arguments: [String(new), row[0] as Int64])
                }
            }
        }
    }

    public func stateContents() async throws -> [String: Int] {
        try await contents()
    }

    func contents() async throws -> [String: Int] {
        try await pool.read { db in
            var counts: [String: Int] = [:]
            for table in StateTables.all where table.name != StateTables.sequencesTable {
                let sql =
                    table.name == "dead_letters"
                    ? "SELECT COALESCE(SUM(letters), 0) FROM dead_letter_blocks" : "SELECT count(*) FROM \(table.name)"
                let n = try Int.fetchOne(db, sql: sql) ?? 0
                if n > 0 { counts[table.name] = n }
            }
            return counts
        }
    }

    public func otherUsers() async throws -> [String] {
        guard let fd = useLock else {
            return ["nobody can tell: the lock file \(path)-inuse.lock cannot be opened (check the directory's permissions)"]
        }
        guard flock(fd, LOCK_EX | LOCK_NB) == 0 else {
            return ["another sluice process has \(path) open (a running pipeline, `sluice serve`, or another command)"]
        }
        return []
    }
}
