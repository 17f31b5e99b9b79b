import Foundation
import SluiceTesting
import Testing

@Suite(.offCooperativePool) struct DedupeAndLifecycleTests {
    @Test func dedupeDropsRepeatsWithinTheTTLAndAcceptsThemAfter() async throws {
        let dir = try makeWorkDirectory("dedupe")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        // The TTL is read at each lookup, so the test never races the clock: a day while the
        // repeat must be dropped (a 60 s TTL let it through once when CI took 90 s for two runs),
        // then one second, waited out, for the key to expire.
        func configure(ttl: String) throws {
            try write(
                """
                pipelines:
                  d:
                    source: { file: { path: data } }
                    sink: { ndjson: { path: out } }
                    dedupe: { key: [id], ttl: \(ttl) }
                """, to: "\(dir)/p.yaml")
        }
        try configure(ttl: "24h")
        try write("id,v\n1,a\n2,b\n2,b-again\n3,c\n", to: "\(dir)/data/1.csv")
        var r = try SluiceProcess.run(["run", "p.yaml", "--no-progress"], in: dir)
        #expect(r.status == 0, "\(r.stderr)")
        #expect(try outputLines("\(dir)/out").count == 3)

        try write("id,v\n3,c-again\n4,d\n", to: "\(dir)/data/2.csv")
        r = try SluiceProcess.run(["run", "p.yaml", "--no-progress"], in: dir)
        #expect(r.status == 0)
        var lines = try outputLines("\(dir)/out").map(String.init)
        #expect(lines.count == 4)
        #expect(!lines.contains(#"{"id":3,"v":"c-again"}"#))

        try configure(ttl: "1s")
        try await Task.sleep(for: .seconds(2))
        try write("id,v\n3,c-later\n", to: "\(dir)/data/3.csv")
        r = try SluiceProcess.run(["run", "p.yaml", "--no-progress"], in: dir)
        #expect(r.status == 0)
        lines = try outputLines("\(dir)/out").map(String.init)
        #expect(lines.count == 5)
        #expect(lines.contains(#"{"id":3,"v":"c-later"}"#))
    }

    /// A filter saved at the end of one run is taken by the next ones, which are killed at
    /// random moments while half their rows repeat the first run's; a last run repeats keys
    /// that only runs after the saved filter committed. Every id is written once (DuckDB counts
    /// them).
    @Test func aSavedFilterKeepsDedupeExactAcrossKills() async throws {
        let dir = try makeWorkDirectory("dedupe-saved-filter")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try write(
            """
            pipelines:
              p:
                source: { file: { path: data } }
                sink: { parquet: { path: lake } }
                dedupe: { key: [id], ttl: 24h }
            """, to: "\(dir)/p.yaml")
        func rows(_ ids: Range<Int>, _ tag: String) -> String { "id,v\n" + ids.map { "\($0),\(tag)\n" }.joined() }
        // 100,000 keys: more than the 65,536 a run must add for its filter to be saved.
        try write(rows(0..<100_000, "first"), to: "\(dir)/data/1.csv")
        let first = try await SluiceProcess.runWithoutBlocking(["run", "p.yaml", "--no-progress", "--log-level", "info"], in: dir)
        #expect(first.status == 0 && first.stderr.contains("dedupe filter saved"), "\(first.stderr)")
        // 50,000 repeats and 50,000 new keys, too few for a save: the runs' keys are only in
        // their commits.
        try write(rows(50_000..<150_000, "second"), to: "\(dir)/data/2.csv")
        let arguments = ["run", "p.yaml", "--no-progress", "--log-level", "info"]
        let kills = try await killRepeatedly(in: dir, kills: 4, delays: 100...700, maxRuns: 30, arguments: arguments) { false }
        let second = try await SluiceProcess.runWithoutBlocking(arguments, in: dir)
        #expect(second.status == 0 && !second.stderr.contains("dedupe filter saved"), "\(second.stderr)")
        // 30,000 keys that only the runs after the saved filter committed, and 10,000 new.
        try write(rows(120_000..<160_000, "third"), to: "\(dir)/data/3.csv")
        let third = try await SluiceProcess.runWithoutBlocking(arguments, in: dir)
        #expect(third.status == 0 && third.stderr.contains("dedupe filter taken from the state store"), "\(third.stderr)")
        // Its batches of 16,384 repeats looked their keys up by groups of runs.
        #expect(third.stderr.contains("dedupe lookups grouped by run"), "\(third.stderr)")
        let log = (try? String(contentsOfFile: "\(dir)/sluice.log", encoding: .utf8)) ?? ""
        #expect(!log.contains("dedupe filter built from the stored keys"), "a killed run did not take the saved filter")
        let counts = try await runTool(
            [
                "python3", "-c",
                "import duckdb; c = duckdb.connect(); c.execute('SET enable_progress_bar = false'); print(*c.sql(\"SELECT count(*), count(DISTINCT id), count(*) FILTER (WHERE v = 'second'), count(*) FILTER (WHERE v = 'third') FROM read_parquet('lake/**/*.parquet')\").fetchall()[0])",
            ], in: dir)
        #expect(counts.output.trimmingCharacters(in: .whitespacesAndNewlines) == "160000 160000 50000 10000", "\(counts.output) after \(kills) kills")
    }

