import Foundation
import Testing
import SluiceTesting

/// `sluice lifecycle run`: tiering and retention of a day-partitioned lake. A dry run changes
/// nothing and lists exactly what the run then does; DuckDB reads every remaining row exactly
/// once, also after `kill -9` at random moments of a run; a second run has nothing to do.
@Suite(.offCooperativePool, .serialized, .timeLimit(.minutes(10))) struct LifecycleTests {
    /// `days` day partitions of `perDay` rows each, ingested by a pipeline into `lake/`.
    static func makeLake(_ dir: String, days: Int, perDay: Int) async throws {
        var text = ""
        text.reserveCapacity(days * perDay * 80)
        for d in 0..<days {
            for i in 0..<perDay {
                let id = d * perDay + i
                text += "{\"id\":\(id),\"ts\":\"2026-10-\(String(format: "%02d", d + 1))T12:00:00Z\",\"v\":\"value \(id % 1000)\"}\n"
            }
        }
        try write(text, to: "\(dir)/in/1.ndjson")
        try write(
            """
            pipelines:
              events:
                source: { file: { path: "in/*.ndjson" } }
                sink: { parquet: { path: lake, partition_by: "day(ts)", compression: snappy, lifecycle: { tier_after: 30d, delete_after: 365d } } }
            """, to: "\(dir)/p.yaml")
        let r = try await SluiceProcess.runWithoutBlocking(["run", "p.yaml", "--no-progress", "--log-level", "error"], in: dir)
        #expect(r.status == 0, "\(r.stderr)")
    }

    /// Ages the files of the first `old` partitions by 40 days and of the first `ancient` by 400.
    static func age(_ dir: String, tiered: Int, deleted: Int) async throws {
        _ = try await runTool(
            [
                "python3", "-c",
                """
                import os, glob, time
                parts = sorted(glob.glob('lake/*/'))
                for i, p in enumerate(parts):
                    age = 400 if i < \(deleted) else 40 if i < \(deleted + tiered) else 0
                    for f in glob.glob(p + '*.parquet'):
                        t = time.time() - age * 86400
                        os.utime(f, (t, t))
                """,
            ], in: dir)
    }

    /// `count, count(distinct id), sum(id)` of the lake, by DuckDB.
    static func lake(_ dir: String) async throws -> String {
        try await runTool(
            [
                "python3", "-c",
                // No progress bar: DuckDB prints one on stdout when a query runs longer than 2 s.
                "import duckdb; c = duckdb.connect(); c.execute('SET enable_progress_bar = false'); print(*c.sql(\"SELECT count(*), count(DISTINCT id), sum(id) FROM read_parquet('lake/**/*.parquet')\").fetchall()[0])",
            ],
            in: dir
        ).output.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// Every visible file with its size and modification time, and hidden entries.
    static func listing(_ dir: String) -> [String] {
        let walker = FileManager.default.enumerator(atPath: "\(dir)/lake")
        var out: [String] = []
        while let name = walker?.nextObject() as? String {
            let a = try? FileManager.default.attributesOfItem(atPath: "\(dir)/lake/\(name)")
            out.append("\(name) \(a?[.size] as? Int ?? -1) \((a?[.modificationDate] as? Date)?.timeIntervalSince1970 ?? 0)")
        }
        return out.sorted()
    }

    @Test func aDryRunChangesNothingAndTheRunDoesExactlyWhatItSaid() async throws {
        let dir = try makeWorkDirectory("lifecycle")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try await Self.makeLake(dir, days: 6, perDay: 5000)
        try await Self.age(dir, tiered: 3, deleted: 2)
        let before = Self.listing(dir)
        let dry = try await SluiceProcess.runWithoutBlocking(["lifecycle", "run", "-c", "p.yaml", "--dry-run", "--json"], in: dir)
        #expect(dry.status == 0, "\(dry.stderr)")
        let plan = try #require(try JSONSerialization.jsonObject(with: Data(dry.stdout.utf8)) as? [String: Any])
        let actions = (plan["actions"] as? [[String: Any]]) ?? []
        let deletes = actions.filter { $0["action"] as? String == "delete" }.compactMap { $0["partition"] as? String }
        let tiers = actions.filter { $0["action"] as? String == "tier" }.compactMap { $0["file"] as? String }
        #expect(deletes == ["ts_day=2026-10-01", "ts_day=2026-10-02"], "\(actions)")
        #expect(
            tiers.count == 3 && tiers.allSatisfy { $0.contains("ts_day=2026-10-03") || $0.contains("ts_day=2026-10-04") || $0.contains("ts_day=2026-10-05") },
            "\(tiers)")
        #expect(Self.listing(dir) == before, "a dry run changes nothing")

        let run = try await SluiceProcess.runWithoutBlocking(["lifecycle", "run", "-c", "p.yaml", "--json"], in: dir)
        #expect(run.status == 0, "\(run.stderr)")
        let report = try #require(try JSONSerialization.jsonObject(with: Data(run.stdout.utf8)) as? [String: Any])
        #expect(report["files_tiered"] as? Int == 3 && report["partitions_deleted"] as? Int == 2, "\(report)")
        #expect((report["bytes_after_tiering"] as? Int ?? .max) < (report["bytes_before_tiering"] as? Int ?? 0), "zstd 19 is smaller than snappy: \(report)")
        // What the dry run said, and nothing else: two days gone, three rewritten, one untouched.
        let ids = (0..<30_000).filter { $0 >= 10_000 }
        #expect(try await Self.lake(dir) == "\(ids.count) \(ids.count) \(ids.reduce(0, +))")
        let footers = try await runTool(
            [
                "python3", "-c",
                "import glob, pyarrow.parquet as pq\nfor f in sorted(glob.glob('lake/*/*.parquet')):\n    m = pq.read_metadata(f)\n    print(f.split('/')[1], (m.metadata or {}).get(b'sluice.tier', b'-').decode(), m.row_group(0).column(0).compression)",
            ], in: dir
        ).output.split(separator: "\n").map(String.init)
        #expect(
            footers == [
                "ts_day=2026-10-03 archive ZSTD", "ts_day=2026-10-04 archive ZSTD", "ts_day=2026-10-05 archive ZSTD", "ts_day=2026-10-06 - SNAPPY",
            ], "\(footers)")
        // Nothing left to do.
        let again = try await SluiceProcess.runWithoutBlocking(["lifecycle", "run", "-c", "p.yaml", "--dry-run"], in: dir)
        #expect(again.stdout.contains("nothing to do"), "\(again.stdout)")
    }

    @Test func killedAtRandomMomentsTheLakeStaysExact() async throws {
        let dir = try makeWorkDirectory("lifecycle-kill")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let days = 28, perDay = 20_000
        try await Self.makeLake(dir, days: days, perDay: perDay)
        try await Self.age(dir, tiered: days, deleted: 0)
        let all = (0..<days * perDay)
        let exact = "\(all.count) \(all.count) \(all.reduce(0, +))"
        #expect(try await Self.lake(dir) == exact)
        var kills = 0
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<40 where kills < 10 {
            let p = try SluiceProcess.start(["lifecycle", "run", "-c", "p.yaml"], in: dir, log: "\(dir)/lifecycle.log")
            let timer = KillTimer(p.processIdentifier, afterMilliseconds: Int.random(in: 50...600, using: &generator))
            await waitForExit(p)
            timer.cancel()
            // After every stop, killed or not, the lake is exact for a reader.
            #expect(try await Self.lake(dir) == exact, "after \(kills) kills")
            if p.terminationReason == .uncaughtSignal {
                kills += 1
            } else {
                break
            }
        }
        #expect(kills >= 5, "only \(kills) kills landed")
        let last = try await SluiceProcess.runWithoutBlocking(["lifecycle", "run", "-c", "p.yaml"], in: dir)
        #expect(last.status == 0, "\(last.stderr)")
        #expect(try await Self.lake(dir) == exact)
        // Every file tiered, no leftovers.
        #expect(!Self.listing(dir).contains { $0.contains(".sluice-lifecycle-") }, "\(Self.listing(dir).filter { $0.contains(".sluice-lifecycle-") })")
        let again = try await SluiceProcess.runWithoutBlocking(["lifecycle", "run", "-c", "p.yaml", "--dry-run"], in: dir)
        #expect(again.stdout.contains("nothing to do"), "\(again.stdout)")
    }
}
