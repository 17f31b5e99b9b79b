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
