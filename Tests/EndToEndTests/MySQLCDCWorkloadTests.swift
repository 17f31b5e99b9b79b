import Foundation
import SluiceTesting
import Testing

/// The MySQL CDC acceptance test: existing rows and a randomized workload over three MariaDB
/// tables while two `mysql_cdc` pipelines (current-state tables in PostgreSQL, an NDJSON audit
/// trail) are `kill -9`'d again and again, during the snapshot and after it.
@Suite(.offCooperativePool, .serialized) struct MySQLCDCWorkloadTests {
    /// Inserts, updates (also of the key), deletes with int, decimal, latin1 text, JSON, bytes,
    /// DATETIME(6), TIMESTAMP(3), NULLs and a large text; multi-statement transactions, a
    /// rolled-back one, a TRUNCATE, an `ALTER TABLE … ADD COLUMN` mid-stream and a transaction
    /// of 12,000 rows (handed over in parts). At the end the current-state tables equal the
    /// source tables, and the audit trail holds each committed change once (counted by
    /// `mariadb-binlog`, the server's own binlog reader), in commit order, with nothing of the
    /// rollback, and each existing row's snapshot read at most once.
    @Test(arguments: [20])
    func currentStateAndAuditTrailAreExactAcrossKills(wantedKills: Int) async throws {
        let url = try mysqlURL()
        let pg = try postgresURL()
        let db = "mycdc_\(UInt32.random(in: 0...UInt32.max))"
        let target = "\(db)_cur"
        defer {
            _ = try? mysql("DROP DATABASE IF EXISTS \(db)")
            _ = try? psql("DROP SCHEMA IF EXISTS \(target) CASCADE")
        }
        try await mysqlAsync(
            """
            CREATE DATABASE \(db) CHARACTER SET utf8mb4; USE \(db);
            CREATE TABLE t1 (id INT PRIMARY KEY, n INT, note VARCHAR(100) CHARACTER SET latin1, amount DECIMAL(12,2) NOT NULL,
                j JSON, b VARBINARY(16), at DATETIME(6), big MEDIUMTEXT);
            CREATE TABLE t2 (id INT PRIMARY KEY, v VARCHAR(50), qty DECIMAL(10,1));
            CREATE TABLE t3 (k VARCHAR(20) PRIMARY KEY, id2 INT, at TIMESTAMP(3) NULL);
            INSERT INTO t1 SELECT seq, seq, CONCAT('existing é ', seq), seq / 4, JSON_OBJECT('k', seq), UNHEX(HEX(seq)), '2024-01-01' + INTERVAL seq MINUTE, NULL
                FROM seq_1_to_2000;
            INSERT INTO t2 SELECT seq + 500000, CONCAT('old', seq), seq FROM seq_1_to_300;
            """)
        let startStatus = try mysql("SHOW MASTER STATUS").first?.split(separator: "\t").map(String.init) ?? []
        let dir = try makeWorkDirectory("mysql-cdc-load")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let ids = (UInt32.random(in: 100_000...1_000_000), UInt32.random(in: 1_000_001...2_000_000))
        try write(
            """
            pipelines:
              state:
                source:
                  mysql_cdc: { url: "\(url)", tables: [\(db).t1, \(db).t2, \(db).t3], server_id: \(ids.0), snapshot_chunk: 150 }
                sink:
                  postgres: { url: "\(pg)", table: "\(target).{table}", mode: apply, commit_interval: 300ms }
              trail:
                source:
                  mysql_cdc: { url: "\(url)", tables: [\(db).t1, \(db).t2, \(db).t3], server_id: \(ids.1), snapshot_chunk: 150 }
                sink:
                  ndjson: { path: out, max_file_size: 256KB, max_file_age: 300ms }
            """, to: "\(dir)/p.yaml")
        func start() throws -> Process {
            try SluiceProcess.start(["run", "p.yaml", "--no-progress", "--log-level", "warning"], in: dir, log: "\(dir)/sluice.log")
        }
        var sluice = try start()
        defer { if sluice.isRunning { kill(sluice.processIdentifier, SIGKILL) } }
        // Both pipelines are reading (their snapshots have begun) before the workload starts.
        func lastCommitted() -> String? { (try? psql("SELECT committed_at FROM \(target).sluice_sink_state WHERE pipeline = 'state'").first) ?? nil }
        let started = try await waitUntil(seconds: 60) { try lastCommitted() != nil && outputLines("\(dir)/out").count > 0 }
        try #require(
            started, "the pipelines did not start: \((try? String(contentsOfFile: "\(dir)/sluice.log", encoding: .utf8))?.suffix(2000) ?? "")")
        var workload = MySQLWorkload(database: db)
        var kills = 0, killsAfterCommits = 0, lastCommit = ""
        var generator = SystemRandomNumberGenerator()
        let chunks = wantedKills * 2
        for chunk in 0..<chunks {
            try await mysqlAsync(workload.transactions(8, chunk: chunk, of: chunks), database: db)
            guard chunk % 2 == 1 else { continue }
            try await waitUntil(seconds: 10) { lastCommitted() ?? "" != lastCommit }
            try await Task.sleep(for: .milliseconds(Int.random(in: 0...500, using: &generator)))
            let committed = lastCommitted()
            kill(sluice.processIdentifier, SIGKILL)
            await waitForExit(sluice)
            kills += 1
            if let committed, committed != lastCommit { killsAfterCommits += 1; lastCommit = committed }
            sluice = try start()
        }
        try await mysqlAsync("INSERT INTO t3 VALUES ('zz-last', 0, NOW(3))", database: db)
        let caughtUp = try await waitUntil(seconds: 180, interval: .milliseconds(250)) {
            try (try? psql("SELECT count(*) FROM \(target).t3 WHERE k = 'zz-last'")) == ["1"]
                && (try outputLines("\(dir)/out").contains { $0.contains("zz-last") })
        }
        kill(sluice.processIdentifier, SIGTERM)
        await waitForExit(sluice)
        let log = (try? String(contentsOfFile: "\(dir)/sluice.log", encoding: .utf8)) ?? ""
        #expect(caughtUp, "the pipelines did not catch up:\n\(log.suffix(3000))")
        #expect(sluice.terminationStatus == 0, "\(log.suffix(3000))")
        #expect(kills >= wantedKills && killsAfterCommits >= wantedKills / 3, "\(kills) kills, \(killsAfterCommits) after new commits")

