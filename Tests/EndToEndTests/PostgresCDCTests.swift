import Foundation
import Testing
import SluiceTesting

/// Log-based CDC (pgoutput over streaming replication) into an NDJSON audit trail.
@Suite(.offCooperativePool, .serialized) struct PostgresCDCTests {
    /// Transactions over two tables (inserts, updates, deletes, one rolled back) while the CDC
    /// pipeline is `kill -9`'d and restarted again and again: the audit trail holds every
    /// committed change exactly once, in commit order, and nothing of the rolled-back one.
    @Test func theAuditTrailHoldsEveryCommittedChangeOnceInCommitOrderAcrossKills() async throws {
        let url = try postgresURL()
        let s = try makeSchema("cdc")
        let slot = "slot_\(s)", publication = "pub_\(s)"
        defer { dropCDCObjects(slots: [slot], publication: publication, schemas: [s]) }
        try await psqlAsync(
            """
            CREATE TABLE \(s).t1 (id int PRIMARY KEY, n int, note text, amount numeric(10,2), j jsonb, b bytea, at timestamptz);
            CREATE TABLE \(s).t2 (id int PRIMARY KEY);
            """)
        let dir = try makeWorkDirectory("pg-cdc")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try write(
            """
            pipelines:
              changes:
                source:
                  postgres_cdc: { url: "\(url)", slot: \(slot), publication: \(publication), tables: [\(s).t1, \(s).t2] }
                sink:
                  ndjson: { path: out, max_file_size: 64KB, max_file_age: 300ms }
            """, to: "\(dir)/p.yaml")
        func start() throws -> Process {
            try SluiceProcess.start(["run", "p.yaml", "--no-progress", "--log-level", "warning"], in: dir, log: "\(dir)/sluice.log")
        }
        var sluice = try start()
        defer { if sluice.isRunning { kill(sluice.processIdentifier, SIGKILL) } }
        // Changes before the slot is ready belong to its snapshot (as `r`), not to the stream.
        try #require(try await waitForReadySlots([slot]), "the slot was not created")
        var expected = 0, kills = 0, killsAfterCommits = 0, committedAtLastKill = 0
        var generator = SystemRandomNumberGenerator()
        for chunk in 0..<30 {
            var sql = ""
            for i in (chunk * 10 + 1)...(chunk * 10 + 10) {
                sql += "BEGIN; INSERT INTO \(s).t1 VALUES (\(i), \(i), 'n\(i)', \(i).25, '{\"k\": \(i)}', '\\x0a0b', now()); "
                sql += "UPDATE \(s).t1 SET n = n + 1 WHERE id = \(i); "
                if i % 3 == 0 { sql += "DELETE FROM \(s).t1 WHERE id = \(i - 1); " }
                sql += "INSERT INTO \(s).t2 VALUES (\(i)); COMMIT; "
                expected += 3 + (i % 3 == 0 ? 1 : 0)
            }
            if chunk == 7 { sql += "BEGIN; INSERT INTO \(s).t1 VALUES (-5, 0, 'rollback', 0, null, null, now()); ROLLBACK; " }
            try await psqlAsync(sql)
            if chunk % 3 == 1 {
                // Wait until this run has committed some of the trail (however loaded the machine
                // is), then kill at a random moment: restarts must resume, not start over.
                try await waitUntil(seconds: 10) { try outputLines("\(dir)/out").count > committedAtLastKill }
                try await Task.sleep(for: .milliseconds(Int.random(in: 0...400, using: &generator)))
                let before = try outputLines("\(dir)/out").count
                kill(sluice.processIdentifier, SIGKILL)
                await waitForExit(sluice)
                kills += 1
                if before > committedAtLastKill { killsAfterCommits += 1 }
                committedAtLastKill = before
                sluice = try start()
            }
        }
        try await psqlAsync("INSERT INTO \(s).t1 (id, note) VALUES (-1, 'last')")
        expected += 1
        var lines: [[String: Any]] = []
        for _ in 0..<360 {
            try await Task.sleep(for: .milliseconds(250))
            lines = try outputLines("\(dir)/out").compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
            if lines.contains(where: { ($0["after"] as? [String: Any])?["note"] as? String == "last" }) { break }
        }
        kill(sluice.processIdentifier, SIGTERM)
        await waitForExit(sluice)
        #expect(sluice.terminationStatus == 0, "\((try? String(contentsOfFile: "\(dir)/sluice.log", encoding: .utf8)) ?? "")")
        expectNothingMissing(log: "\(dir)/sluice.log")
        #expect(kills >= 10 && killsAfterCommits >= 5, "\(kills) kills, \(killsAfterCommits) after new commits")
        let keys = lines.map { "\($0["lsn"] ?? "")#\($0["seq"] ?? "")" }
        #expect(Set(keys).count == keys.count, "\(keys.count - Set(keys).count) changes written twice")
        #expect(lines.count == expected, "\(lines.count) changes in the trail, \(expected) committed")
        // Commit order: LSNs never go back (files are named in the order they were written).
        let lsns = lines.compactMap { ($0["lsn"] as? String).flatMap(Self.lsn) }
        #expect(zip(lsns, lsns.dropFirst()).allSatisfy { $0 <= $1 }, "the trail is not in commit order")
        #expect(!lines.contains { ($0["after"] as? [String: Any])?["note"] as? String == "rollback" })
        // The envelope: an insert, an update and a delete of the first transaction.
        let first = lines.filter { ($0["table"] as? String) == "\(s).t1" && (($0["after"] ?? $0["before"]) as? [String: Any])?["id"] as? Int == 3 }
        #expect(first.map { $0["op"] as? String } == ["c", "u"])
        let insert = try #require(first.first)
        #expect((insert["after"] as? [String: Any])?["amount"] as? Double == 3.25)
        #expect(((insert["after"] as? [String: Any])?["j"] as? [String: Any])?["k"] as? Int == 3)
        #expect((insert["source"] as? [String: Any])?["table"] as? String == "t1" && (insert["source"] as? [String: Any])?["schema"] as? String == s)
        #expect(lines.contains { $0["op"] as? String == "d" && ($0["before"] as? [String: Any])?["id"] as? Int == 2 })
        // The slot was told how far the trail is durable.
        let confirmed = try psql("SELECT confirmed_flush_lsn FROM pg_replication_slots WHERE slot_name = '\(slot)'").first.flatMap(Self.lsn) ?? 0
        #expect(confirmed > 0)
    }

