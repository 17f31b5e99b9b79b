import Foundation
import SluiceCore

extension PostgresStateStore: StateTransferable {
    /// The tables this store keeps (the push queue's live in the embedded store only).
    static var transferTables: [StateTable] { StateTables.all.filter { $0.feature != .pushQueue } }

    /// The application name `sluice state migrate|import|export` connects with, so that its own
    /// connections are not taken for another process using the state.
    public static let transferApplicationName = "sluice-state-transfer"

    public func exportState(_ emit: @escaping @Sendable (StateRow) throws -> Void) async throws {
        try await pool.withSession { s in
            try s.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            do {
                // Exactly as stored (the default `hex` may be changed per database or role).
                try s.execute("SET LOCAL bytea_output = 'hex'")
                for table in Self.transferTables {
                    if table.name == StateTables.sequencesTable {
                        for numbered in Self.transferTables {
                            guard let id = numbered.idColumn else { continue }
                            let r = try s.query(
                                "SELECT COALESCE(pg_sequence_last_value(pg_get_serial_sequence('sluice.\(numbered.name)', '\(id)')), 0)")
                            let value = r.string(0, 0).flatMap(Int64.init) ?? 0
                            if value > 0 { try emit(StateRow(table: table.name, values: [.text(numbered.name), .int(value)])) }
                        }
                        continue
                    }
                    let order = table.idColumn.map { " ORDER BY \($0)" } ?? ""
                    try s.execute(
                        "DECLARE export_rows NO SCROLL CURSOR FOR SELECT \(table.columnNames.joined(separator: ", ")) FROM sluice.\(table.name)\(order)")
                    while true {
                        let r = try s.query("FETCH 10000 FROM export_rows")
                        if r.rows == 0 { break }
                        for i in 0..<r.rows {
                            try emit(
                                StateRow(table: table.name, values: try table.columns.indices.map { try Self.value(r.string(i, $0), table.columns[$0].type) }))
                        }
                    }
                    try s.execute("CLOSE export_rows")
                }
                try s.execute("COMMIT")
            } catch {
                try? s.execute("ROLLBACK")
                throw error
            }
        }
    }

    static func value(_ text: String?, _ type: StateTable.ColumnType) throws -> StateValue {
        guard let text else { return .null }
        func bad() -> SluiceError { SluiceError(.corruptState, "the state holds '\(text.prefix(40))' where a \(type) belongs") }
        switch type {
        case .int:
            guard let n = Int64(text) else { throw bad() }
            return .int(n)
        case .real:
            guard let d = Double(text) else { throw bad() }
            return .real(d)
        case .text: return .text(text)
        case .bool: return .bool(text == "t")
        case .bytes:
            guard text.hasPrefix("\\x"), let bytes = Self.hex(text.dropFirst(2)) else { throw bad() }
            return .bytes(bytes)
        }
    }

    static func hex(_ text: Substring) -> [UInt8]? {
        let digits = Array(text.utf8)
        guard digits.count % 2 == 0 else { return nil }
        var out: [UInt8] = []
        out.reserveCapacity(digits.count / 2)
        func nibble(_ c: UInt8) -> UInt8? {
            switch c {
            case 48...57: c - 48
            case 97...102: c - 87
            case 65...70: c - 55
            default: nil
            }
        }
        var i = 0
        while i < digits.count {
            guard let hi = nibble(digits[i]), let lo = nibble(digits[i + 1]) else { return nil }
            out.append(hi << 4 | lo)
            i += 2
        }
        return out
    }

    public func importState(_ next: @escaping @Sendable () throws -> StateRow?) async throws {
        try await pool.transaction { s in
            var lookahead = try next()
            var counters: [String: Int64] = [:]
            while let row = lookahead, row.table == StateTables.sequencesTable {
                if case .text(let name) = row.values[0], case .int(let value) = row.values[1] { counters[name] = value }
                lookahead = try next()
            }
            while let first = lookahead {
                guard let table = Self.transferTables.first(where: { $0.name == first.table }) else {
                    throw SluiceError(
                        .unsupported, "the PostgreSQL state store has no \(first.table) table (the push queue lives in a SQLite state store only)",
                        retryable: false)
                }
                try s.copyIn("COPY sluice.\(table.name) (\(table.columnNames.joined(separator: ", "))) FROM STDIN") { send in
                    var line: [UInt8] = []
                    while let row = lookahead, row.table == table.name {
                        line.removeAll(keepingCapacity: true)
                        Self.copyLine(row, into: &line)
                        try line.withUnsafeBytes { try send($0) }
                        lookahead = try next()
                    }
                }
            }
            // Each counter continues after the largest number the source gave out (or holds).
            for table in Self.transferTables {
                guard let id = table.idColumn else { continue }
                try s.query(
                    """
                    SELECT setval(pg_get_serial_sequence('sluice.\(table.name)', '\(id)'),
                        GREATEST(COALESCE((SELECT max(\(id)) FROM sluice.\(table.name)), 0), $1::int8) + 1, false)
                    """, [String(counters[table.name] ?? 0)])
            }
        }
    }

    /// One row in `COPY … FROM STDIN`'s text format.
    static func copyLine(_ row: StateRow, into line: inout [UInt8]) {
        for (i, value) in row.values.enumerated() {
            if i > 0 { line.append(0x09) }
            switch value {
            case .null: line += Array("\\N".utf8)
            case .int(let n): line += Array(String(n).utf8)
            case .real(let d): line += Array("\(d)".utf8)
            case .bool(let z): line.append(z ? UInt8(ascii: "t") : UInt8(ascii: "f"))
            case .text(let t):
                for b in t.utf8 {
                    switch b {
                    case 0x5C: line += [0x5C, 0x5C]
                    case 0x09: line += [0x5C, UInt8(ascii: "t")]
                    case 0x0A: line += [0x5C, UInt8(ascii: "n")]
                    case 0x0D: line += [0x5C, UInt8(ascii: "r")]
                    default: line.append(b)
                    }
                }
            case .bytes(let b):
                line += Array("\\\\x".utf8)
                let digits = Array("0123456789abcdef".utf8)
                for byte in b {
                    line.append(digits[Int(byte >> 4)])
                    line.append(digits[Int(byte & 0x0F)])
                }
            }
        }
        line.append(0x0A)
    }

    public func stateContents() async throws -> [String: Int] {
        try await pool.withSession { s in
            var counts: [String: Int] = [:]
            for table in Self.transferTables where table.name != StateTables.sequencesTable {
                let n = try s.query("SELECT count(*) FROM sluice.\(table.name)").string(0, 0).flatMap(Int.init) ?? 0
                if n > 0 { counts[table.name] = n }
            }
            return counts
        }
    }

    public func otherUsers() async throws -> [String] {
        let own = Self.transferApplicationName
        return try await pool.withSession { s in
            let r = try s.query(
                """
                SELECT coalesce(client_addr::text, 'local') || ' (' || application_name || ', pid ' || pid || ')' FROM pg_stat_activity
                WHERE datname = current_database() AND pid <> pg_backend_pid() AND application_name LIKE 'sluice%' AND application_name <> $1
                ORDER BY pid
                """, [own])
            return (0..<r.rows).compactMap { r.string($0, 0) }.map { "a sluice connection from \($0) uses this database" }
        }
    }
}
