import Foundation
import Logging
import SluiceCore
import SluiceTesting
import Testing

@testable import SluiceMySQL

/// The reader against a real MariaDB: checkpoints resume exactly, large transactions go in
/// parts, a server restart is ridden out, a purged binlog stops with the way out.
@Suite(.serialized) struct MySQLCDCReaderTests {
    func context() -> SourceContext {
        SourceContext(pipeline: "reader", state: MemoryStateStore(), logger: Logger(label: "reader"))
    }

    struct Read {
        var ids: [Int] = []
        var seqs: [Int] = []
        var ops: [String] = []
        var positions: [String] = []
    }

    /// Reads batches until `count` changes have come (at most `seconds`).
    func read(_ reader: any SourceReader, count: Int, seconds: Int = 60) async throws -> Read {
        var out = Read()
        let deadline = ContinuousClock.now + .seconds(seconds)
        while out.ids.count < count, ContinuousClock.now < deadline {
            guard let batch = try await reader.next() else { break }
            out.positions.append(batch.position.value)
            let r = batch.records
            for row in 0..<r.count {
                let after = r.column(named: "after")!, before = r.column(named: "before")!
                let image = after.isNull(row) ? before : after
                let json = image.withBytes(at: row) { (try? JSONSerialization.jsonObject(with: Data($0))) as? [String: Any] }
                out.ids.append((json?["id"] as? Int) ?? -1)
                if case let .int64(seq) = r.column(named: "seq")!.value(at: row) { out.seqs.append(Int(seq)) }
                out.ops.append(r.column(named: "op")!.withBytes(at: row) { String(decoding: $0, as: UTF8.self) })
            }
        }
        return out
    }

    func source(_ url: String, _ tables: [String], snapshot: MySQLCDCOptions.SnapshotMode = .never) throws -> MySQLCDCSource {
        var options = try MySQLCDCOptions(url: url, tables: tables)
        options.snapshot = snapshot
        return MySQLCDCSource(options: options, pipeline: "reader-\(UUID().uuidString)")
    }

    @Test func aLargeTransactionGoesInPartsAndResumesAfterThePartsDelivered() async throws {
        try await TestMySQLDatabase.with("parts") { db in
            try await db.execute("CREATE TABLE t (id INT PRIMARY KEY, v VARCHAR(20))")
            let s = try source(try testMySQLURLText(), ["\(db.name).t"])
            let reader = try await s.makeReader(resumingFrom: .empty, context: context())
            try await db.execute("INSERT INTO t SELECT seq, CONCAT('v', seq) FROM seq_1_to_25000")
            var firstPart: SourceBatch?
            var parts: [Int] = []
            while parts.reduce(0, +) < 25_000 {
                guard let batch = try await reader.next() else { break }
                if batch.records.count > 0 { parts.append(batch.records.count) }
                if firstPart == nil && batch.records.count > 0 { firstPart = batch }
            }
            await reader.close()
            // Parts of at least 10,000 changes (cut at a rows event's end), then the rest.
            let fullParts = parts.dropLast().filter { (10_000..<11_000).contains($0) }
            #expect(parts.count == 3, "\(parts)")
            #expect(parts.reduce(0, +) == 25_000, "\(parts)")
            #expect(fullParts.count == 2, "\(parts)")
            let checkpoint = try #require(firstPart.flatMap { MySQLCDCPosition.parse($0.position.value) })
            let delivered = try #require(checkpoint.delivered)
            #expect(delivered == parts[0])
            // Resumed after the first part: the rest of the transaction, each change once.
            let resumed = try await s.makeReader(resumingFrom: Checkpoint([s.partition: checkpoint.text]), context: context())
            let rest = try await read(resumed, count: 25_000 - delivered)
            await resumed.close()
            #expect(rest.ids == Array((delivered + 1)...25_000))
            #expect(rest.seqs == Array(delivered..<25_000))
        }
    }

    @Test func aCheckpointResumesAtTheNextTransaction() async throws {
        try await TestMySQLDatabase.with("resume") { db in
            try await db.execute("CREATE TABLE t (id INT PRIMARY KEY, v INT)")
            let s = try source(try testMySQLURLText(), ["\(db.name).t"])
            let reader = try await s.makeReader(resumingFrom: .empty, context: context())
            for i in 1...5 { try await db.execute("INSERT INTO t VALUES (\(i), 0)") }
            let first = try await read(reader, count: 5)
            await reader.close()
            #expect(first.ids == [1, 2, 3, 4, 5])
            // More changes while nobody reads (an update, a delete, a key change).
            try await db.execute(
                "INSERT INTO t VALUES (6, 0)", "UPDATE t SET v = 1 WHERE id = 2", "DELETE FROM t WHERE id = 3", "UPDATE t SET id = 7 WHERE id = 4")
            let resumed = try await s.makeReader(resumingFrom: Checkpoint([s.partition: first.positions.last!]), context: context())
            let second = try await read(resumed, count: 4)
            await resumed.close()
            #expect(second.ops == ["c", "u", "d", "u"])
            #expect(second.ids == [6, 2, 3, 7])
        }
    }