    @Test func sigtermStopsAWatchingPipelineGracefullyAndServesMetrics() async throws {
        let dir = try makeWorkDirectory("term")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try write(
            """
            pipelines:
              w:
                source: { file: { path: data, format: ndjson, watch: true, poll_interval: 200ms, min_age: 0s } }
                sink: { ndjson: { path: out } }
            """, to: "\(dir)/p.yaml")
        try write("{\"id\":1}\n{\"id\":2}\n", to: "\(dir)/data/1.ndjson")
        let port = Int.random(in: 20000...40000)
        let p = try SluiceProcess.start(["run", "p.yaml", "--metrics-port", "\(port)"], in: dir, log: "\(dir)/log")
        defer { if p.isRunning { kill(p.processIdentifier, SIGKILL) } }
        func metrics() throws -> String {
            let curl = Process()
            curl.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            curl.arguments = ["curl", "-s", "http://127.0.0.1:\(port)/metrics"]
            let pipe = ChildProcesses.pipe()
            curl.standardOutput = pipe
            try ChildProcesses.run(curl)
            let text = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            curl.waitUntilExit()
            return text
        }
        /// `sluice_records_in_total` of pipeline w (records read so far).
        func recordsIn() throws -> Int {
            try metrics().split(separator: "\n").first { $0.hasPrefix("sluice_records_in_total{") && $0.contains("pipeline=\"w\"") }
                .flatMap { $0.split(separator: " ").last.flatMap { Double($0) } }.map { Int($0) } ?? -1
        }
        // Conditions, not sleeps: the first file read, then the second (a stop commits what was read).
        #expect(try await waitUntil(seconds: 60) { try recordsIn() == 2 }, "the first file was not read")
        try write("{\"id\":3}\n{not json\n", to: "\(dir)/data/2.ndjson")
        #expect(try await waitUntil(seconds: 60) { try recordsIn() == 4 }, "the new file was not picked up")
        #expect(p.isRunning, "a watching pipeline keeps running")
        let exposition = try metrics()
        #expect(exposition.contains("sluice_records_in_total"), "\(exposition.prefix(500))")
        // Every series names its pipeline; dead letters say where and why.
        let series = exposition.split(separator: "\n").filter { $0.hasPrefix("sluice_") }
        #expect(!series.isEmpty)
        for line in series { #expect(line.contains("pipeline=\"w\""), "\(line)") }
        #expect(
            series.contains { $0.hasPrefix("sluice_dead_letters_total{") && $0.contains("stage=\"decode\"") && $0.contains("kind=\"") },
            "\(series.filter { $0.contains("dead_letters") })")
        #expect(series.contains { $0.hasPrefix("sluice_buffer_batches{") })
        #expect(!series.contains { $0.hasPrefix("sluice_queue_depth_batches") }, "the buffer is not named like a queue")

        kill(p.processIdentifier, SIGTERM)
        p.waitUntilExit()
        #expect(p.terminationStatus == 0, "\((try? String(contentsOfFile: "\(dir)/log", encoding: .utf8)) ?? "")")
        let ids = try outputLines("\(dir)/out").sorted()
        #expect(ids == [#"{"id":1}"#, #"{"id":2}"#, #"{"id":3}"#])
        let tmp = try FileManager.default.contentsOfDirectory(atPath: "\(dir)/out").filter { $0.hasSuffix(".tmp") }
        #expect(tmp.isEmpty)
    }
}
