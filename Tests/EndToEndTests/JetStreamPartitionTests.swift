import Foundation
import Logging
import SluiceNATS
import SluiceTesting
import Testing

/// Chaos: the stream leader of a three-node JetStream cluster is cut off for 20 s in the middle
/// of a file → JetStream (3 replicas) publisher and two JetStream → Parquet workers sharing one
/// consumer. The node is frozen (SIGSTOP): to its peers and clients that is a network partition,
/// connections stay open and nothing answers, unlike a kill, which closes them at once. The
/// other two nodes elect a new leader, the pipelines carry on through them, the frozen node
/// rejoins (SIGCONT), and the lake holds every record exactly once (DuckDB).
@Suite(.offCooperativePool, .timeLimit(.minutes(8))) struct JetStreamPartitionTests {
    static let count = 100_000
    static let partition: Duration = .seconds(20)

    @Test func aPartitionedStreamLeaderLosesAndRepeatsNothing() async throws {
        let cluster = try NATSTestCluster.start(size: 3)
        defer { cluster.stop() }
        let pg = try postgresURL()
        let dir = try makeWorkDirectory("js-partition")
        defer { if ProcessInfo.processInfo.environment["SLUICE_KEEP_TEST_DIRS"] == nil { try? FileManager.default.removeItem(atPath: dir) } }
        try write((0..<Self.count).map { "{\"n\":\($0),\"note\":\"record \($0)\"}" }.joined(separator: "\n") + "\n", to: "\(dir)/data/in.ndjson")
        try write(
            """
            state: .sluice/publisher.db
            pipelines:
              publish:
                source:
                  file: { path: data/in.ndjson }
                sink:
                  jetstream: { url: "\(cluster.url)", stream: PART, subject: part.in, replicas: 3 }
                batch: { max_rows: 1000 }
                retry: { base_delay: 200ms, max_delay: 2s }
            """, to: "\(dir)/pub.yaml")
        // Two workers share the consumer and a PostgreSQL state store. A message a worker cannot
        // acknowledge (its node frozen) goes to the other after ack_wait: the commit protocol
        // keeps it from being written twice, and the poison-message limit is out of the way.
        let pipeline = "partition_\(UUID().uuidString.prefix(8).lowercased())"
        try write(
            """
            state: "\(pg)"
            pipelines:
              \(pipeline):
                source:
                  jetstream: { url: "\(cluster.url)", stream: PART, subject: part.in, replicas: 3, consumer: lake, ack_wait: 5s, max_deliveries: 100 }
                sink:
                  parquet: { path: lake, max_file_age: 1s }
                batch: { max_latency: 200ms }
                retry: { base_delay: 200ms, max_delay: 2s }
            """, to: "\(dir)/w.yaml")
        let workers = try (0..<2).map { i in
            try SluiceProcess.start(["run", "w.yaml", "--no-progress"], in: dir, log: "\(dir)/worker\(i).log")
        }
        defer { for w in workers where w.isRunning { kill(w.processIdentifier, SIGKILL) } }
        func log(_ name: String) -> String { (try? String(contentsOfFile: "\(dir)/\(name).log", encoding: .utf8)) ?? "" }
        // The workers create the R3 stream and its consumer.
        let consuming = try await waitUntil(seconds: 60, interval: .milliseconds(500)) { try queueStatus(pipeline, in: dir) != nil }
        try #require(consuming, "the workers did not create the stream and its consumer: \(log("worker0").suffix(3_000))")

        // Held in its first commit (those messages stored, the state not yet told) while the
        // leader is cut off; each commit phase is held 100 ms after, so it is still publishing then.
        let hold = CommitHold(in: dir)
        let publisher = try SluiceProcess.start(
            ["run", "pub.yaml", "--no-progress"], in: dir, log: "\(dir)/publisher.log",
            environment: hold.environment.merging(["SLUICE_TEST_COMMIT_DELAY_MS": "100"]) { $1 })
        defer { if publisher.isRunning { kill(publisher.processIdentifier, SIGKILL) } }
        try #require(try await hold.reached(), "the publisher never reached its first commit: \(log("publisher").suffix(2_000))")

        let connection = try await NATSConnection.connect(try NATSOptions(urls: [cluster.url]), logger: Logger(label: "test"))
        var leader: String?
        for _ in 0..<100 where leader == nil {
            leader = try? await JetStream(connection).streamInfo("PART")?.leader
            if leader == nil { try await Task.sleep(for: .milliseconds(200)) }
        }
        await connection.close()
        let victimName = try #require(leader, "the stream has no leader")
        let victim = try #require(cluster.index(named: victimName), "no node is named \(victimName)")
        let pid = try #require(cluster.nodes[victim].process?.processIdentifier, "node \(victimName) is not running")

        kill(pid, SIGSTOP)
        let frozenAt = ContinuousClock.now
        // Whatever happens below, the node is not left frozen (stop() kills it either way).
        defer { kill(pid, SIGCONT) }
        hold.release()

        // The two others elect a new leader and take the messages, asked through them only.
        let others = cluster.nodes.indices.filter { $0 != victim }.map { "nats://127.0.0.1:\(cluster.nodes[$0].clientPort)" }
        let survivors = try await NATSConnection.connect(try NATSOptions(urls: others), logger: Logger(label: "test"))
        var js = JetStream(survivors)
        js.timeout = .seconds(2)
        var newLeader: String?
        var messagesAtElection: Int64?, messagesAtEnd: Int64?
        while ContinuousClock.now < frozenAt + Self.partition {
            if let info = try? await js.streamInfo("PART"), let l = info.leader, l != victimName {
                if newLeader == nil { newLeader = l; messagesAtElection = info.messages }
                messagesAtEnd = info.messages
            }
            try await Task.sleep(for: .milliseconds(500))
        }
        await survivors.close()
        #expect(newLeader != nil, "no new leader was elected while \(victimName) was cut off for \(Self.partition)")
        for (i, w) in workers.enumerated() {
            #expect(w.isRunning, "worker \(i) stopped during the partition: \(log("worker\(i)").suffix(3_000))")
        }
        // (terminationStatus may be read only once the process has exited.)
        let publisherFine = publisher.isRunning || publisher.terminationStatus == 0
        #expect(publisherFine, "the publisher failed during the partition: \(log("publisher").suffix(3_000))")
        try await Task.sleep(until: frozenAt + Self.partition)
        kill(pid, SIGCONT)
        try await offPool { try cluster.waitReady(victim) }

        let published = try await waitUntil(seconds: 240) { !publisher.isRunning }
        try #require(published, "the publisher did not finish after the partition: \(log("publisher").suffix(3_000))")
        #expect(publisher.terminationStatus == 0, "\(log("publisher").suffix(3_000))")
        let drained = try await waitUntil(seconds: 240, interval: .milliseconds(500)) {
            guard let s = try queueStatus(pipeline, in: dir) else { return false }
            return s.messages > 0 && s.lag == 0 && s.ackPending == 0
        }
        let status = try await offPool { try queueStatus(pipeline, in: dir) }
        #expect(drained, "the workers did not drain the stream: \(String(describing: status))")
        for w in workers { kill(w.processIdentifier, SIGTERM) }
        for w in workers { await waitForExit(w) }
        for (i, w) in workers.enumerated() {
            #expect(w.terminationStatus == 0, "worker \(i): \(log("worker\(i)").suffix(3_000))")
            expectNothingMissing(log: "\(dir)/worker\(i).log")
        }

        // A record published twice, or written by both workers, would be in the lake twice.
        let counts = try await offPool {
            try python(
                """
                import duckdb
                print(*duckdb.sql("select count(*), count(distinct n), min(n), max(n) from read_parquet('lake/*.parquet')").fetchall()[0])
                """, in: dir)
        }
        #expect(counts == "\(Self.count) \(Self.count) 0 \(Self.count - 1)", "count, distinct, min, max: \(counts)")
        let grew = messagesAtElection.flatMap { first in messagesAtEnd.map { $0 - first } }
        print(
            "chaos: JetStream stream leader \(victimName) partitioned (SIGSTOP) 1 time for \(Self.partition), new leader "
                + "\(newLeader ?? "none"), \(grew.map { "\($0)" } ?? "?") messages stored through the others meanwhile; \(Self.count) records checked")
    }
}