    @Test func aTableAddedLaterIsSnapshottedWhileStreaming() async throws {
        try await TestMySQLDatabase.with("added") { db in
            try await db.execute(
                "CREATE TABLE a (id INT PRIMARY KEY)", "CREATE TABLE b (id INT PRIMARY KEY)",
                "INSERT INTO b SELECT seq FROM seq_1_to_250")
            let first = try source(try testMySQLURLText(), ["\(db.name).a"])
            let reader = try await first.makeReader(resumingFrom: .empty, context: context())
            try await db.execute("INSERT INTO a VALUES (1)")
            let streamed = try await read(reader, count: 1)
            await reader.close()
            #expect(streamed.ops == ["c"])
            // The pipeline now captures b too: its existing rows arrive as snapshot reads, in
            // chunks, then its changes; a's stream goes on from the checkpoint.
            var options = first.options
            options.tables.append("\(db.name).b")
            options.snapshotChunk = 100
            options.snapshot = .initial
            let second = MySQLCDCSource(options: options, pipeline: "added")
            let resumed = try await second.makeReader(resumingFrom: Checkpoint([first.partition: streamed.positions.last!]), context: context())
            try await db.execute("INSERT INTO a VALUES (2)")
            let after = try await read(resumed, count: 251)
            try await db.execute("INSERT INTO b VALUES (251)")
            let last = try await read(resumed, count: 1)
            await resumed.close()
            #expect(Set(after.ids.enumerated().filter { after.ops[$0.offset] == "r" }.map(\.element)) == Set(1...250))
            #expect(after.ops.filter { $0 == "c" }.count == 1)
            #expect(last.ops == ["c"] && last.ids == [251])
        }
    }