        // Current state: every table equals its source, value by value.
        let t1 = (
            mysql: """
            SELECT CONCAT_WS('|', id, IFNULL(n, '~'), IFNULL(note, '~'), amount, IFNULL(j, '~'), IFNULL(TO_BASE64(b), '~'),
            IFNULL(DATE_FORMAT(at, '%Y-%m-%d %H:%i:%s.%f'), '~'), IFNULL(MD5(big), '~'), IFNULL(extra, '~')) FROM t1
            """,
            postgres: """
            SELECT concat_ws('|', id, coalesce(n::text, '~'), coalesce(note, '~'), amount, coalesce(j, '~'), coalesce(b, '~'),
            coalesce(to_char(at, 'YYYY-MM-DD HH24:MI:SS.US'), '~'), coalesce(md5(big), '~'), coalesce(extra::text, '~')) FROM \(target).t1
            """
        )
        let t2 = (
            mysql: "SELECT CONCAT_WS('|', id, IFNULL(v, '~'), IFNULL(qty, '~')) FROM t2",
            postgres: "SELECT concat_ws('|', id, coalesce(v, '~'), coalesce(qty::text, '~')) FROM \(target).t2"
        )
        let t3 = (
            mysql:
                "SELECT CONCAT_WS('|', k, IFNULL(id2, '~'), IFNULL(DATE_FORMAT(CONVERT_TZ(at, @@session.time_zone, '+00:00'), '%Y-%m-%d %H:%i:%s.%f'), '~')) FROM t3",
            postgres:
                "SELECT concat_ws('|', k, coalesce(id2::text, '~'), coalesce(to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US'), '~')) FROM \(target).t3"
        )
        for (name, q) in [("t1", t1), ("t2", t2), ("t3", t3)] {
            let source = try mysql(q.mysql, database: db).sorted()
            let copy = try psql(q.postgres).sorted()
            #expect(source.count == copy.count, "\(name): \(source.count) rows at the source, \(copy.count) in the current-state table")
            let differing = zip(source, copy).filter { $0 != $1 }
            let count = differing.count
            #expect(count == 0, "\(name): \(differing.count) rows differ, first: \(differing.first.map { "\($0.0) / \($0.1)" } ?? "")")
        }

