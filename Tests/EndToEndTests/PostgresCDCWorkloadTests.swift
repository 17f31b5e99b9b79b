import Foundation
import Testing
import SluiceTesting

/// The CDC acceptance test: a randomized workload over three tables while two CDC pipelines
/// (current-state tables in PostgreSQL, an NDJSON audit trail) are `kill -9`'d again and again.
@Suite(.offCooperativePool, .serialized) struct PostgresCDCWorkloadTests {
    /// Inserts, updates (also of the key), deletes over three tables with int, numeric, text,
    /// jsonb, timestamptz, bytea, NULLs and a TOASTed text; multi-table transactions, a rolled-back
    /// one, a TRUNCATE and an `ALTER TABLE … ADD COLUMN` mid-stream. At the end the current-state
    /// tables equal the source tables, and the audit trail holds each committed change once (counted
    /// by an independent `test_decoding` slot), in commit order, with nothing of the rollback.
    @Test(arguments: [24])
    func currentStateAndAuditTrailAreExactAcrossKills(wantedKills: Int) async throws {
        let url = try postgresURL()
        let s = try makeSchema("cdcload")
        let target = "\(s)_cur"
        let slots = ["st_\(s)", "tr_\(s)", "or_\(s)"]
        defer { dropCDCObjects(slots: slots, publication: "pub_\(s)", schemas: [s, target]) }
        try await psqlAsync(
            """
            CREATE TABLE \(s).t1 (id int PRIMARY KEY, n int, note text, amount numeric(12,2), j jsonb, b bytea, at timestamptz, big text);
            CREATE TABLE \(s).t2 (id int PRIMARY KEY, v text, qty numeric);
            ALTER TABLE \(s).t2 REPLICA IDENTITY FULL;
            CREATE TABLE \(s).t3 (k text PRIMARY KEY, id2 int, payload jsonb, at timestamptz);
            CREATE PUBLICATION pub_\(s) FOR TABLE \(s).t1, \(s).t2, \(s).t3;
            """)
        try await psqlAsync(
            """
            SELECT pg_create_logical_replication_slot('\(slots[2])', 'test_decoding');
            """)
        let dir = try makeWorkDirectory("pg-cdc-load")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try write(
            """
            pipelines:
              state:
                source:
                  postgres_cdc: { url: "\(url)", slot: \(slots[0]), publication: pub_\(s) }
                sink:
                  postgres: { url: "\(url)", table: "\(target).{table}", mode: apply, commit_interval: 300ms }
              trail:
                source:
                  postgres_cdc: { url: "\(url)", slot: \(slots[1]), publication: pub_\(s), retained_wal_warning: 1KB }
                sink:
                  ndjson: { path: out, max_file_size: 256KB, max_file_age: 300ms }
            """, to: "\(dir)/p.yaml")
        func start() throws -> Process {
            try SluiceProcess.start(["run", "p.yaml", "--no-progress", "--log-level", "warning"], in: dir, log: "\(dir)/sluice.log")
        }
        var sluice = try start()
        defer { if sluice.isRunning { kill(sluice.processIdentifier, SIGKILL) } }
        // Both slots exist once the first run has started.
        try #require(try await waitForReadySlots(Array(slots[0...1])), "the pipelines did not create their slots")
        var workload = Workload(schema: s)
        var kills = 0, killsAfterCommits = 0, lastCommit = ""
        var generator = SystemRandomNumberGenerator()
        for chunk in 0..<(wantedKills * 2) {
            try await psqlAsync(workload.transactions(8, chunk: chunk, of: wantedKills * 2))
            guard chunk % 2 == 1 else { continue }
            // Wait until this run has committed (however loaded the machine is), then kill at a
            // random moment: restarts must resume, not start over.
            func lastCommitted() -> String? { (try? psql("SELECT committed_at FROM \(target).sluice_sink_state WHERE pipeline = 'state'").first) ?? nil }
            try await waitUntil(seconds: 10) { lastCommitted() ?? "" != lastCommit }
            try await Task.sleep(for: .milliseconds(Int.random(in: 0...500, using: &generator)))
            let committed = lastCommitted()
            kill(sluice.processIdentifier, SIGKILL)
            await waitForExit(sluice)
            kills += 1
            if let committed, committed != lastCommit { killsAfterCommits += 1; lastCommit = committed }
            sluice = try start()
        }
        try await psqlAsync("INSERT INTO \(s).t3 VALUES ('zz-last', 0, null, now())")
        // Wait for both pipelines to catch up: the last row in the state table and in the trail.
        let caughtUp = try await waitUntil(seconds: 120, interval: .milliseconds(250)) {
            try (try? psql("SELECT count(*) FROM \(target).t3 WHERE k = 'zz-last'")) == ["1"]
                && (try outputLines("\(dir)/out").contains { $0.contains("zz-last") })
        }
        kill(sluice.processIdentifier, SIGTERM)
        await waitForExit(sluice)
        let log = (try? String(contentsOfFile: "\(dir)/sluice.log", encoding: .utf8)) ?? ""
        #expect(caughtUp, "the pipelines did not catch up:\n\(log.suffix(3000))")
        #expect(sluice.terminationStatus == 0, "\(log.suffix(3000))")
        #expect(kills >= wantedKills && killsAfterCommits >= wantedKills / 3, "\(kills) kills, \(killsAfterCommits) after new commits")
        // Slot safety: a restarted pipeline finds WAL held back by its slot, above this tiny threshold.
        #expect(log.contains("holds back more WAL"), "no retained-WAL warning")

        // Current state: every table equals its source, column by column, as text.
        for (table, columns, key) in [
            ("t1", ["id", "n", "note", "amount", "j", "b", "at", "big", "extra"], "id"), ("t2", ["id", "v", "qty"], "id"),
            ("t3", ["k", "id2", "payload", "at"], "k"),
        ] {
            let source = try tableFingerprint(s, table, columns: columns, orderBy: key)
            let copy = try tableFingerprint(target, table, columns: columns, orderBy: key)
            #expect(source == copy, "\(table): source \(source), current-state table \(copy)")
        }

        // Audit trail: the oracle slot counts the committed row changes of the three tables.
        let oracle =
            try psql(
                """
                SELECT count(*) FROM pg_logical_slot_peek_changes('\(slots[2])', NULL, NULL)
                WHERE data LIKE 'table \(s).%' AND data NOT LIKE '%TRUNCATE%'
                """
            ).first.flatMap { Int($0) } ?? -1
        let lines = try outputLines("\(dir)/out").compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
        let changes = lines.filter { $0["op"] as? String != "t" }
        let keys = lines.map { "\($0["lsn"] ?? "")#\($0["seq"] ?? "")" }
        #expect(Set(keys).count == keys.count, "\(keys.count - Set(keys).count) changes written twice")
        #expect(changes.count == oracle, "\(changes.count) changes in the trail, \(oracle) committed")
        #expect(lines.filter { $0["op"] as? String == "t" }.count == 1, "one TRUNCATE")
        let lsns = lines.compactMap { ($0["lsn"] as? String).flatMap(PostgresCDCTests.lsn) }
        #expect(zip(lsns, lsns.dropFirst()).allSatisfy { $0 <= $1 }, "the trail is not in commit order")
        #expect(!lines.contains { ($0["after"] as? [String: Any])?["note"] as? String == "rolled back" })
        // Unchanged TOASTed values: left out of `after` under REPLICA IDENTITY DEFAULT (t1).
        #expect(lines.contains { $0["op"] as? String == "u" && $0["table"] as? String == "\(s).t1" && ($0["after"] as? [String: Any])?["big"] == nil })
    }
}

