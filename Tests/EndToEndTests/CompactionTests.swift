import Foundation
import SluiceTesting
import Testing

/// `sluice lifecycle run --compact`: small files of each partition rewritten into files of the
/// target size. DuckDB reads every row exactly once after every `kill -9` of a run, while a
/// pipeline keeps writing into the partitions being swapped, and at the end each partition holds
/// one file; a dry run changes nothing.
@Suite(.offCooperativePool, .serialized, .timeLimit(.minutes(10))) struct CompactionTests {
    static let partitions = 12

    /// Adds `files` small zstd Parquet files of `rows` rows to each day partition (written by
    /// pyarrow, an independent writer), with ids from `first`; returns the rows added.
    static func addSmallFiles(_ dir: String, batch: Int, first: Int, files: Int, rows: Int) async throws -> Int {
        let r = try await runTool(
            [
                "python3", "-c",
                """
                import os, datetime, pyarrow as pa, pyarrow.parquet as pq
                n = \(first)
                for p in range(\(partitions)):
                    d = f"lake/ts_day=2026-10-{p + 1:02d}"
                    os.makedirs(d, exist_ok=True)
                    for f in range(\(files)):
                        ids = list(range(n, n + \(rows)))
                        n += \(rows)
                        ts = datetime.datetime(2026, 10, p + 1, 12, tzinfo=datetime.timezone.utc)
                        t = pa.table({"id": pa.array(ids, pa.int64()), "ts": pa.array([ts] * len(ids), pa.timestamp("us", tz="UTC")),
                                      "v": pa.array([f"value {i % 1000}" for i in ids])})
                        # Written aside and renamed in: a reader never sees half a file.
                        pq.write_table(t, f"{d}/.new.tmp", compression="zstd")
                        os.rename(f"{d}/.new.tmp", f"{d}/part-b\(batch)-{f:04d}.parquet")
                """,
            ], in: dir)
        #expect(r.status == 0, "\(r.output)")
        return partitions * files * rows
    }

    /// `count, count(distinct id), sum(id)` of every Parquet file under `lake/`, by DuckDB
    /// (blocking).
    static func lakeNow(_ dir: String) throws -> String {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = [
            "python3", "-c",
            // No progress bar: DuckDB prints one on stdout when a query runs longer than 2 s (a
            // loaded run saw it in the output).
            "import duckdb; c = duckdb.connect(); c.execute('SET enable_progress_bar = false'); print(*c.sql(\"SELECT count(*), count(DISTINCT id), coalesce(sum(id), 0) FROM read_parquet('lake/**/*.parquet')\").fetchall()[0])",
        ]
        p.currentDirectoryURL = URL(fileURLWithPath: dir)
        let r = try SluiceProcess.collect(p)
        return r.status == 0 ? r.stdout.trimmingCharacters(in: .whitespacesAndNewlines) : "duckdb failed: \(r.stderr)"
    }

    static func lake(_ dir: String) async throws -> String { try await offPool { try lakeNow(dir) } }

    static func exact(_ rows: Int) -> String { "\(rows) \(rows) \(rows * (rows - 1) / 2)" }

    /// The visible Parquet files of each partition.
    static func filesPerPartition(_ dir: String) -> [String: Int] {
        var out: [String: Int] = [:]
        for partition in (try? FileManager.default.contentsOfDirectory(atPath: "\(dir)/lake")) ?? [] where !partition.hasPrefix(".") {
            let names = (try? FileManager.default.contentsOfDirectory(atPath: "\(dir)/lake/\(partition)")) ?? []
            out[partition] = names.filter { $0.hasSuffix(".parquet") && !$0.hasPrefix(".") }.count
        }
        return out
    }

    /// What a run leaves where it should leave nothing: copies staged next to the lake.
    static func staged(_ dir: String) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []).filter { $0.hasPrefix(".sluice-lifecycle@") }
    }

    static let config = """
        pipelines:
          events:
            source: { file: { path: "in/*.ndjson", watch: true, poll_interval: 100ms, min_age: 0s } }
            sink: { parquet: { path: lake, partition_by: "day(ts)", max_file_age: 100ms, lifecycle: { compact: true, target_file_size: 64MB } } }
        """

    @Test func compactionKilledAtRandomMomentsLeavesEveryRowOnceAndOneFilePerPartition() async throws {
        let dir = try makeWorkDirectory("compaction-kill")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try write(Self.config, to: "\(dir)/p.yaml")
        var expected = try await Self.addSmallFiles(dir, batch: 0, first: 0, files: 60, rows: 1500)
        var batch = 1

        // A dry run lists one compaction per partition, of all its files, and changes nothing.
        let before = Self.filesPerPartition(dir)
        let dry = try await SluiceProcess.runWithoutBlocking(["lifecycle", "run", "-c", "p.yaml", "--dry-run", "--json"], in: dir)
        #expect(dry.status == 0, "\(dry.stderr)")
        let plan = try #require(try JSONSerialization.jsonObject(with: Data(dry.stdout.utf8)) as? [String: Any])
        let actions = (plan["actions"] as? [[String: Any]]) ?? []
        #expect(actions.count == Self.partitions && actions.allSatisfy { $0["action"] as? String == "compact" }, "\(dry.stdout.prefix(500))")
        #expect(actions.allSatisfy { (($0["groups"] as? [[String]]) ?? []).joined().count == 60 })
        #expect(Self.filesPerPartition(dir) == before, "a dry run changes nothing")

        // Kill runs at random moments; after each, DuckDB reads every row exactly once. A run
        // that finishes gets a fresh batch of small files for the next one.
        var kills = 0
        var runs = 0
        var generator = SystemRandomNumberGenerator()
        while kills < 20 && runs < 80 {
            runs += 1
            let p = try SluiceProcess.start(["lifecycle", "run", "-c", "p.yaml"], in: dir, log: "\(dir)/lifecycle.log")
            let timer = KillTimer(p.processIdentifier, afterMilliseconds: Int.random(in: 100...1500, using: &generator))
            await waitForExit(p)
            timer.cancel()
            if p.terminationReason == .uncaughtSignal {
                kills += 1
            } else {
                #expect(p.terminationStatus == 0, "\((try? String(contentsOfFile: "\(dir)/lifecycle.log", encoding: .utf8)) ?? "")")
                expected += try await Self.addSmallFiles(dir, batch: batch, first: expected, files: 60, rows: 1500)
                batch += 1
            }
            let seen = try await Self.lake(dir)
            #expect(seen == Self.exact(expected), "after run \(runs) (\(kills) kills): \(seen), expected \(Self.exact(expected))")
            if seen != Self.exact(expected) { break }
        }
        #expect(kills >= 20, "only \(kills) of \(runs) runs were killed before they finished")

        let last = try await SluiceProcess.runWithoutBlocking(["lifecycle", "run", "-c", "p.yaml"], in: dir)
        #expect(last.status == 0, "\(last.stderr)")
        #expect(last.stdout.contains("compacted"), "\(last.stdout)")
        #expect(try await Self.lake(dir) == Self.exact(expected))
        let files = Self.filesPerPartition(dir)
        #expect(files.count == Self.partitions && files.values.allSatisfy { $0 == 1 }, "files per partition: \(files)")
        #expect(Self.staged(dir).isEmpty, "copies left next to the lake: \(Self.staged(dir))")
        let again = try await SluiceProcess.runWithoutBlocking(["lifecycle", "run", "-c", "p.yaml"], in: dir)
        #expect(again.stdout.contains("nothing to do"), "a second run has nothing to do: \(again.stdout)")
    }

    @Test func aPipelineKeepsWritingIntoPartitionsThatCompactionSwaps() async throws {
        let dir = try makeWorkDirectory("compaction-live")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try write(Self.config, to: "\(dir)/p.yaml")
        try FileManager.default.createDirectory(atPath: "\(dir)/in", withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: "\(dir)/tmp", withIntermediateDirectories: true)
        let pipeline = try SluiceProcess.start(["run", "p.yaml", "--no-progress", "--log-level", "error"], in: dir, log: "\(dir)/run.log")
        // Each round drops a file of 1,000 rows over three days into the watched directory and
        // runs a compaction at once, while the pipeline ingests that file into the partitions
        // being swapped; until ten runs compacted something (however slow the machine).
        var rounds = 0
        var compactions = 0
        while compactions < 10 && rounds < 400 {
            var text = ""
            for i in (rounds * 1000)..<((rounds + 1) * 1000) {
                text += "{\"id\":\(i),\"ts\":\"2026-10-0\(i % 3 + 1)T12:00:00Z\",\"v\":\"value \(i % 1000)\"}\n"
            }
            // Written aside and renamed into the watched directory.
            try write(text, to: "\(dir)/tmp/\(rounds).ndjson")
            try FileManager.default.moveItem(atPath: "\(dir)/tmp/\(rounds).ndjson", toPath: "\(dir)/in/\(rounds).ndjson")
            rounds += 1
            let r = try await SluiceProcess.runWithoutBlocking(["lifecycle", "run", "-c", "p.yaml"], in: dir)
            #expect(r.status == 0, "\(r.stderr)")
            if r.stdout.contains("compacted") { compactions += 1 }
        }
        #expect(compactions >= 10, "only \(compactions) of \(rounds) runs compacted while the pipeline wrote")
        let expected = rounds * 1000
        let target = Self.exact(expected)
        let arrived = try await waitUntil(seconds: 120, interval: .milliseconds(500)) { try Self.lakeNow(dir) == target }
        pipeline.terminate()
        await waitForExit(pipeline)
        let held = try await Self.lake(dir)
        #expect(arrived, "the lake holds \(held), expected \(target)")
        #expect(pipeline.terminationStatus == 0, "\((try? String(contentsOfFile: "\(dir)/run.log", encoding: .utf8)) ?? "")")
        expectNothingMissing(log: "\(dir)/run.log")

        let last = try await SluiceProcess.runWithoutBlocking(["lifecycle", "run", "-c", "p.yaml"], in: dir)
        #expect(last.status == 0, "\(last.stderr)")
        #expect(try await Self.lake(dir) == target, "every row once after the last compaction")
        let files = Self.filesPerPartition(dir)
        #expect(files.count == 3 && files.values.allSatisfy { $0 == 1 }, "files per partition: \(files)")
        #expect(Self.staged(dir).isEmpty, "copies left next to the lake: \(Self.staged(dir))")
    }
}