    @Test func savepointsKeepTheirTransactionsChangesAndStatementLoggedChangesAreRefused() async throws {
        try await TestMySQLDatabase.with("savepoint") { db in
            try await db.execute("CREATE TABLE t (id INT PRIMARY KEY)")
            let s = try source(try testMySQLURLText(), ["\(db.name).t"])
            let reader = try await s.makeReader(resumingFrom: .empty, context: context())
            try await db.execute(
                "BEGIN", "INSERT INTO t VALUES (1)", "SAVEPOINT s", "INSERT INTO t VALUES (2)", "ROLLBACK TO SAVEPOINT s", "INSERT INTO t VALUES (3)", "COMMIT")
            let read = try await read(reader, count: 2)
            #expect(read.ids == [1, 3] && read.seqs == [0, 1])
            // A session logging SQL instead of rows: its change is not in the binlog as a row.
            try await db.execute("SET SESSION binlog_format = 'STATEMENT'", "BEGIN", "INSERT INTO t VALUES (4)", "COMMIT")
            await #expect {
                _ = try await self.read(reader, count: 1, seconds: 10)
            } throws: { error in
                (error as? SluiceError)?.message.contains("logged as SQL") == true
            }
            await reader.close()
        }
    }

    @Test func decimalKeysAndZerofillColumnsSnapshotExactly() async throws {
        try await TestMySQLDatabase.with("zerofill") { db in
            try await db.execute(
                "CREATE TABLE z (id DECIMAL(20,0) PRIMARY KEY, n INT(5) ZEROFILL, d DECIMAL(6,2) ZEROFILL)",
                "INSERT INTO z VALUES (12345678901234567890, 42, 1.5), (12345678901234567891, 7, 0), (12345678901234567892, NULL, NULL)")
            var options = try MySQLCDCOptions(url: try testMySQLURLText(), tables: ["\(db.name).z"])
            options.snapshotChunk = 1
            let s = MySQLCDCSource(options: options, pipeline: "zerofill")
            let reader = try await s.makeReader(resumingFrom: .empty, context: context())
            var afters: [String] = []
            let deadline = ContinuousClock.now + .seconds(30)
            while afters.count < 3, ContinuousClock.now < deadline, let batch = try await reader.next() {
                let after = batch.records.column(named: "after")!
                for row in 0..<batch.records.count { afters.append(after.withBytes(at: row) { String(decoding: $0, as: UTF8.self) }) }
            }
            try await db.execute("INSERT INTO z VALUES (5, 42, 1.5)")
            var streamed: [String] = []
            while streamed.isEmpty, ContinuousClock.now < deadline, let batch = try await reader.next() {
                let after = batch.records.column(named: "after")!
                for row in 0..<batch.records.count { streamed.append(after.withBytes(at: row) { String(decoding: $0, as: UTF8.self) }) }
            }
            await reader.close()
            // Each of the three neighbouring DECIMAL keys once (quoted, they compared as equal doubles).
            #expect(afters.count == 3)
            #expect(afters.first == #"{"id":12345678901234567890,"n":42,"d":1.50}"#)
            #expect(afters.last?.hasPrefix(#"{"id":12345678901234567892,"#) == true)
            // The binlog renders ZEROFILL columns the same.
            #expect(streamed == [#"{"id":5,"n":42,"d":1.50}"#])
        }
    }

    @Test func aServerRestartIsRiddenOutAndAPurgedBinlogStops() async throws {
        let server = try await PrivateMariaDB.start()
        do {
            try await restartAndPurge(server)
            await server.stop()
        } catch {
            await server.stop()
            throw error
        }
    }

    func restartAndPurge(_ server: PrivateMariaDB) async throws {
        let url = try MySQLURL(server.url)
        let admin = try await MySQLConnection.connect(url)
        try await admin.execute("CREATE TABLE t (id INT PRIMARY KEY)")
        let s = try source(server.url, ["sluice_test.t"])
        // `sluice cdc setup`: a server that does not log what CDC needs is named, with the fix;
        // the pipeline does not start on it.
        #expect(try await s.missingServerSettings().isEmpty)
        try await admin.execute("SET GLOBAL binlog_row_metadata = 'MINIMAL'", "SET GLOBAL binlog_format = 'MIXED'")
        let missing = try await s.missingServerSettings()
        #expect(missing.count == 2)
        #expect(missing.contains { $0.contains("SET GLOBAL binlog_row_metadata = 'FULL'") })
        #expect(missing.contains { $0.contains("SET GLOBAL binlog_format = 'ROW'") })
        await #expect(throws: SluiceError.self) { _ = try await s.makeReader(resumingFrom: .empty, context: context()) }
        try await admin.execute("SET GLOBAL binlog_row_metadata = 'FULL'", "SET GLOBAL binlog_format = 'ROW'")
        // Loose GTIDs are a warning (resuming by GTID needs growing sequence numbers).
        try await admin.execute("SET GLOBAL gtid_strict_mode = OFF")
        #expect(try await s.setUp().contains { $0.hasPrefix("warning: gtid_strict_mode is OFF") })
        try await admin.execute("SET GLOBAL gtid_strict_mode = ON")
        #expect(try await !s.setUp().contains { $0.hasPrefix("warning:") })
        await admin.close()
        let reader = try await s.makeReader(resumingFrom: .empty, context: context())
        func insert(_ ids: ClosedRange<Int>) async throws {
            let c = try await MySQLConnection.connect(url)
            try await c.execute("INSERT INTO t VALUES " + ids.map { "(\($0))" }.joined(separator: ","))
            await c.close()
        }
        try await insert(1...3)
        let before = try await read(reader, count: 3)
        #expect(before.ids == [1, 2, 3])
        // The server goes away and comes back: the stream starts again where it was.
        try await server.pause()
        try await server.resume()
        try await insert(4...6)
        let after = try await read(reader, count: 3, seconds: 90)
        #expect(after.ids == [4, 5, 6])
        await reader.close()
        // The binlog file the checkpoint points into is purged, but every change since is in a
        // file kept: the stream resumes after the checkpoint's GTID position.
        let c = try await MySQLConnection.connect(url)
        try await c.execute("FLUSH BINARY LOGS")
        try await c.execute("INSERT INTO t VALUES (7)")
        try await purgeAllButTheCurrentBinlog(c)
        let resumed = try await s.makeReader(resumingFrom: Checkpoint([s.partition: after.positions.last!]), context: context())
        let kept = try await read(resumed, count: 1)
        await resumed.close()
        #expect(kept.ids == [7])
        // A change since the checkpoint is purged: the pipeline stops, saying what to do.
        try await c.execute("INSERT INTO t VALUES (8)")
        try await c.execute("FLUSH BINARY LOGS")
        try await c.execute("INSERT INTO t VALUES (9)")
        try await purgeAllButTheCurrentBinlog(c)
        await c.close()
        let stale = try await s.makeReader(resumingFrom: Checkpoint([s.partition: kept.positions.last!]), context: context())
        await #expect {
            _ = try await stale.next()
        } throws: { error in
            guard let e = error as? SluiceError else { return false }
            return !e.isRetryable && e.message.contains("sluice cdc resnapshot")
        }
        await stale.close()
    }

    /// Purges every binlog file but the current one (a file a dump thread still reads is not
    /// purged: it waits until a closed reader's is gone).
    func purgeAllButTheCurrentBinlog(_ c: MySQLConnection) async throws {
        var logs = try await c.query("SHOW BINARY LOGS")
        let current = logs.string(logs.rows.count - 1, 0)!
        for _ in 0..<200 where logs.rows.count > 1 {
            try await c.execute("PURGE BINARY LOGS TO '\(current)'")
            logs = try await c.query("SHOW BINARY LOGS")
            if logs.rows.count > 1 { try await Task.sleep(for: .milliseconds(50)) }
        }
        #expect(logs.rows.count == 1)
    }
}
