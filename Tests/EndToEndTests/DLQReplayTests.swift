import Foundation
import SluiceCore
import SluiceStateSQLite
import Testing
import SluiceTesting

/// `sluice dlq replay`: fix the configuration, replay, and every record lands once (DuckDB
/// counts them), across `kill -9` at random moments too; what still fails stays, with one more
/// attempt and its new reason.
@Suite(.offCooperativePool, .timeLimit(.minutes(10))) struct DLQReplayTests {
    static func config(_ amount: String) -> String {
        """
        pipelines:
          p:
            source: { file: { path: "in/*.ndjson", format: ndjson, columns: { id: int64, amount: "\(amount)" } } }
            sink: { parquet: { path: lake, compression: zstd } }
        """
    }

    /// `count(*)` and `count(DISTINCT id)` of the lake, by DuckDB.
    static func lakeCounts(_ dir: String) async throws -> (Int, Int) {
        let r = try await runTool(
            [
                "python3", "-c",
                "import duckdb; print(*duckdb.sql(\"SELECT count(*), count(DISTINCT id) FROM read_parquet('lake/*.parquet', union_by_name=true)\").fetchall()[0])",
            ], in: dir
        ).output
        let parts = r.split(whereSeparator: \.isWhitespace).compactMap { Int($0) }
        return parts.count == 2 ? (parts[0], parts[1]) : (-1, -1)
    }

    static func letters(_ dir: String) async throws -> [[String: Any]] {
        let list = try await SluiceProcess.runWithoutBlocking(["dlq", "list", "-c", "p.yaml", "--json", "--limit", "100000"], in: dir)
        return list.stdout.split(separator: "\n").compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
    }

    @Test func fixTheConfigReplayAndEveryRowLandsOnceWhatStillFailsStays() async throws {
        let dir = try makeWorkDirectory("dlq-replay")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try write(Self.config("decimal(10,2)"), to: "\(dir)/p.yaml")
        // Three amounts have more decimals than the column; one is not a number at all.
        let amounts = ["1.5", "2.25", "3.125", "4", "5.0625", "6", "abc", "8", "9.375", "10"]
        try write(
            amounts.enumerated().map { "{\"id\":\($0.offset + 1),\"amount\":\"\($0.element)\"}" }.joined(separator: "\n") + "\n", to: "\(dir)/in/1.ndjson")
        let first = try await SluiceProcess.runWithoutBlocking(["run", "p.yaml", "--no-progress"], in: dir)
        #expect(first.status == 0, "\(first.stderr)")
        #expect(try await Self.lakeCounts(dir) == (6, 6))
        #expect(try await Self.letters(dir).count == 4)

        // The cause is fixed: three decimals fit now; "abc" still does not.
        try write(Self.config("decimal(12,4)"), to: "\(dir)/p.yaml")
        let dry = try await SluiceProcess.runWithoutBlocking(["dlq", "replay", "-c", "p.yaml", "--pipeline", "p", "--dry-run"], in: dir)
        #expect(dry.status == 0 && dry.stdout.contains("would replay 3 of 4 dead letter(s); 1 would fail again"), "\(dry.stdout)\(dry.stderr)")
        let afterDry = (try await Self.letters(dir).count, try await Self.lakeCounts(dir))
        #expect(afterDry.0 == 4 && afterDry.1 == (6, 6), "a dry run changes nothing")

        let replay = try await SluiceProcess.runWithoutBlocking(["dlq", "replay", "-c", "p.yaml", "--pipeline", "p", "--metrics-file", "replay.prom"], in: dir)
        #expect(replay.status == 0 && replay.stdout.contains("replayed 3 of 4 dead letter(s); 1 failed again"), "\(replay.stdout)\(replay.stderr)")
        #expect(try await Self.lakeCounts(dir) == (9, 9))
        let left = try await Self.letters(dir)
        #expect(left.count == 1 && left[0]["attempts"] as? Int == 2 && (left[0]["raw"] as? String)?.contains("abc") == true, "\(left)")
        // Replaying again changes nothing that is already in the lake.
        let again = try await SluiceProcess.runWithoutBlocking(["dlq", "replay", "-c", "p.yaml", "--pipeline", "p", "--metrics-file", "replay.prom"], in: dir)
        #expect(again.stdout.contains("replayed 0 of 1"), "\(again.stdout)")
        #expect(try await Self.lakeCounts(dir) == (9, 9))
        // The reprocessing success metric, for node_exporter's textfile collector: promtool
        // reads it, and it counts both replays (3 delivered; "abc" failed twice).
        let check = try await runTool(["sh", "-c", "promtool check metrics < replay.prom"], in: dir)
        #expect(check.status == 0, "\(check.output)")
        let metrics = try String(contentsOfFile: "\(dir)/replay.prom", encoding: .utf8)
        #expect(metrics.contains("sluice_replayed_total{pipeline=\"p\",result=\"ok\"} 3\n"), "\(metrics)")
        #expect(metrics.contains("sluice_replayed_total{pipeline=\"p\",result=\"failed\"} 2\n"), "\(metrics)")
        // A pipeline whose dead letters this version cannot replay says why.
        try write(
            Self.config("decimal(12,4)").replacingOccurrences(of: "parquet: { path: lake, compression: zstd }", with: "blackhole: {}"), to: "\(dir)/p.yaml")
        let refused = try await SluiceProcess.runWithoutBlocking(["dlq", "replay", "-c", "p.yaml", "--pipeline", "p"], in: dir)
        #expect(refused.status == 2 && refused.stderr.contains("cannot take a replay"), "\(refused.stderr)")
    }

    /// Each replay's writer starts by removing what its name left unfinished: a second replay
    /// of the pipeline at once would remove the first one's files in flight, so it is refused
    /// (a lock the kernel drops with the process, so a killed replay never blocks the next).
    @Test func aSecondReplayOfThePipelineIsRefusedWhileOneRuns() async throws {
        let dir = try makeWorkDirectory("dlq-replay-twice")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try write(Self.config("decimal(10,2)"), to: "\(dir)/p.yaml")
        try write((1...20).map { "{\"id\":\($0),\"amount\":\"\($0).125\"}" }.joined(separator: "\n") + "\n", to: "\(dir)/in/1.ndjson")
        let first = try await SluiceProcess.runWithoutBlocking(["run", "p.yaml", "--no-progress"], in: dir)
        #expect(first.status == 0, "\(first.stderr)")
        try write(Self.config("decimal(12,3)"), to: "\(dir)/p.yaml")
        // The first replay is held after its first commit, holding its lock.
        let slow = try SluiceProcess.start(
            ["dlq", "replay", "-c", "p.yaml", "--pipeline", "p", "--batch", "1", "--no-progress", "--log-level", "info"], in: dir,
            log: "\(dir)/slow.log", environment: ["SLUICE_TEST_HOLD": "\(DeadLetterReplay.holdCommitted)=\(dir)/release"])
        defer { if slow.isRunning { kill(slow.processIdentifier, SIGKILL) } }
        let held = try await waitUntil(seconds: 120) { FileManager.default.fileExists(atPath: "\(dir)/release.reached") || !slow.isRunning }
        #expect(held && slow.isRunning, "the first replay did not reach its hold: \((try? String(contentsOfFile: "\(dir)/slow.log", encoding: .utf8)) ?? "")")
        let second = try await SluiceProcess.runWithoutBlocking(["dlq", "replay", "-c", "p.yaml", "--pipeline", "p"], in: dir)
        #expect(second.status != 0 && second.stderr.contains("another replay of p is running"), "\(second.status) \(second.stderr)")
        // Killed, the first leaves no lock behind: the next replay delivers every row once.
        kill(slow.processIdentifier, SIGKILL)
        await waitForExit(slow)
        let last = try await SluiceProcess.runWithoutBlocking(["dlq", "replay", "-c", "p.yaml", "--pipeline", "p"], in: dir)
        #expect(last.status == 0, "\(last.stderr)")
        #expect(try await Self.lakeCounts(dir) == (20, 20))
    }

    /// Dead-letters 2 000 rows, fixes the column, holds a replay after its state commit (the
    /// letters are gone, the output not yet published) and kills it; then only the pipeline runs
    /// (over one new row), and `readIDs` must give every row once.
    static func replayKilledAfterItsCommit(
        in dir: String, config: (String) -> String, readIDs: () async throws -> [Int]
    ) async throws {
        let rows = 2_000
        try write(config("decimal(10,2)"), to: "\(dir)/p.yaml")
        try write((1...rows).map { "{\"id\":\($0),\"amount\":\"\($0).125\"}" }.joined(separator: "\n") + "\n", to: "\(dir)/in/1.ndjson")
        let first = try await SluiceProcess.runWithoutBlocking(["run", "p.yaml", "--no-progress"], in: dir)
        #expect(first.status == 0, "\(first.stderr)")
        try write(config("decimal(12,3)"), to: "\(dir)/p.yaml")
        let held = try SluiceProcess.start(
            ["dlq", "replay", "-c", "p.yaml", "--pipeline", "p", "--no-progress", "--log-level", "info"], in: dir, log: "\(dir)/replay.log",
            environment: ["SLUICE_TEST_HOLD": "\(DeadLetterReplay.holdCommitted)=\(dir)/release"])
        defer { if held.isRunning { kill(held.processIdentifier, SIGKILL) } }
        let reached = try await waitUntil(seconds: 120) { FileManager.default.fileExists(atPath: "\(dir)/release.reached") || !held.isRunning }
        try #require(
            reached && held.isRunning, "the replay did not reach its hold: \((try? String(contentsOfFile: "\(dir)/replay.log", encoding: .utf8)) ?? "")")
        kill(held.processIdentifier, SIGKILL)
        await waitForExit(held)
        #expect(try await Self.letters(dir).isEmpty, "the replay's commit deleted its letters")
        try write("{\"id\":\(rows + 1),\"amount\":\"0.5\"}\n", to: "\(dir)/in/2.ndjson")
        let run = try await SluiceProcess.runWithoutBlocking(["run", "p.yaml", "--no-progress"], in: dir)
        #expect(run.status == 0, "\(run.stderr)")
        let ids = try await readIDs()
        #expect(ids.count == rows + 1 && Set(ids) == Set(1...(rows + 1)), "\(ids.count) rows, \(Set(ids).count) distinct, expected \(rows + 1)")
    }

    @Test func thePipelinePublishesWhatAKilledReplayCommitted() async throws {
        let dir = try makeWorkDirectory("dlq-replay-held")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try await Self.replayKilledAfterItsCommit(in: dir, config: Self.config) {
            let r = try await runTool(
                [
                    "python3", "-c",
                    "import duckdb; print(' '.join(str(r[0]) for r in duckdb.sql(\"SELECT id FROM read_parquet('lake/*.parquet')\").fetchall()))",
                ],
                in: dir)
            return r.output.split(whereSeparator: \.isWhitespace).compactMap { Int($0) }
        }
        let names = (try? FileManager.default.contentsOfDirectory(atPath: "\(dir)/lake")) ?? []
        #expect(!names.contains { $0.hasSuffix(".tmp") }, "\(names)")
    }

    /// Starts `sluice dlq replay --batch BATCH` again and again (each commit pausing between its
    /// phases, so kills also land after the state commit, before the files are renamed), each
    /// killed after a random `killAfterMS`, until 10 kills landed or a replay finished; returns
    /// the kills.
    static func killReplays(in dir: String, batch: Int, commitDelayMS: Int, killAfterMS: ClosedRange<Int>, tries: Int) async throws -> Int {
        var kills = 0
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<tries where kills < 10 {
            let p = try SluiceProcess.start(
                ["dlq", "replay", "-c", "p.yaml", "--pipeline", "p", "--batch", "\(batch)", "--no-progress", "--log-level", "error"], in: dir,
                log: "\(dir)/sluice.log", environment: ["SLUICE_TEST_COMMIT_DELAY_MS": "\(commitDelayMS)"])
            let timer = KillTimer(p.processIdentifier, afterMilliseconds: Int.random(in: killAfterMS, using: &generator))
            await waitForExit(p)
            timer.cancel()
            guard p.terminationReason == .uncaughtSignal else {
                break
            }
            kills += 1
        }
        return kills
    }

    @Test func killedAtRandomMomentsTheReplayLosesAndRepeatsNothing() async throws {
        let dir = try makeWorkDirectory("dlq-replay-kill")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let rows = 20_000
        try write(Self.config("decimal(10,2)"), to: "\(dir)/p.yaml")
        try write((1...rows).map { "{\"id\":\($0),\"amount\":\"\($0).125\"}" }.joined(separator: "\n") + "\n", to: "\(dir)/in/1.ndjson")
        let first = try await SluiceProcess.runWithoutBlocking(["run", "p.yaml", "--no-progress", "--log-level", "warning"], in: dir)
        #expect(first.status == 0, "\(first.stderr)")
        #expect(try await Self.letters(dir).count == rows)
        try write(Self.config("decimal(12,3)"), to: "\(dir)/p.yaml")
        // Each replay commits 100 dead letters at a time.
        let kills = try await Self.killReplays(in: dir, batch: 100, commitDelayMS: 40, killAfterMS: 100...1500, tries: 40)
        #expect(kills >= 10, "only \(kills) kills landed")
        let last = try await SluiceProcess.runWithoutBlocking(["dlq", "replay", "-c", "p.yaml", "--pipeline", "p", "--no-progress"], in: dir)
        #expect(last.status == 0, "\(last.stderr)")
        #expect(try await Self.letters(dir).isEmpty, "every dead letter replayed")
        #expect(try await Self.lakeCounts(dir) == (rows, rows), "every row once")
        // No temporary file is left behind, and none was published twice.
        let names = (try? FileManager.default.contentsOfDirectory(atPath: "\(dir)/lake")) ?? []
        #expect(!names.contains { $0.hasSuffix(".tmp") }, "\(names.filter { $0.hasSuffix(".tmp") })")
    }

    /// The same with pages of whole blocks: 40 commits file 40 blocks of 500 dead letters (as 40
    /// runs over one new file each would; written here through the state store, without 40
    /// processes), and a replay of one block per commit (decoded as one text, each block deleted
    /// as one row) is killed at random moments.
    @Test func killedWhileReplayingWholeBlocksTheReplayLosesAndRepeatsNothing() async throws {
        let dir = try makeWorkDirectory("dlq-replay-blocks-kill")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let files = 40, perFile = 500
        try write(Self.config("decimal(10,2)"), to: "\(dir)/p.yaml")
        do {
            let store = try SQLiteStateStore(path: "\(dir)/.sluice/state.db")
            for f in 0..<files {
                let ids = (f * perFile + 1)...(f * perFile + perFile)
                let lines = ids.map { "{\"id\":\($0),\"amount\":\"\($0).125\"}" }
                try write(lines.joined(separator: "\n") + "\n", to: "\(dir)/in/\(f).ndjson")
                var commit = StateCommit(pipeline: "p")
                commit.deadLetters = lines.enumerated().map { i, line in
                    DeadLetter(
                        stage: "decode", errorKind: "type_mismatch", message: "field 'amount': expected decimal(10,2)",
                        location: "\(dir)/in/\(f).ndjson:\(i + 1)", raw: Array(line.utf8))
                }
                try await store.commit(commit)
            }
        }
        #expect(try await Self.letters(dir).count == files * perFile)
        try write(Self.config("decimal(12,3)"), to: "\(dir)/p.yaml")
        let kills = try await Self.killReplays(in: dir, batch: perFile, commitDelayMS: 100, killAfterMS: 100...900, tries: 60)
        #expect(kills >= 10, "only \(kills) kills landed")
        let last = try await SluiceProcess.runWithoutBlocking(["dlq", "replay", "-c", "p.yaml", "--pipeline", "p", "--no-progress"], in: dir)
        #expect(last.status == 0, "\(last.stderr)")
        #expect(try await Self.letters(dir).isEmpty, "every dead letter replayed")
        #expect(try await Self.lakeCounts(dir) == (files * perFile, files * perFile), "every row once")
        let names = (try? FileManager.default.contentsOfDirectory(atPath: "\(dir)/lake")) ?? []
        #expect(!names.contains { $0.hasSuffix(".tmp") }, "\(names.filter { $0.hasSuffix(".tmp") })")
    }
}
