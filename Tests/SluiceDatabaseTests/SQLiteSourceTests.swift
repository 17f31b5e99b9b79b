import Foundation
import GRDB
import Logging
import SluiceCore
@testable import SluiceDatabase
import SluiceTesting
import Testing

/// The SQLite source against real database files.
@Suite struct SQLiteSourceTests {
    func database(_ setup: String) throws -> (String, String) {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("sqlsrc-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let path = "\(dir)/app.db"
        let q = try DatabaseQueue(path: path)
        try q.write { try $0.execute(sql: setup) }
        return (dir, path)
    }

    func options(_ yaml: [String: Any]) throws -> SQLiteSourceOptions {
        try JSONDecoder().decode(SQLiteSourceOptions.self, from: try JSONSerialization.data(withJSONObject: yaml))
    }

    /// Reads everything (finite source), collecting rows as `[Value]` and the last position.
    func readAll(_ source: SQLiteSource, from checkpoint: Checkpoint = .empty, stopAfter: Int = .max) async throws -> ([[Value]], [DeadLetter], Checkpoint) {
        let ctx = SourceContext(pipeline: "p", state: MemoryStateStore(), logger: Logger(label: "t"))
        let reader = try await source.makeReader(resumingFrom: checkpoint, context: ctx)
        var rows: [[Value]] = [], rejects: [DeadLetter] = [], cp = checkpoint
        var batches = 0
        while batches < stopAfter, let b = try await reader.next() {
            batches += 1
            for i in 0..<b.records.count { rows.append(b.records.row(i)) }
            rejects += b.rejects
            cp = Checkpoint(cp.partitions.merging([b.position.partition: b.position.value]) { $1 })
        }
        return (rows, rejects, cp)
    }

    @Test func incrementalNeverSkipsRowsThatShareACursorValueAcrossPages() async throws {
        // 50 rows share each timestamp; pages of 7 cut through them.
        var sql = "CREATE TABLE t(id INTEGER PRIMARY KEY, ts TEXT NOT NULL, v REAL);"
        for i in 1...500 { sql += "INSERT INTO t VALUES (\(i), '2026-01-01T00:00:\(String(format: "%02d", i / 50))Z', \(Double(i) / 10));" }
        let (dir, path) = try database(sql)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let o = try options(["path": path, "table": "t", "mode": "incremental", "cursor": ["ts"], "batch_rows": 7])
        let source = SQLiteSource(options: o, path: path)
        // Stop half-way (as a crash after a commit would), then resume from the checkpoint.
        let (first, _, cp) = try await readAll(source, stopAfter: 30)
        let (rest, _, cp2) = try await readAll(source, from: cp)
        let ids = (first + rest).map { $0[0] }
        #expect(ids.count == 500 && Set(ids).count == 500, "every row once")
        // New rows: only those past the cursor arrive; nothing already read comes back.
        let q = try DatabaseQueue(path: path)
        try await q.write {
            try $0.execute(
                sql: """
                    INSERT INTO t VALUES (501, '2026-01-01T00:00:10Z', 0.1);
                    INSERT INTO t VALUES (502, '2026-01-01T00:00:11Z', 0.2);
                    INSERT INTO t VALUES (503, '2026-01-01T00:00:05Z', 0.3);
                    """)
        }
        let (more, _, _) = try await readAll(source, from: cp2)
        #expect(
            more.map { $0[0] } == [.int64(501), .int64(502)],
            "a row sharing the last cursor value but with a higher key is read; one committed late with an old cursor is not")
    }

    @Test func cursorValuesAreKeptExactly() async throws {
        let (dir, path) = try database(
            """
            CREATE TABLE t(id INTEGER PRIMARY KEY, score REAL NOT NULL, big INTEGER NOT NULL);
            INSERT INTO t VALUES (1, 0.1, 9007199254740993), (2, 0.30000000000000004, 9007199254740994), (3, 0.3, 9007199254740995);
            """)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        for cursor in [["score"], ["big"]] {
            let source = SQLiteSource(options: try options(["path": path, "table": "t", "mode": "incremental", "cursor": cursor, "batch_rows": 1]), path: path)
            let (first, _, cp) = try await readAll(source, stopAfter: 2)
            let (rest, _, _) = try await readAll(source, from: cp)
            #expect(first.count + rest.count == 3, "\(cursor): 0.3 and 0.30000000000000004, or 2^53+1 and +2, stay distinct")
        }
        let (_, _, cp) = try await readAll(
            SQLiteSource(options: try options(["path": path, "table": "t", "mode": "incremental", "cursor": ["big"]]), path: path))
        #expect(cp["t"]?.contains("9007199254740995") == true)
    }

    @Test func fullExtractsResumeMidPassAndStartOverWhenDone() async throws {
        var sql = "CREATE TABLE t(id INTEGER PRIMARY KEY, name TEXT);"
        for i in 1...100 { sql += "INSERT INTO t VALUES (\(i), 'n\(i)');" }
        let (dir, path) = try database(sql)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let source = SQLiteSource(options: try options(["path": path, "table": "t", "batch_rows": 30]), path: path)
        let (first, _, cp) = try await readAll(source, stopAfter: 2)
        #expect(first.count == 60)
        let (rest, _, done) = try await readAll(source, from: cp)
        #expect(rest.count == 40, "resumed after row 60")
        #expect(done["t"]?.contains("\"done\":true") == true)
        let (again, _, _) = try await readAll(source, from: done)
        #expect(again.count == 100, "a finished pass is followed by a new full pass")
    }

    @Test func valuesThatDoNotFitAreDeadLetteredAndBadConfigIsRefused() async throws {
        let (dir, path) = try database(
            """
            CREATE TABLE t(id INTEGER PRIMARY KEY, qty INTEGER, at DATETIME, maybe TEXT);
            INSERT INTO t VALUES (1, 5, '2026-11-26T10:00:00Z', 'x'), (2, 'lots', '2026-11-26T10:00:00Z', NULL), (3, 7, 1764151200, NULL);
            """)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let (rows, rejects, _) = try await readAll(SQLiteSource(options: try options(["path": path, "table": "t"]), path: path))
        #expect(rows.count == 2)
        #expect(rows[1][2] == .timestamp(1_764_151_200_000_000), "an integer timestamp is unix seconds")
        #expect(rejects.count == 1 && rejects[0].message.contains("qty") && rejects[0].location.hasPrefix("sqlite:t@"))
        await #expect(throws: SluiceError.self) {
            _ = try await readAll(SQLiteSource(options: try options(["path": path, "table": "t", "mode": "incremental", "cursor": ["maybe"]]), path: path))
        }
        await #expect(throws: SluiceError.self) {
            _ = try await readAll(SQLiteSource(options: try options(["path": path, "table": "nope"]), path: path))
        }
    }
}