/// Random transactions over the three tables of ``PostgresCDCWorkloadTests``.
struct Workload {
    let schema: String
    var nextID = 1
    var generator = SystemRandomNumberGenerator()

    init(schema: String) { self.schema = schema }

    /// `count` transactions (one rolled back in the third chunk, a TRUNCATE of t2 at a third of
    /// the run, a new column of t1 at half of it).
    mutating func transactions(_ count: Int, chunk: Int, of chunks: Int) -> String {
        let s = schema
        var sql = ""
        if chunk == chunks / 3 { sql += "TRUNCATE \(s).t2; " }
        if chunk == chunks / 2 { sql += "ALTER TABLE \(s).t1 ADD COLUMN extra int; " }
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
        let s = schema
        let id = nextID
        let pick = { (table: String, key: String) in "(SELECT \(key) FROM \(s).\(table) ORDER BY random() LIMIT 1)" }
        switch Int.random(in: 0..<14, using: &generator) {
        case 0, 1:
            nextID += 1
            let note = rollback ? "'rolled back'" : (id % 7 == 0 ? "NULL" : "'note \(id) ''quoted'''")
            let big = id % 5 == 0 ? "(SELECT string_agg(md5(random()::text), '') FROM generate_series(1, 400))" : "NULL"
            return "INSERT INTO \(s).t1 (id, n, note, amount, j, b, at, big) VALUES (\(id), \(id % 11 == 0 ? "NULL" : String(id)), \(note), "
                + "\(id).\(id % 100), '{\"k\": \(id), \"tags\": [\"a\", \"b\"]}', '\\x\(String(format: "%02x", id % 256))ff', now() - interval '\(id) seconds', \(big))"
        case 2, 3:
            let extra = hasExtra ? ", extra = n" : ""
            return "UPDATE \(s).t1 SET n = coalesce(n, 0) + 1, amount = amount * 2\(extra) WHERE id = \(pick("t1", "id"))"
        case 4:
            return
                "UPDATE \(s).t1 SET big = (SELECT string_agg(md5(random()::text), '') FROM generate_series(1, 300)), note = NULL WHERE id = \(pick("t1", "id"))"
        case 5:
            return "DELETE FROM \(s).t1 WHERE id = \(pick("t1", "id"))"
        case 6, 7:
            nextID += 1
            return "INSERT INTO \(s).t2 VALUES (\(id), 'v\(id)', \(id).5)"
        case 8:
            return "UPDATE \(s).t2 SET v = v || '+', qty = qty + 1 WHERE id = \(pick("t2", "id"))"
        case 9:
            return "DELETE FROM \(s).t2 WHERE id = \(pick("t2", "id"))"
        case 10, 11:
            nextID += 1
            return "INSERT INTO \(s).t3 VALUES ('k\(id)', \(id), '{\"id\": \(id)}', now())"
        case 12:
            // A key change: the old key disappears, the new one appears.
            return "UPDATE \(s).t3 SET k = k || 'x', id2 = id2 + 1 WHERE k = \(pick("t3", "k"))"
        default:
            return "DELETE FROM \(s).t3 WHERE k = \(pick("t3", "k"))"
        }
    }
}