        // Audit trail: mariadb-binlog, reading the server's binlog itself, counts the row changes.
        let firstLog = try #require(startStatus.first), startPosition = try #require(startStatus.dropFirst().first)
        let decoded = try runTool(
            "mariadb-binlog",
            try mysqlClientArguments() + [
                "--read-from-remote-server", "--to-last-log", "--start-position=\(startPosition)", "--base64-output=decode-rows", "-v", firstLog,
            ])
        let oracle = decoded.filter { line in
            ["### INSERT INTO `\(db)`.", "### UPDATE `\(db)`.", "### DELETE FROM `\(db)`."].contains { line.hasPrefix($0) }
        }.count
        let lines = try outputLines("\(dir)/out").compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
        let ops = lines.map { $0["op"] as? String ?? "?" }
        let changes = lines.filter { ["c", "u", "d"].contains($0["op"] as? String ?? "") }
        let keys = changes.map { "\($0["file"] ?? ""):\($0["pos"] ?? "")#\($0["seq"] ?? "")" }
        #expect(Set(keys).count == keys.count, "\(keys.count - Set(keys).count) changes written twice")
        #expect(changes.count == oracle, "\(changes.count) changes in the trail, \(oracle) in the binlog")
        #expect(ops.filter { $0 == "t" }.count == 1, "one TRUNCATE")
        let reads = lines.filter { $0["op"] as? String == "r" }.map { "\($0["table"] ?? "")#\(String(describing: $0["key"] ?? ""))" }
        #expect(Set(reads).count == reads.count, "\(reads.count - Set(reads).count) snapshot rows read twice")
        #expect(reads.count > 0)
        let places = lines.compactMap { line -> (Int, Int)? in
            guard let file = line["file"] as? String, let pos = line["pos"] as? Int else { return nil }
            return (Int(file.split(separator: ".").last ?? "") ?? 0, pos)
        }
        #expect(zip(places, places.dropFirst()).allSatisfy { $0 <= $1 }, "the trail is not in binlog order")
        #expect(!lines.contains { ($0["after"] as? [String: Any])?["note"] as? String == "rolled back" })
    }
}

/// Random transactions over the three tables of ``MySQLCDCWorkloadTests``.
struct MySQLWorkload {
    let database: String
    var nextID = 10_000
    var generator = SystemRandomNumberGenerator()

    init(database: String) { self.database = database }

    /// `count` transactions (one rolled back in the third chunk, a TRUNCATE of t2 at a third of
    /// the run, a new column of t1 at half of it, a 12,000-row transaction at three quarters).
    mutating func transactions(_ count: Int, chunk: Int, of chunks: Int) -> String {
        var sql = ""
        if chunk == chunks / 3 { sql += "TRUNCATE TABLE t2; " }
        if chunk == chunks / 2 { sql += "ALTER TABLE t1 ADD COLUMN extra INT; " }
        if chunk == chunks * 3 / 4 { sql += "INSERT INTO t2 SELECT seq + 1000000, CONCAT('bulk', seq), seq / 10 FROM seq_1_to_12000; " }
        let hasExtra = chunk >= chunks / 2
        for t in 0..<count {
            let rollback = chunk == 2 && t == 0
            sql += "BEGIN; "
            for _ in 0..<Int.random(in: 1...5, using: &generator) {
                sql += operation(hasExtra: hasExtra, rollback: rollback) + "; "
            }
            sql += rollback ? "ROLLBACK; " : "COMMIT; "
        }
        return sql
    }