    /// The server ends the replication connection (as a restart or failover would) twice
    /// mid-stream: the pipeline streams again by itself and the trail stays exact.
    @Test func aBrokenReplicationStreamIsResumedWithoutLossOrDuplicates() async throws {
        let url = try postgresURL()
        let s = try makeSchema("cdcbreak")
        let slot = "slot_\(s)", publication = "pub_\(s)"
        defer { dropCDCObjects(slots: [slot], publication: publication, schemas: [s]) }
        try await psqlAsync("CREATE TABLE \(s).t (id int PRIMARY KEY, v text)")
        let dir = try makeWorkDirectory("pg-cdc-break")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try write(
            """
            pipelines:
              changes:
                source:
                  postgres_cdc: { url: "\(url)", slot: \(slot), publication: \(publication), tables: [\(s).t] }
                sink:
                  ndjson: { path: out, max_file_age: 200ms }
            """, to: "\(dir)/p.yaml")
        let sluice = try SluiceProcess.start(["run", "p.yaml", "--no-progress", "--log-level", "warning"], in: dir, log: "\(dir)/sluice.log")
        defer { if sluice.isRunning { kill(sluice.processIdentifier, SIGKILL) } }
        func delivered() throws -> Set<Int> {
            Set(
                try outputLines("\(dir)/out").compactMap {
                    ((try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any])?["after"] as? [String: Any])?["id"] as? Int
                })
        }
        // Rows inserted before the slot is ready belong to its snapshot, not to the stream.
        try #require(try await waitForReadySlots([slot]), "the slot was not created")
        for round in 0..<3 {
            let rows = Set((round * 100 + 1)...(round * 100 + 100))
            try await psqlAsync("INSERT INTO \(s).t SELECT i, 'r\(round)' FROM generate_series(\(round * 100 + 1), \(round * 100 + 100)) i")
            // The round's rows came through the stream, so the break lands mid-stream (not while
            // the pipeline starts, which a loaded machine made happen: a different recovery).
            let arrived = try await waitUntil(seconds: 120) { try delivered().isSuperset(of: rows) }
            try #require(arrived, "round \(round)'s rows did not arrive")
            if round < 2 {
                let ended = try psql("SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots WHERE slot_name = '\(slot)' AND active")
                #expect(ended == ["t"], "the stream was not active to end: \(ended)")
            }
        }
        try await psqlAsync("INSERT INTO \(s).t VALUES (-1, 'last')")
        var ids: [Int] = []
        for _ in 0..<360 {
            try await Task.sleep(for: .milliseconds(250))
            ids = try outputLines("\(dir)/out").compactMap {
                ((try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any])?["after"] as? [String: Any])?["id"] as? Int
            }
            if ids.contains(-1) { break }
        }
        #expect(sluice.isRunning, "the pipeline stopped instead of streaming again")
        kill(sluice.processIdentifier, SIGTERM)
        await waitForExit(sluice)
        let log = (try? String(contentsOfFile: "\(dir)/sluice.log", encoding: .utf8)) ?? ""
        #expect(sluice.terminationStatus == 0, "\(log)")
        #expect(log.contains("streaming again"))
        #expect(ids.count == 301 && Set(ids).count == 301, "\(ids.count) events, \(Set(ids).count) distinct")
    }

    /// Slot safety: the published table is idle while another table is busy; the slot still
    /// moves forward (keepalive positions are confirmed), so it does not hold that WAL back.
    @Test func aSlotOnIdleTablesAdvancesWhileTheDatabaseIsBusy() async throws {
        let url = try postgresURL()
        let s = try makeSchema("cdcidle")
        let slot = "slot_\(s)", publication = "pub_\(s)"
        defer { dropCDCObjects(slots: [slot], publication: publication, schemas: [s]) }
        try await psqlAsync("CREATE TABLE \(s).idle (id int PRIMARY KEY); CREATE TABLE \(s).busy (id int, payload text)")
        let dir = try makeWorkDirectory("pg-cdc-idle")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try write(
            """
            pipelines:
              changes:
                source:
                  postgres_cdc: { url: "\(url)", slot: \(slot), publication: \(publication), tables: [\(s).idle] }
                sink:
                  ndjson: { path: out }
            """, to: "\(dir)/p.yaml")
        let sluice = try SluiceProcess.start(["run", "p.yaml", "--no-progress", "--log-level", "warning"], in: dir, log: "\(dir)/sluice.log")
        defer { if sluice.isRunning { kill(sluice.processIdentifier, SIGKILL) } }
        // Streaming starts once the snapshot is read: changes after this are changes, not snapshot rows.
        let streaming = try await waitUntil(seconds: 90) { try psql("SELECT active FROM pg_replication_slots WHERE slot_name = '\(slot)'") == ["t"] }
        try #require(streaming, "the pipeline did not start streaming")
        func confirmed() throws -> UInt64 {
            try psql("SELECT confirmed_flush_lsn FROM pg_replication_slots WHERE slot_name = '\(slot)'").first.flatMap(Self.lsn) ?? 0
        }
        let start = try confirmed()
        try await psqlAsync("INSERT INTO \(s).busy SELECT i, repeat('x', 200) FROM generate_series(1, 50000) i")
        let written = try psql("SELECT pg_current_wal_lsn()").first.flatMap(Self.lsn) ?? 0
        #expect(written - start > 5_000_000, "the busy table wrote \(written - start) bytes of WAL")
        // Feedback goes out at least every 5 s, once the server has decoded (and filtered out)
        // the busy WAL: the slot passes it (6 s alone; a loaded run took more than 20 s, so the
        // wait is for the condition, bounded by 120 s).
        let advanced = try await waitUntil(seconds: 120, interval: .milliseconds(250)) { try confirmed() >= written }
        let reached = try confirmed()
        #expect(advanced, "the slot stayed at \(Self.LSN(reached)) while the WAL reached \(Self.LSN(written))")
        kill(sluice.processIdentifier, SIGTERM)
        await waitForExit(sluice)
        #expect(try outputLines("\(dir)/out").isEmpty)
    }

    /// The audit trail in a Parquet lake partitioned by table: DuckDB reads the envelope back.
    @Test func aParquetAuditTrailIsReadByDuckDB() async throws {
        let url = try postgresURL()
        let s = try makeSchema("cdcpq")
        let slot = "slot_\(s)", publication = "pub_\(s)"
        defer { dropCDCObjects(slots: [slot], publication: publication, schemas: [s]) }
        try await psqlAsync(
            "CREATE TABLE \(s).a (id int PRIMARY KEY, v text, j jsonb); CREATE TABLE \(s).b (k text PRIMARY KEY); INSERT INTO \(s).a VALUES (1, 'existing', '{\"x\": 1}')"
        )
        let dir = try makeWorkDirectory("pg-cdc-parquet")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try write(
            """
            pipelines:
              audit:
                source:
                  postgres_cdc: { url: "\(url)", slot: \(slot), publication: \(publication), tables: [\(s).a, \(s).b] }
                sink:
                  parquet: { path: lake, partition_by: "table", max_file_age: 300ms }
            """, to: "\(dir)/p.yaml")
        let sluice = try SluiceProcess.start(["run", "p.yaml", "--no-progress", "--log-level", "info"], in: dir, log: "\(dir)/sluice.log")
        defer { if sluice.isRunning { kill(sluice.processIdentifier, SIGKILL) } }
        // Changes made once both tables are snapshotted are changes, not snapshot rows. (The slot
        // is active already while the exported snapshot is read, so that is not the signal.)
        let snapshotted = try await waitUntil(seconds: 90) {
            let log = (try? String(contentsOfFile: "\(dir)/sluice.log", encoding: .utf8)) ?? ""
            return log.contains("table=\(s).a") && log.contains("table=\(s).b") && log.components(separatedBy: "table snapshotted").count == 3
        }
        try #require(snapshotted, "the pipeline did not snapshot both tables: \((try? String(contentsOfFile: "\(dir)/sluice.log", encoding: .utf8)) ?? "")")
        try await psqlAsync(
            "BEGIN; INSERT INTO \(s).a VALUES (2, 'two', null); UPDATE \(s).a SET v = 'changed' WHERE id = 1; INSERT INTO \(s).b VALUES ('k1'); COMMIT; DELETE FROM \(s).a WHERE id = 2"
        )
        let query =
            "SELECT op || ' ' || \"table\" || ' ' || coalesce(json_extract_string(after, '$.v'), '-') FROM read_parquet('lake/**/*.parquet', hive_partitioning = false, union_by_name = true) ORDER BY lsn, seq"
        let script = "import duckdb\nfor r in duckdb.sql(\"\"\"\(query)\"\"\").fetchall(): print(r[0])"
        var rows: [String] = []
        let done = try await waitUntil(seconds: 60, interval: .milliseconds(300)) {
            guard FileManager.default.fileExists(atPath: "\(dir)/lake") else { return false }
            rows = (try? python(script, in: dir))?.split(separator: "\n").map(String.init) ?? []
            return rows.count == 5
        }
        kill(sluice.processIdentifier, SIGTERM)
        await waitForExit(sluice)
        #expect(done, "\(rows)")
        #expect(rows == ["r \(s).a existing", "c \(s).a two", "u \(s).a changed", "c \(s).b -", "d \(s).a -"], "\(rows)")
    }

    static func LSN(_ value: UInt64) -> String { String(value >> 32, radix: 16) + "/" + String(value & 0xFFFF_FFFF, radix: 16) }

    static func lsn(_ text: String) -> UInt64? {
        let parts = text.split(separator: "/")
        guard parts.count == 2, let high = UInt64(parts[0], radix: 16), let low = UInt64(parts[1], radix: 16) else { return nil }
        return high << 32 | low
    }
}
