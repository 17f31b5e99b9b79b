import Foundation
import Testing
import SluiceTesting

/// `dead_letter: { sink: … }`: a pipeline's dead letters are also copied to a sink of their own,
/// and after `kill -9` at random moments the lake (read by DuckDB) or the table (read by psql)
/// holds exactly the state store's dead letters, each once.
@Suite(.offCooperativePool, .serialized, .timeLimit(.minutes(10))) struct DLQSinkTests {
    /// Every tenth amount has more decimals than its column.
    static func input(_ dir: String, rows: Int, file: Int = 1) throws {
        let ids = (file - 1) * rows + 1...file * rows
        try write(
            ids.map { "{\"id\":\($0),\"amount\":\"\($0 % 10 == 0 ? "\($0).125" : "\($0).5")\"}" }.joined(separator: "\n") + "\n",
            to: "\(dir)/in/\(file).ndjson")
    }

    static func config(deadLetterSink: String) -> String {
        """
        pipelines:
          p:
            source: { file: { path: "in/*.ndjson", format: ndjson, columns: { id: int64, amount: "decimal(10,2)" } } }
            sink: { parquet: { path: lake } }
            batch: { max_rows: 2000 }
            dead_letter: { sink: \(deadLetterSink) }
        """
    }

    /// The locations of the state store's dead letters.
    static func storedLocations(_ dir: String) async throws -> [String] {
        try await DLQReplayTests.letters(dir).compactMap { $0["location"] as? String }.sorted()
    }

    @Test func killedAtRandomMomentsTheDeadLetterLakeHoldsExactlyTheStoredLetters() async throws {
        let dir = try makeWorkDirectory("dlq-sink-kill")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        // A new file before each start: every run has letters to file and copy when it is killed.
        let rowsPerFile = 40_000
        var files = 0
        try write(Self.config(deadLetterSink: "{ parquet: { path: dlq } }"), to: "\(dir)/p.yaml")
        var kills = 0
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<40 where kills < 10 {
            files += 1
            try Self.input(dir, rows: rowsPerFile, file: files)
            let p = try SluiceProcess.start(
                ["run", "p.yaml", "--no-progress", "--log-level", "error"], in: dir, log: "\(dir)/sluice.log",
                environment: ["SLUICE_TEST_COMMIT_DELAY_MS": "60"])
            let timer = KillTimer(p.processIdentifier, afterMilliseconds: Int.random(in: 50...900, using: &generator))
            await waitForExit(p)
            timer.cancel()
            if p.terminationReason == .uncaughtSignal { kills += 1 }
        }
        #expect(kills >= 10, "only \(kills) kills landed")
        let rows = files * rowsPerFile
        let last = try await SluiceProcess.runWithoutBlocking(["run", "p.yaml", "--no-progress", "--log-level", "error"], in: dir)
        #expect(last.status == 0, "\(last.stderr)")
        let stored = try await Self.storedLocations(dir)
        #expect(stored.count == rows / 10)
        let lake = try await runTool(
            [
                "python3", "-c",
                """
                import duckdb
                rows = duckdb.sql("SELECT location, stage, kind, pipeline FROM read_parquet('dlq/*.parquet')").fetchall()
                print(len(rows), len({r[0] for r in rows}), all(r[1] == 'decode' and r[2] == 'type_mismatch' and r[3] == 'p' for r in rows))
                for r in sorted(r[0] for r in rows): print(r)
                """,
            ], in: dir
        ).output.split(separator: "\n").map(String.init)
        #expect(lake.first == "\(rows / 10) \(rows / 10) True", "\(lake.prefix(3).joined(separator: "\n").prefix(2000))")
        let inLake = Array(lake.dropFirst())
        #expect(
            inLake == stored,
            "the lake holds exactly the stored dead letters: \(Set(stored).subtracting(inLake).count) missing, \(Set(inLake).subtracting(stored).count) extra")
        let names = (try? FileManager.default.contentsOfDirectory(atPath: "\(dir)/dlq")) ?? []
        // The lake's lock (`.sluice-lake.lock`) stays; nothing else hidden may.
        let hidden = names.filter { ($0.hasPrefix(".") && $0 != ".sluice-lake.lock") || $0.hasSuffix(".tmp") }
        #expect(hidden.isEmpty, "\(hidden)")
    }

    @Test func aPostgresDeadLetterTableHoldsEveryLetterWithItsBytes() async throws {
        let dir = try makeWorkDirectory("dlq-sink-pg")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let schema = try makeSchema("dlqsink")
        defer { _ = try? psql("DROP SCHEMA \(schema) CASCADE") }
        try Self.input(dir, rows: 1000)
        let url = try postgresURL()
        try write(Self.config(deadLetterSink: "{ postgres: { url: \"\(url)\", table: \(schema).dead_letters } }"), to: "\(dir)/p.yaml")
        let r = try await SluiceProcess.runWithoutBlocking(["run", "p.yaml", "--no-progress", "--log-level", "error"], in: dir)
        #expect(r.status == 0, "\(r.stderr)")
        let stored = try await Self.storedLocations(dir)
        let table = try await psqlAsync("SELECT location FROM \(schema).dead_letters ORDER BY location")
        #expect(stored.count == 100 && table == stored)
        // The raw bytes as read, and the kind of failure.
        let row = try await psqlAsync("SELECT convert_from(raw, 'UTF8'), kind, stage FROM \(schema).dead_letters WHERE location LIKE '%:10'")
        #expect(row == ["{\"id\":10,\"amount\":\"10.125\"}|type_mismatch|decode"], "\(row)")
        // A second run reads nothing new and copies nothing twice.
        #expect(try await SluiceProcess.runWithoutBlocking(["run", "p.yaml", "--no-progress", "--log-level", "error"], in: dir).status == 0)
        #expect(try await psqlAsync("SELECT count(*), count(DISTINCT id) FROM \(schema).dead_letters") == ["100|100"])
    }

    @Test func aDeadLetterSinkThatCannotHoldThemExactlyIsRefusedBeforeAnyDataMoves() async throws {
        let dir = try makeWorkDirectory("dlq-sink-refused")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let url = try postgresURL()
        // A shared state store: letters of workers committing at once can appear out of id order.
        try write("state: \"\(url)\"\n" + Self.config(deadLetterSink: "{ parquet: { path: dlq } }"), to: "\(dir)/p.yaml")
        let shared = try await SluiceProcess.runWithoutBlocking(["validate", "p.yaml"], in: dir)
        #expect(shared.status != 0 && shared.stderr.contains("dead_letter.sink") && shared.stderr.contains("embedded"), "\(shared.stderr)")
        // A sink that replaces its table each pass does not append.
        try write(Self.config(deadLetterSink: "{ postgres: { url: \"\(url)\", table: dlq, mode: replace } }"), to: "\(dir)/p.yaml")
        let replace = try await SluiceProcess.runWithoutBlocking(["validate", "p.yaml"], in: dir)
        #expect(replace.status != 0 && replace.stderr.contains("dead_letter.sink") && replace.stderr.contains("append"), "\(replace.stderr)")
    }
}