    mutating func operation(hasExtra: Bool, rollback: Bool) -> String {
        let id = nextID
        // A random existing key (the derived table lets a statement read the table it changes).
        let pick = { (table: String, key: String) in "(SELECT \(key) FROM (SELECT \(key) FROM \(table) ORDER BY RAND() LIMIT 1) AS r)" }
        // Half of the statements whose rows can be logged in part are (MINIMAL: the key and the
        // columns set; NOBLOB: all but unchanged TEXT and BLOB columns). Inserts that leave
        // columns to their defaults and key changes stay whole: those are refused in part.
        let image = { ["", "", "SET STATEMENT binlog_row_image = 'MINIMAL' FOR ", "SET STATEMENT binlog_row_image = 'NOBLOB' FOR "].randomElement()! }
        switch Int.random(in: 0..<14, using: &generator) {
        case 0, 1:
            nextID += 1
            let note = rollback ? "'rolled back'" : (id % 7 == 0 ? "NULL" : "'note \(id) ''quoted'' café'")
            let big = id % 5 == 0 ? "REPEAT(MD5(RAND()), 400)" : "NULL"
            return "INSERT INTO t1 (id, n, note, amount, j, b, at, big) VALUES (\(id), \(id % 11 == 0 ? "NULL" : String(id)), \(note), "
                + "\(id).\(id % 100), '{\"k\": \(id), \"tags\": [\"a\", \"b\"]}', UNHEX('\(String(format: "%02x", id % 256))FF00'), NOW(6) - INTERVAL \(id) SECOND, \(big))"
        case 2, 3:
            let extra = hasExtra ? ", extra = n" : ""
            return image() + "UPDATE t1 SET n = IFNULL(n, 0) + 1, amount = amount * 2\(extra) WHERE id = \(pick("t1", "id"))"
        case 4:
            return image() + "UPDATE t1 SET big = REPEAT(MD5(RAND()), 300), note = NULL WHERE id = \(pick("t1", "id"))"
        case 5:
            return image() + "DELETE FROM t1 WHERE id = \(pick("t1", "id"))"
        case 6, 7:
            nextID += 1
            return image() + "INSERT INTO t2 VALUES (\(id), 'v\(id)', \(id).5)"
        case 8:
            return image() + "UPDATE t2 SET v = CONCAT(v, '+'), qty = qty + 1 WHERE id = \(pick("t2", "id"))"
        case 9:
            return image() + "DELETE FROM t2 WHERE id = \(pick("t2", "id"))"
        case 10, 11:
            nextID += 1
            return "INSERT INTO t3 VALUES ('k\(id)', \(id), NOW(3))"
        case 12:
            // A key change: the old key disappears, the new one appears.
            return "UPDATE t3 SET k = CONCAT(k, 'x'), id2 = id2 + 1 WHERE k = \(pick("t3", "k"))"
        default:
            return image() + "DELETE FROM t3 WHERE k = \(pick("t3", "k"))"
        }
    }
}