/// Snapshots: the rows that exist before the pipeline starts, and those of a table that joins
/// the publication later, handed over to the stream without loss or duplicates.
@Suite(.offCooperativePool, .serialized) struct PostgresCDCSnapshotTests {
    /// 50,000 existing rows are read in the snapshot exported with the slot (chunks of 250) while
    /// rows are inserted, updated and deleted; later a table with rows of its own joins the
    /// publication and is snapshotted while streaming (watermarks) under concurrent updates.
    /// With `kills`, the pipeline is `kill -9`'d during the snapshot: the rest is read after the
    /// restart from the last committed chunk.
    @Test(arguments: [0, 4])
    func existingRowsAndStreamedChangesArriveOnce(kills wantedKills: Int) async throws {
        let url = try postgresURL()
        let s = try makeSchema("cdcsnap")
        let target = "\(s)_cur"
        let slots = ["st_\(s)", "tr_\(s)", "or_\(s)"]
        defer { dropCDCObjects(slots: slots, publication: "pub_\(s)", schemas: [s, target]) }
        try await psqlAsync(
            """
            CREATE TABLE \(s).a (id int PRIMARY KEY, v text, n numeric, at timestamptz);
            INSERT INTO \(s).a SELECT i, 'v' || i, i * 1.5, '2026-01-01'::timestamptz + i * interval '1 minute' FROM generate_series(1, 50000) i;
            CREATE TABLE \(s).b (k text PRIMARY KEY, n int);
            INSERT INTO \(s).b SELECT 'k' || i, i FROM generate_series(1, 3000) i;
            CREATE PUBLICATION pub_\(s) FOR TABLE \(s).a;
            """)
        try await psqlAsync("SELECT pg_create_logical_replication_slot('\(slots[2])', 'test_decoding')")
        let dir = try makeWorkDirectory("pg-cdc-snap")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try write(
            """
            pipelines:
              state:
                source:
                  postgres_cdc: { url: "\(url)", slot: \(slots[0]), publication: pub_\(s), snapshot_chunk: 250 }
                sink:
                  postgres: { url: "\(url)", table: "\(target).{table}", mode: apply, commit_interval: 200ms }
              trail:
                source:
                  postgres_cdc: { url: "\(url)", slot: \(slots[1]), publication: pub_\(s), snapshot_chunk: 250 }
                sink:
                  ndjson: { path: out, max_file_size: 1MB, max_file_age: 200ms }
            """, to: "\(dir)/p.yaml")
        var runs = 0
        func start() throws -> Process {
            runs += 1  // a log per run (starting truncates it)
            return try SluiceProcess.start(["run", "p.yaml", "--no-progress", "--log-level", "info"], in: dir, log: "\(dir)/sluice-\(runs).log")
        }
        var sluice = try start()
        defer { if sluice.isRunning { kill(sluice.processIdentifier, SIGKILL) } }
        // The rounds below must come after the slots' start (a slot that is still being created
        // takes what commits meanwhile into its snapshot).
        try #require(try await waitForReadySlots(Array(slots[0...1])), "the pipelines did not create their slots")
        // Changes while the snapshot is read (and the pipeline killed, with `kills`).
        var kills = 0
        for round in 0..<20 {
            try await psqlAsync(
                """
                UPDATE \(s).a SET v = v || '+', n = n + 1 WHERE id % 97 = \(round);
                DELETE FROM \(s).a WHERE id % 389 = \(round);
                INSERT INTO \(s).a VALUES (\(100_000 + round), 'new', 0, now());
                """)
            if kills < wantedKills {
                // Mid-snapshot: after this run committed a chunk, before the snapshot is done.
                let before = (try? psql("SELECT count(*) FROM \(target).a").first.flatMap { Int($0) } ?? 0) ?? 0
                try await waitUntil(seconds: 20, interval: .milliseconds(20)) {
                    (try? psql("SELECT count(*) FROM \(target).a").first.flatMap { Int($0) } ?? 0) ?? 0 > before
                }
                kill(sluice.processIdentifier, SIGKILL)
                await waitForExit(sluice)
                kills += 1
                sluice = try start()
            }
            try await Task.sleep(for: .milliseconds(100))
        }
        // A table joins the publication: its rows are snapshotted while changes stream.
        try await psqlAsync("ALTER PUBLICATION pub_\(s) ADD TABLE \(s).b")
        for round in 0..<10 {
            try await psqlAsync(
                "UPDATE \(s).b SET n = n + 1000 WHERE n % 50 = \(round); INSERT INTO \(s).b VALUES ('new\(round)', -\(round)); DELETE FROM \(s).b WHERE n = \(round + 100)"
            )
            try await Task.sleep(for: .milliseconds(150))
        }
        // Snapshots read while streaming go on beside the stream: the last row below proves the
        // rest arrived only once both pipelines have read b's snapshot (which follows a's rest).
        let lastLog = "\(dir)/sluice-\(runs).log"
        let snapshotted = try await waitUntil(seconds: 180, interval: .milliseconds(250)) {
            let lines = ((try? String(contentsOfFile: lastLog, encoding: .utf8)) ?? "").split(separator: "\n")
            return ["state", "trail"].allSatisfy { pipeline in
                lines.contains { $0.contains("table snapshotted") && $0.contains("pipeline=\(pipeline) ") && $0.hasSuffix("table=\(s).b") }
            }
        }
        #expect(snapshotted, "the pipelines did not finish snapshotting table b")
        try await psqlAsync("INSERT INTO \(s).b VALUES ('zz-last', 0)")
        let caughtUp = try await waitUntil(seconds: 120, interval: .milliseconds(250)) {
            try (try? psql("SELECT count(*) FROM \(target).b WHERE k = 'zz-last'")) == ["1"]
                && (try outputLines("\(dir)/out").contains { $0.contains("zz-last") })
        }
        kill(sluice.processIdentifier, SIGTERM)
        await waitForExit(sluice)
        let log = (1...runs).map { (try? String(contentsOfFile: "\(dir)/sluice-\($0).log", encoding: .utf8)) ?? "" }.joined()
        #expect(caughtUp, "the pipelines did not catch up:\n\(log.suffix(3000))")
        #expect(sluice.terminationStatus == 0, "\(log.suffix(3000))")
        #expect(kills == wantedKills)
        #expect(log.contains("snapshotting it while streaming"))

        // The current-state tables equal the sources.
        for (table, key) in [("a", "id"), ("b", "k")] {
            let render = { (schema: String) in
                "SELECT count(*) || ':' || md5(string_agg(t::text, E'\\n' ORDER BY \(key))) FROM (SELECT * FROM \(schema).\(table)) t"
            }
            let source = try psql(render(s)),
                copy = try psql(
                    render(target).replacingOccurrences(of: "SELECT * FROM", with: "SELECT \(table == "a" ? "id, v, n, at::timestamptz" : "k, n::int") FROM"))
            #expect(source == copy, "\(table): source \(source), current-state table \(copy)")
        }
        // The trail: each committed change once (the oracle slot counts them), each existing row
        // of a snapshot once when nothing interrupted it.
        let oracle =
            try psql("SELECT count(*) FROM pg_logical_slot_peek_changes('\(slots[2])', NULL, NULL) WHERE data LIKE 'table \(s).a:%'")
            .first.flatMap { Int($0) } ?? -1
        let lines = try outputLines("\(dir)/out").compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
        let changesOfA = lines.filter { $0["table"] as? String == "\(s).a" && $0["op"] as? String != "r" }
        #expect(changesOfA.count == oracle, "\(changesOfA.count) changes of a in the trail, \(oracle) committed")
        let keys = lines.map { "\($0["lsn"] ?? "")#\($0["seq"] ?? "")#\($0["op"] ?? "")" }
        #expect(Set(keys).count == keys.count, "\(keys.count - Set(keys).count) events written twice")
        let reads = lines.filter { $0["op"] as? String == "r" && $0["table"] as? String == "\(s).a" }
        let readIDs = reads.compactMap { ($0["after"] as? [String: Any])?["id"] as? Int }
        if wantedKills == 0 {
            // The exported snapshot: exactly the 50,000 rows as they were when the slot was created.
            #expect(readIDs.count == 50_000 && Set(readIDs).count == 50_000, "\(readIDs.count) snapshot rows, \(Set(readIDs).count) distinct")
            #expect(reads.allSatisfy { (($0["after"] as? [String: Any])?["v"] as? String)?.hasSuffix("+") == false })
        } else {
            #expect(Set(readIDs).count == readIDs.count, "\(readIDs.count - Set(readIDs).count) rows read twice")
            #expect(log.contains("reading the rest while streaming"), "no kill landed during the exported snapshot")
        }
    }
}
