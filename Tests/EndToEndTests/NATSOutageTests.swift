import Foundation
import SluiceTesting
import Testing

/// Chaos: the only nats-server of a file → JetStream → Parquet pair of pipelines is killed
/// (`kill -9`) mid-run and started again 15 s later with its store. Both pipelines wait instead
/// of stopping (the publisher's `/readyz` says why), carry on once it is back, and the stream
/// and the lake each hold every record exactly once.
@Suite(.offCooperativePool, .timeLimit(.minutes(10))) struct NATSOutageTests {
    static let count = 300_000
    static let outage: Duration = .seconds(15)

    @Test func aKilledServerRestartedLaterLosesAndRepeatsNothing() async throws {
        let nats = try NATSTestCluster.start(size: 1)
        defer { nats.stop() }
        let dir = try makeWorkDirectory("nats-outage")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try write((0..<Self.count).map { "{\"n\":\($0),\"note\":\"record \($0)\"}" }.joined(separator: "\n") + "\n", to: "\(dir)/data/in.ndjson")
        try write(
            """
            state: .sluice/publisher.db
            pipelines:
              publish:
                source:
                  file: { path: data/in.ndjson }
                sink:
                  jetstream: { url: "\(nats.url)", stream: OUT, subject: out.in }
                batch: { max_rows: 1000 }
                retry: { base_delay: 200ms, max_delay: 2s }
            """, to: "\(dir)/pub.yaml")
        try write(
            """
            state: .sluice/consumer.db
            pipelines:
              lake:
                source:
                  jetstream: { url: "\(nats.url)", stream: OUT, subject: out.in, consumer: lake, ack_wait: 5s }
                sink:
                  parquet: { path: lake, max_file_age: 1s }
                batch: { max_latency: 200ms }
                retry: { base_delay: 200ms, max_delay: 2s }
            """, to: "\(dir)/w.yaml")
        let consumer = try SluiceProcess.start(["run", "w.yaml", "--no-progress"], in: dir, log: "\(dir)/consumer.log")
        defer { if consumer.isRunning { kill(consumer.processIdentifier, SIGKILL) } }
        let port = try freePort()
        // Held in its first commit (those messages stored, the state not yet told) while the
        // server goes; each commit phase is held 100 ms after.
        let hold = CommitHold(in: dir)
        let publisher = try SluiceProcess.start(
            ["run", "pub.yaml", "--no-progress", "--metrics-port", "\(port)"], in: dir, log: "\(dir)/publisher.log",
            environment: hold.environment.merging(["SLUICE_TEST_COMMIT_DELAY_MS": "100"]) { $1 })
        defer { if publisher.isRunning { kill(publisher.processIdentifier, SIGKILL) } }
        func log(_ name: String) -> String { (try? String(contentsOfFile: "\(dir)/\(name).log", encoding: .utf8)) ?? "" }

        try #require(try await hold.reached(), "the publisher never reached its first commit: \(log("publisher").suffix(2_000))")
        nats.kill(0)
        let killedAt = ContinuousClock.now
        hold.release()

        let reply = try await waitUntilNotReady(port: port, mentioning: "'publish'", seconds: 12, while: publisher)
        #expect(reply?.isNotReady(mentioning: "'publish'") == true, "the publisher's readyz with the server down: \(reply?.summary ?? "no answer")")
        try await Task.sleep(until: killedAt + Self.outage)
        #expect(publisher.isRunning, "the publisher stopped during the outage: \(log("publisher").suffix(3_000))")
        #expect(consumer.isRunning, "the consumer stopped during the outage: \(log("consumer").suffix(3_000))")
        try nats.startNode(0)
        try await offPool { try nats.waitReady(0) }

        let published = try await waitUntil(seconds: 240) { !publisher.isRunning }
        try #require(published, "the publisher did not finish once the server was back: \(log("publisher").suffix(3_000))")
        #expect(publisher.terminationStatus == 0, "\(log("publisher").suffix(3_000))")
        let drained = try await waitUntil(seconds: 240, interval: .milliseconds(500)) {
            guard let s = try queueStatus("lake", in: dir) else { return false }
            return s.messages > 0 && s.lag == 0 && s.ackPending == 0
        }
        #expect(drained, "the consumer did not catch up: \(log("consumer").suffix(3_000))")
        kill(consumer.processIdentifier, SIGTERM)
        await waitForExit(consumer)
        #expect(consumer.terminationStatus == 0, "\(log("consumer").suffix(3_000))")

        // A record the publisher stored twice would reach the lake twice: DuckDB counts them.
        let counts = try await runTool(
            [
                "python3", "-c",
                "import duckdb; print(*duckdb.sql(\"select count(*), count(distinct n), min(n), max(n) from read_parquet('lake/*.parquet')\").fetchall()[0])",
            ], in: dir)
        #expect(
            counts.output.trimmingCharacters(in: .whitespacesAndNewlines) == "\(Self.count) \(Self.count) 0 \(Self.count - 1)",
            "count, distinct, min, max: \(counts.output)")
        print("chaos: nats-server killed 1 time for \(Self.outage); \(Self.count) records checked")
    }
}