/// Snapshots handed over to the stream under concurrent writes, with kills in the middle.
@Suite(.offCooperativePool, .serialized) struct MySQLCDCSnapshotTests {
    /// 60,000 existing rows are read in chunks of 100 while a writer updates, deletes and
    /// inserts rows all over the key range; the pipeline is `kill -9`'d four times during the
    /// snapshot. At the end the current-state table equals the source, no row was read twice
    /// by the snapshot, and every row of the source came through a snapshot read or a change.
    @Test func existingRowsAndConcurrentChangesArriveOnceAcrossKills() async throws {
        let url = try mysqlURL()
        let pg = try postgresURL()
        let db = "mysnap_\(UInt32.random(in: 0...UInt32.max))"
        let target = "\(db)_cur"
        defer {
            _ = try? mysql("DROP DATABASE IF EXISTS \(db)")
            _ = try? psql("DROP SCHEMA IF EXISTS \(target) CASCADE")
        }
        try await mysqlAsync(
            """
            CREATE DATABASE \(db); USE \(db);
            CREATE TABLE s (id INT PRIMARY KEY, v INT NOT NULL, note VARCHAR(40));
            INSERT INTO s SELECT seq, 0, CONCAT('row ', seq) FROM seq_1_to_60000;
            """)
        let dir = try makeWorkDirectory("mysql-cdc-snap")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let ids = (UInt32.random(in: 100_000...1_000_000), UInt32.random(in: 1_000_001...2_000_000))
        try write(
            """
            pipelines:
              state:
                source:
                  mysql_cdc: { url: "\(url)", tables: [\(db).s], server_id: \(ids.0), snapshot_chunk: 100 }
                sink:
                  postgres: { url: "\(pg)", table: "\(target).{table}", mode: apply, commit_interval: 200ms }
              trail:
                source:
                  mysql_cdc: { url: "\(url)", tables: [\(db).s], server_id: \(ids.1), snapshot_chunk: 100 }
                sink:
                  ndjson: { path: out, max_file_size: 1MB, max_file_age: 200ms }
            """, to: "\(dir)/p.yaml")
        func start() throws -> Process {
            try SluiceProcess.start(["run", "p.yaml", "--no-progress", "--log-level", "warning"], in: dir, log: "\(dir)/sluice.log")
        }
        // The writer: 400 transactions of random updates, deletes and inserts, all over the keys.
        var generator = SystemRandomNumberGenerator()
        var script = ""
        for t in 0..<400 {
            script += "BEGIN; "
            for _ in 0..<3 {
                let id = Int.random(in: 1...60_000, using: &generator)
                switch Int.random(in: 0..<4, using: &generator) {
                case 0: script += "DELETE FROM s WHERE id = \(id); "
                case 1:
                    script +=
                        "INSERT INTO s VALUES (\(100_000 + t * 3 + Int.random(in: 0..<3, using: &generator)), 1, 'new') ON DUPLICATE KEY UPDATE v = v + 1; "
                default: script += "UPDATE s SET v = v + 1, note = CONCAT(note, '+') WHERE id = \(id); "
                }
            }
            script += "COMMIT; DO SLEEP(0.01); "
        }
        var sluice = try start()
        defer { if sluice.isRunning { kill(sluice.processIdentifier, SIGKILL) } }
        let writer = try startMysql(script, database: db)
        defer { if writer.isRunning { kill(writer.processIdentifier, SIGKILL) } }
        func reads() -> Int { ((try? outputLines("\(dir)/out")) ?? []).filter { $0.contains(#""op":"r""#) }.count }
        var kills = 0, killsInSnapshot = 0
        for round in 1...4 {
            // Kill once this run has written more of the snapshot, before it is complete.
            let before = reads()
            try await waitUntil(seconds: 60) { reads() > before + 500 }
            try await Task.sleep(for: .milliseconds(Int.random(in: 0...300, using: &generator)))
            kill(sluice.processIdentifier, SIGKILL)
            await waitForExit(sluice)
            kills += 1
            if reads() < 60_000 { killsInSnapshot += 1 }
            if round < 4 { sluice = try start() }
        }
        let logBefore = ((try? String(contentsOfFile: "\(dir)/sluice.log", encoding: .utf8)) ?? "").utf8.count
        sluice = try SluiceProcess.start(["run", "p.yaml", "--no-progress", "--log-level", "info"], in: dir, log: "\(dir)/sluice.log")
        await waitForExit(writer)
        // Both pipelines finish their snapshots in this run; the last row comes after.
        let snapshotted = try await waitUntil(seconds: 180, interval: .milliseconds(250)) {
            let log = String(decoding: ((try? Data(contentsOf: URL(fileURLWithPath: "\(dir)/sluice.log"))) ?? Data()).dropFirst(logBefore), as: UTF8.self)
            let lines = log.split(separator: "\n")
            func logged(_ text: String, _ p: String) -> Bool { lines.contains { $0.contains(text) && $0.contains("pipeline=\(p)") } }
            // A pipeline whose snapshot a run before this one committed starts with none to read.
            return ["state", "trail"].allSatisfy { p in
                logged("streaming the binlog", p) && (logged("snapshot complete", p) || !logged("snapshotting tables while streaming", p))
            }
        }
        #expect(snapshotted, "the snapshots did not complete")
        try await mysqlAsync("INSERT INTO s VALUES (999999, 0, 'zz-last')", database: db)
        let caughtUp = try await waitUntil(seconds: 180, interval: .milliseconds(250)) {
            try (try? psql("SELECT count(*) FROM \(target).s WHERE id = 999999")) == ["1"]
                && (try outputLines("\(dir)/out").contains { $0.contains("zz-last") })
        }
        kill(sluice.processIdentifier, SIGTERM)
        await waitForExit(sluice)
        let log = (try? String(contentsOfFile: "\(dir)/sluice.log", encoding: .utf8)) ?? ""
        #expect(caughtUp, "the pipelines did not catch up:\n\(log.suffix(3000))")
        #expect(killsInSnapshot >= 3, "\(kills) kills, \(killsInSnapshot) during the snapshot")
        let source = try mysql("SELECT CONCAT_WS('|', id, v, IFNULL(note, '~')) FROM s", database: db).sorted()
        let copy = try psql("SELECT concat_ws('|', id, v, coalesce(note, '~')) FROM \(target).s").sorted()
        #expect(source.count == copy.count, "\(source.count) rows at the source, \(copy.count) in the current-state table")
        let differing = zip(source, copy).filter { $0 != $1 }.count
        #expect(differing == 0, "\(differing) rows differ")
        // The trail: each snapshot row once; every source row came through it.
        let lines = try outputLines("\(dir)/out").compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
        let readIDs = lines.filter { $0["op"] as? String == "r" }.compactMap { ($0["key"] as? [String: Any])?["id"] as? Int }
        #expect(Set(readIDs).count == readIDs.count, "\(readIDs.count - Set(readIDs).count) rows read twice by the snapshot")
        let touched = Set(readIDs).union(lines.compactMap { ($0["key"] as? [String: Any])?["id"] as? Int })
        let present = Set(source.compactMap { Int($0.split(separator: "|").first ?? "") })
        let missing = present.subtracting(touched).count
        #expect(missing == 0, "\(missing) source rows never came through")
    }
}
