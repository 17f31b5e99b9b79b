import Foundation
import Testing
import SluiceTesting

/// `sluice dlq replay` from every stage and source kind: rows a PostgreSQL table refused (a
/// constraint, fixed), records pushed over HTTP that did not decode, rows the schema policy
/// refused, and a replay under dedupe where some records were delivered meanwhile.
@Suite(.offCooperativePool, .serialized, .timeLimit(.minutes(10))) struct DLQReplayStagesTests {
    static func replay(_ dir: String, _ pipeline: String = "p") async throws -> SluiceProcess.Result {
        try await SluiceProcess.runWithoutBlocking(["dlq", "replay", "-c", "p.yaml", "--pipeline", pipeline, "--no-progress"], in: dir)
    }

    @Test func rowsAPostgresTableRefusedAreReplayedOnceTheConstraintIsFixed() async throws {
        let dir = try makeWorkDirectory("dlq-replay-pg")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let schema = try makeSchema("dlqpg")
        defer { _ = try? psql("DROP SCHEMA \(schema) CASCADE") }
        try await psqlAsync(
            "CREATE TABLE \(schema).t (id bigint PRIMARY KEY, amount numeric(10,2) CONSTRAINT positive CHECK (amount > 0), ts timestamptz, tag text, body bytea)"
        )
        let url = try postgresURL()
        try write(
            """
            pipelines:
              p:
                source: { file: { path: "in/*.ndjson", columns: { id: int64, amount: "decimal(10,2)", ts: timestamp, tag: string, body: binary } } }
                sink: { postgres: { url: "\(url)", table: \(schema).t, commit_rows: 50 } }
            """, to: "\(dir)/p.yaml")
        // Every fifth amount is negative: the table's constraint refuses those rows.
        let rows = 200
        func line(_ i: Int) -> String {
            let amount = i % 5 == 0 ? "-\(i).25" : "\(i).25"
            let body = Data([0, UInt8(i % 256), 10, 255]).base64EncodedString()
            return
                "{\"id\":\(i),\"amount\":\"\(amount)\",\"ts\":\"2024-03-01T00:00:\(String(format: "%02d", i % 60)).000123Z\",\"tag\":\"t\\n\(i)\",\"body\":\"\(body)\"}"
        }
        try write((1...rows).map(line).joined(separator: "\n") + "\n", to: "\(dir)/in/1.ndjson")
        let first = try await SluiceProcess.runWithoutBlocking(["run", "p.yaml", "--no-progress", "--log-level", "warning"], in: dir)
        #expect(first.status == 0, "\(first.stderr)")
        #expect(try await psqlAsync("SELECT count(*) FROM \(schema).t") == ["\(rows - rows / 5)"])
        let letters = try await DLQReplayTests.letters(dir)
        #expect(letters.count == rows / 5 && letters.allSatisfy { $0["stage"] as? String == "sink" }, "\(letters.prefix(2))")

        // Still refused: the letters stay, one more attempt each.
        let early = try await Self.replay(dir)
        #expect(early.status == 0 && early.stdout.contains("replayed 0 of \(rows / 5)"), "\(early.stdout)\(early.stderr)")
        #expect(try await DLQReplayTests.letters(dir).allSatisfy { $0["attempts"] as? Int == 2 })

        try await psqlAsync("ALTER TABLE \(schema).t DROP CONSTRAINT positive")
        let fixed = try await Self.replay(dir)
        #expect(fixed.status == 0 && fixed.stdout.contains("replayed \(rows / 5) of \(rows / 5)"), "\(fixed.stdout)\(fixed.stderr)")
        #expect(try await DLQReplayTests.letters(dir).isEmpty)
        // Every row once, with the values it had: the refused rows kept their types.
        let expected = (1...rows).map { i in
            let amount = i % 5 == 0 ? "-\(i).25" : "\(i).25"
            return "\(i)|\(amount)|2024-03-01 00:00:\(String(format: "%02d", i % 60)).000123|t\n\(i)|\\x00\(String(format: "%02x", i % 256))0aff"
        }
        let got = try await psqlAsync(
            "SELECT string_agg(concat_ws('|', id, amount, to_char(ts AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US'), tag, body::text), '#' ORDER BY id) FROM \(schema).t"
        ).joined(separator: "\n")
        #expect(got == expected.joined(separator: "#"))
    }

    @Test func rowsAPostgresSourceCouldNotReadAreReadAgainByKeyOnceFixed() async throws {
        let dir = try makeWorkDirectory("dlq-replay-pgsource")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let schema = try makeSchema("dlqsrc")
        defer { _ = try? psql("DROP SCHEMA \(schema) CASCADE") }
        // NaN has no decimal form: rows 3, 6 and 9 are dead-lettered with their key.
        try await psqlAsync(
            "CREATE TABLE \(schema).t (id int PRIMARY KEY, n numeric(12,2)); INSERT INTO \(schema).t SELECT i, CASE WHEN i % 3 = 0 THEN 'NaN'::numeric ELSE i END FROM generate_series(1, 10) i"
        )
        try write(
            """
            pipelines:
              p:
                source: { postgres: { url: "\(try postgresURL())", table: \(schema).t } }
                sink: { parquet: { path: lake } }
            """, to: "\(dir)/p.yaml")
        #expect(try await SluiceProcess.runWithoutBlocking(["run", "p.yaml", "--no-progress", "--log-level", "error"], in: dir).status == 0)
        #expect(try await DLQReplayTests.lakeCounts(dir) == (7, 7))
        #expect(try await DLQReplayTests.letters(dir).count == 3)
        // The rows are fixed at the source; one is gone.
        try await psqlAsync("UPDATE \(schema).t SET n = id * 10 WHERE id IN (3, 6); DELETE FROM \(schema).t WHERE id = 9")
        let r = try await Self.replay(dir)
        #expect(r.status == 0 && r.stdout.contains("replayed 2 of 3 dead letter(s); 1 failed again"), "\(r.stdout)\(r.stderr)")
        let left = try await DLQReplayTests.letters(dir)
        #expect(left.count == 1 && left[0]["kind"] as? String == "row_gone" && (left[0]["location"] as? String)?.hasSuffix("@9") == true, "\(left)")
        let lake = try await runTool(
            [
                "python3", "-c",
                "import duckdb; print(duckdb.sql(\"SELECT string_agg(id || ':' || n, ',' ORDER BY id) FROM read_parquet('lake/*.parquet')\").fetchall()[0][0])",
            ],
            in: dir
        ).output.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(lake == "1:1.00,2:2.00,3:30.00,4:4.00,5:5.00,6:60.00,7:7.00,8:8.00,10:10.00")
    }

    @Test func rowsASQLiteSourceCouldNotReadAreReadAgainWithTheFixedColumnType() async throws {
        let dir = try makeWorkDirectory("dlq-replay-sqlite")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        _ = try await runTool(
            [
                "python3", "-c",
                "import sqlite3; c = sqlite3.connect('src.db'); c.execute('CREATE TABLE t (id INTEGER PRIMARY KEY, code TEXT)'); "
                    + "c.executemany('INSERT INTO t VALUES (?, ?)', [(i, str(i) if i % 4 else 'A-%d' % i) for i in range(1, 13)]); c.commit()",
            ], in: dir)
        func config(_ type: String) -> String {
            """
            pipelines:
              p:
                source: { sqlite: { path: src.db, table: t, columns: { code: \(type) } } }
                sink: { parquet: { path: lake } }
            """
        }
        // Codes declared as integers: 'A-4', 'A-8' and 'A-12' do not fit.
        try write(config("int64"), to: "\(dir)/p.yaml")
        #expect(try await SluiceProcess.runWithoutBlocking(["run", "p.yaml", "--no-progress", "--log-level", "error"], in: dir).status == 0)
        #expect(try await DLQReplayTests.letters(dir).count == 3)
        // The column is text after all: the parquet column is a string from now on, so the lake is
        // read by name; the replayed rows carry their codes exactly.
        try write(config("string"), to: "\(dir)/p.yaml")
        let r = try await Self.replay(dir)
        #expect(r.status == 0 && r.stdout.contains("replayed 3 of 3"), "\(r.stdout)\(r.stderr)")
        let lake = try await runTool(
            [
                "python3", "-c",
                "import duckdb; print(duckdb.sql(\"SELECT count(*), count(DISTINCT id), string_agg(CAST(code AS VARCHAR), ',' ORDER BY id) FILTER (WHERE id % 4 = 0) FROM read_parquet('lake/*.parquet', union_by_name=true)\").fetchall()[0])",
            ],
            in: dir
        ).output.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(lake == "(12, 12, 'A-4,A-8,A-12')", "\(lake)")
    }

    @Test func recordsPushedOverHTTPThatDidNotDecodeAreReplayed() async throws {
        let dir = try makeWorkDirectory("dlq-replay-push")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        func config(_ amount: String) -> String {
            """
            pipelines:
              p:
                source: { http: { stream: orders, columns: { id: int64, amount: "\(amount)" }, on_invalid: dead_letter } }
                sink: { parquet: { path: lake, max_file_age: 1s } }
                batch: { max_latency: 100ms }
            """
        }
        try write(config("decimal(10,2)"), to: "\(dir)/p.yaml")
        let port = try freePort()
        let served = try await ServedProcess.start(in: dir, port: port)
        // Four amounts have more decimals than the column: refused at the door, dead-lettered.
        let amounts = ["1.5", "2.125", "3", "4.875", "5.25", "6.0625", "7", "8.5", "9.0001", "10"]
        let body = amounts.enumerated().map { "{\"id\":\($0.offset + 1),\"amount\":\"\($0.element)\"}" }.joined(separator: "\n")
        let reply = try await offPool { try curl(postArgs(port, "orders", data: body, contentType: "application/x-ndjson")) }
        #expect(reply.status == 202, "\(reply.status) \(reply.body)")
        var letters: [[String: Any]] = []
        for _ in 0..<200 {
            letters = try await DLQReplayTests.letters(dir)
            if letters.count == 4, try await DLQReplayTests.lakeCounts(dir) == (6, 6) { break }
            try await Task.sleep(for: .milliseconds(100))
        }
        #expect(letters.count == 4 && letters.allSatisfy { $0["stage"] as? String == "ingest" }, "\(letters)")
        #expect(served.stop() == 0)

        try write(config("decimal(12,4)"), to: "\(dir)/p.yaml")
        let r = try await Self.replay(dir)
        #expect(r.status == 0 && r.stdout.contains("replayed 4 of 4"), "\(r.stdout)\(r.stderr)")
        #expect(try await DLQReplayTests.lakeCounts(dir) == (10, 10))
        #expect(try await DLQReplayTests.letters(dir).isEmpty)
        // A replayed record has the arrival stamp of its request (when its letter was filed).
        let stamps = try await runTool(
            [
                "python3", "-c",
                "import duckdb; print(duckdb.sql(\"SELECT count(received_at), max(received_at) - min(received_at) < INTERVAL 30 SECOND FROM read_parquet('lake/*.parquet', union_by_name=true)\").fetchall()[0])",
            ],
            in: dir
        ).output
        #expect(stamps.contains("(10, True)"), "\(stamps)")
    }

    @Test func rowsTheSchemaPolicyRefusedPassOnceThePolicyAllowsThem() async throws {
        let dir = try makeWorkDirectory("dlq-replay-schema")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        func config(_ policy: String) -> String {
            """
            pipelines:
              p:
                source: { file: { path: "in/*.ndjson" } }
                schema: { on_change: \(policy) }
                sink: { parquet: { path: lake } }
            """
        }
        try write(config("freeze"), to: "\(dir)/p.yaml")
        try write("{\"id\":1,\"name\":\"a\"}\n{\"id\":2,\"name\":\"b\"}\n", to: "\(dir)/in/1.ndjson")
        #expect(try await SluiceProcess.runWithoutBlocking(["run", "p.yaml", "--no-progress", "--log-level", "error"], in: dir).status == 0)
        // A new column: refused under `freeze`.
        try write("{\"id\":3,\"name\":\"c\",\"score\":7}\n{\"id\":4,\"name\":\"d\",\"score\":8}\n", to: "\(dir)/in/2.ndjson")
        #expect(try await SluiceProcess.runWithoutBlocking(["run", "p.yaml", "--no-progress", "--log-level", "error"], in: dir).status == 0)
        let letters = try await DLQReplayTests.letters(dir)
        #expect(letters.count == 2 && letters.allSatisfy { $0["stage"] as? String == "schema" }, "\(letters)")
        // Under `freeze` still: they fail again.
        let frozen = try await Self.replay(dir)
        #expect(frozen.stdout.contains("replayed 0 of 2"), "\(frozen.stdout)\(frozen.stderr)")

        try write(config("evolve"), to: "\(dir)/p.yaml")
        let r = try await Self.replay(dir)
        #expect(r.status == 0 && r.stdout.contains("replayed 2 of 2"), "\(r.stdout)\(r.stderr)")
        let lake = try await runTool(
            [
                "python3", "-c",
                "import duckdb; print(duckdb.sql(\"SELECT string_agg(id || ':' || coalesce(score::text, '-'), ',' ORDER BY id) FROM read_parquet('lake/*.parquet', union_by_name=true)\").fetchall()[0][0])",
            ],
            in: dir
        ).output.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(lake == "1:-,2:-,3:7,4:8")
    }

    @Test func underDedupeARecordDeliveredMeanwhileIsADuplicateNotASecondRow() async throws {
        let dir = try makeWorkDirectory("dlq-replay-dedupe")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try write(DLQReplayTests.config("decimal(10,2)") + "\n    dedupe: { key: [id], ttl: 1d }\n", to: "\(dir)/p.yaml")
        // Ids 3, 5 and 7 have too many decimals; id 5 arrives again, fixed, in a later file.
        let amounts = ["1", "2", "3.125", "4", "5.125", "6", "7.125", "8", "9", "10"]
        try write(
            amounts.enumerated().map { "{\"id\":\($0.offset + 1),\"amount\":\"\($0.element)\"}" }.joined(separator: "\n") + "\n", to: "\(dir)/in/1.ndjson")
        #expect(try await SluiceProcess.runWithoutBlocking(["run", "p.yaml", "--no-progress", "--log-level", "error"], in: dir).status == 0)
        try write("{\"id\":5,\"amount\":\"5.13\"}\n", to: "\(dir)/in/2.ndjson")
        #expect(try await SluiceProcess.runWithoutBlocking(["run", "p.yaml", "--no-progress", "--log-level", "error"], in: dir).status == 0)
        #expect(try await DLQReplayTests.lakeCounts(dir) == (8, 8))
        #expect(try await DLQReplayTests.letters(dir).count == 3)

        try write(DLQReplayTests.config("decimal(12,3)") + "\n    dedupe: { key: [id], ttl: 1d }\n", to: "\(dir)/p.yaml")
        let r = try await Self.replay(dir)
        #expect(r.status == 0 && r.stdout.contains("replayed 2 of 3") && r.stdout.contains("1 dropped"), "\(r.stdout)\(r.stderr)")
        #expect(try await DLQReplayTests.lakeCounts(dir) == (10, 10), "id 5 once: the replay's copy was a duplicate")
        #expect(try await DLQReplayTests.letters(dir).isEmpty)
        // The replayed keys are the pipeline's: the same records arriving again are duplicates.
        try write("{\"id\":3,\"amount\":\"3.125\"}\n{\"id\":11,\"amount\":\"11\"}\n", to: "\(dir)/in/3.ndjson")
        #expect(try await SluiceProcess.runWithoutBlocking(["run", "p.yaml", "--no-progress", "--log-level", "error"], in: dir).status == 0)
        #expect(try await DLQReplayTests.lakeCounts(dir) == (11, 11))
    }
}
