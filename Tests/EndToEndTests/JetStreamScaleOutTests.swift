import Foundation
import Logging
import SluiceNATS
import SluiceTesting
import Testing

/// Several Sluice workers share one durable JetStream consumer and one PostgreSQL state store.
/// DESIGN.md §2 for the queue path: no message lost, none committed twice, while workers die.
@Suite(.offCooperativePool, .serialized) struct JetStreamScaleOutTests {
    /// Three workers consume 1M numbered records into one Parquet lake; one of them is
    /// `kill -9`'d and restarted again and again. DuckDB then finds every record exactly once.
    /// Once with one record per message, once with 100 (as the jetstream sink packs them: a
    /// redelivered message is dropped or kept whole).
    @Test(arguments: [1, 100]) func threeWorkersOneKilledRepeatedlyEveryRecordOnce(recordsPerMessage: Int) async throws {
        let count = 1_000_000
        let nats = try NATSTestCluster.start()
        defer { nats.stop() }
        let pg = try postgresURL()
        let dir = try makeWorkDirectory("js-scale")
        defer { if ProcessInfo.processInfo.environment["SLUICE_KEEP_TEST_DIRS"] == nil { try? FileManager.default.removeItem(atPath: dir) } }
        try await fillStream(url: nats.url, stream: "NUMBERS", subject: "numbers", count: count, recordsPerMessage: recordsPerMessage)
        // Packed messages are consumed several times faster: kill more often.
        let killEvery = recordsPerMessage > 1 ? 500...1500 : 1500...4000

        let pipeline = "scaleout_\(UUID().uuidString.prefix(8).lowercased())"
        try write(
            """
            state: "\(pg)"
            pipelines:
              \(pipeline):
                source:
                  # A worker killed every few seconds, faster than it commits, gets the same messages
                  # again and again: the poison-message limit is set out of this test's way.
                  # ack_wait stays at its default (30s): a killed worker's messages go to the others after it.
                  jetstream: { url: "\(nats.url)", stream: NUMBERS, consumer: lake, batch: 2000, max_deliveries: 100 }
                sink:
                  parquet: { path: lake, max_file_age: 2s }
                batch: { max_rows: 20000, max_latency: 200ms }
            """, to: "\(dir)/w.yaml")
        func startWorker(_ i: Int, delay: Bool = false) throws -> Process {
            try SluiceProcess.start(
                ["run", "w.yaml", "--no-progress", "--log-level", "info"], in: dir, log: "\(dir)/worker\(i).log",
                environment: delay ? ["SLUICE_TEST_COMMIT_DELAY_MS": "150"] : [:])
        }
        var workers = try (0..<3).map { try startWorker($0) }
        defer { for w in workers where w.isRunning { kill(w.processIdentifier, SIGKILL) } }

        // Kill worker 0 at random moments (every other run pauses between the commit phases, so
        // kills also land after the state commit and before the acks go out) until the stream is drained.
        var kills = 0
        var generator = SystemRandomNumberGenerator()
        let deadline = ContinuousClock.now + .seconds(600)
        while ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(Int.random(in: killEvery, using: &generator)))
            let status = try await offPool { try queueStatus(pipeline, in: dir) }
            if let status, status.lag == 0 && status.ackPending == 0 { break }
            if kills < 12 {
                kill(workers[0].processIdentifier, SIGKILL)
                await waitForExit(workers[0])
                kills += 1
                workers[0] = try startWorker(0, delay: kills % 2 == 1)
            }
        }
        let drained = try await offPool { try queueStatus(pipeline, in: dir) }
        #expect(drained?.lag == 0 && drained?.ackPending == 0, "the workers did not drain the stream: \(String(describing: drained))")
        #expect(kills >= 5)
        for w in workers { kill(w.processIdentifier, SIGTERM) }
        for w in workers { await waitForExit(w) }
        for (i, w) in workers.enumerated() {
            let log = (try? String(contentsOfFile: "\(dir)/worker\(i).log", encoding: .utf8)) ?? ""
            #expect(w.terminationStatus == 0, "worker \(i): \(log.suffix(3000))")
            expectNothingMissing(log: "\(dir)/worker\(i).log")
        }

        let counts = try python(
            """
            import duckdb
            r = duckdb.sql("select count(*), count(distinct n), min(n), max(n) from read_parquet('lake/*.parquet')").fetchall()[0]
            print(*r)
            """, in: dir)
        #expect(counts == "\(count) \(count) 0 \(count - 1)", "count, distinct, min, max: \(counts)")
        if counts != "\(count) \(count) 0 \(count - 1)" {
            // Which records, from which stream messages, in which files: one stream sequence in
            // two files is a consumer-side duplicate; two sequences would be two stored messages.
            let twice = try python(
                """
                import duckdb
                for r in duckdb.sql("select n, _nats_seq, filename from read_parquet('lake/*.parquet', filename=true) where n in (select n from read_parquet('lake/*.parquet') group by n having count(*) > 1) order by n limit 20").fetchall():
                    print(*r)
                """, in: dir)
            Issue.record("records twice (n, _nats_seq, file):\n\(twice)")
        }
        let letters = try SluiceProcess.run(["dlq", "list", "--pipeline", pipeline, "-c", "w.yaml"], in: dir)
        #expect(letters.status == 0 && !letters.stdout.contains("max_deliveries"), "\(letters.stdout)")
    }
}

/// A worker that stalls (here: `SIGSTOP`) longer than `ack_wait` while it holds messages it has
/// written but not committed. The server hands those messages to the other worker, which
/// commits them; the stalled worker then wakes up and commits them too, unless its commit is
/// refused. DESIGN.md §2: each record exactly once even then.
@Suite(.offCooperativePool, .serialized) struct JetStreamStalledWorkerTests {
    @Test func aWorkerStalledPastAckWaitDoesNotCommitRecordsTwice() async throws {
        let count = 200_000
        let nats = try NATSTestCluster.start()
        defer { nats.stop() }
        let pg = try postgresURL()
        let dir = try makeWorkDirectory("js-stall")
        defer { if ProcessInfo.processInfo.environment["SLUICE_KEEP_TEST_DIRS"] == nil { try? FileManager.default.removeItem(atPath: dir) } }
        try await fillStream(url: nats.url, stream: "STALL", subject: "stall", count: count)
        let pipeline = "stall_\(UUID().uuidString.prefix(8).lowercased())"
        try write(
            """
            state: "\(pg)"
            pipelines:
              \(pipeline):
                source:
                  jetstream: { url: "\(nats.url)", stream: STALL, consumer: lake, batch: 500, ack_wait: 2s, max_deliveries: 100 }
                sink:
                  parquet: { path: lake, max_file_age: 1s }
                batch: { max_rows: 2000, max_latency: 100ms }
            """, to: "\(dir)/w.yaml")
        // Worker 0 pauses in each commit (200 ms before and after the state store's), so that a
        // stall almost always catches it holding messages it wrote and has not acknowledged: on
        // a loaded machine, stalls between its commits handed nothing over and proved nothing.
        let workers = try (0..<2).map {
            try SluiceProcess.start(
                ["run", "w.yaml", "--no-progress", "--log-level", "info"], in: dir, log: "\(dir)/worker\($0).log",
                environment: $0 == 0 ? ["SLUICE_TEST_COMMIT_DELAY_MS": "200"] : [:])
        }
        defer { for w in workers where w.isRunning { kill(w.processIdentifier, SIGCONT); kill(w.processIdentifier, SIGKILL) } }

        // Worker 0 stalls for twice ack_wait, again and again, while both consume.
        var stalls = 0
        let deadline = ContinuousClock.now + .seconds(600)
        while ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(Int.random(in: 1000...2500)))
            if let status = try await offPool({ try queueStatus(pipeline, in: dir) }), status.lag == 0 && status.ackPending == 0 { break }
            if stalls < 8 {
                kill(workers[0].processIdentifier, SIGSTOP)
                try await Task.sleep(for: .seconds(4))
                kill(workers[0].processIdentifier, SIGCONT)
                stalls += 1
            }
        }
        let drained = try await offPool { try queueStatus(pipeline, in: dir) }
        #expect(drained?.lag == 0 && drained?.ackPending == 0, "the workers did not drain the stream: \(String(describing: drained))")
        for w in workers { kill(w.processIdentifier, SIGTERM) }
        for w in workers { await waitForExit(w) }
        var refused = 0
        for (i, w) in workers.enumerated() {
            let log = (try? String(contentsOfFile: "\(dir)/worker\(i).log", encoding: .utf8)) ?? ""
            #expect(w.terminationStatus == 0, "worker \(i): \(log.suffix(3000))")
            expectNothingMissing(log: "\(dir)/worker\(i).log")
            refused += log.components(separatedBy: "commit refused").count - 1
        }
        let counts = try python(
            """
            import duckdb
            r = duckdb.sql("select count(*), count(distinct n), min(n), max(n) from read_parquet('lake/*.parquet')").fetchall()[0]
            print(*r)
            """, in: dir)
        #expect(counts == "\(count) \(count) 0 \(count - 1)", "count, distinct, min, max: \(counts)")
        // The stalls did hand held messages to the other worker (otherwise this test proves nothing).
        #expect(refused > 0, "no commit was refused in \(stalls) stalls")
        // A refused commit's files were discarded (the workers stopped cleanly, so nothing else
        // leaves temporary files behind).
        let leftovers = (try FileManager.default.contentsOfDirectory(atPath: "\(dir)/lake")).filter { $0.hasSuffix(".tmp") }
        #expect(leftovers.isEmpty, "temporary files of refused commits: \(leftovers)")
        print("stalled worker: \(stalls) stalls, \(refused) commits refused")
    }
}

/// Bad messages on a JetStream stream: a malformed one is dead-lettered with its location and
/// terminated; a malformed record of a packed message is dead-lettered with its place in the
/// message, and the message's other records are kept; one that keeps dying with its worker is
/// dead-lettered after `max_deliveries` and terminated, not left pending.
@Suite(.offCooperativePool, .serialized) struct JetStreamPoisonTests {
    @Test func malformedAndPoisonMessagesGoToTheDLQAndAreTerminated() async throws {
        let nats = try NATSTestCluster.start()
        defer { nats.stop() }
        let dir = try makeWorkDirectory("js-poison")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let connection = try await NATSConnection.connect(try NATSOptions(urls: [nats.url]), logger: Logger(label: "test"))
        _ = try await JetStream(connection).ensureStream(StreamConfig(name: "P", subjects: ["p"]))
        for body in ["{\"id\": 1}", "{\"id\": 2}", "{not json", "{\"id\": 3}"] { try connection.publish("p", payload: Array(body.utf8)) }
        try connection.publish(
            "p", headers: NATSHeaders(fields: [("Sluice-Records", "3")]),
            payload: Array("{\"id\": 10}\n{broken\n{\"id\": 11}\n".utf8))
        try await connection.flush()
        try write(
            """
            pipelines:
              poison:
                source:
                  jetstream: { url: "\(nats.url)", stream: P, consumer: c, ack_wait: 1s, max_deliveries: 2 }
                sink:
                  ndjson: { path: out, max_file_age: 1h }
            """, to: "\(dir)/w.yaml")
        func run() throws -> Process { try SluiceProcess.start(["run", "w.yaml", "--no-progress"], in: dir, log: "\(dir)/w.log") }

        // A run that commits (at SIGTERM): five records out, the malformed ones dead-lettered.
        var worker = try run()
        #expect(try await waitUntil(seconds: 30) { try queueStatus("poison", in: dir)?.ackPending == 5 })
        kill(worker.processIdentifier, SIGTERM)
        await waitForExit(worker)
        #expect(try outputLines("\(dir)/out").count == 5)
        var letters = try SluiceProcess.run(["dlq", "list", "--pipeline", "poison", "-c", "w.yaml"], in: dir).stdout
        #expect(letters.contains("jetstream:P/p seq 3"), "\(letters)")
        #expect(letters.contains("jetstream:P/p seq 5 record 2"), "\(letters)")
        let raw = try SluiceProcess.run(["dlq", "list", "--pipeline", "poison", "-c", "w.yaml", "--json"], in: dir).stdout
        #expect(raw.contains("{broken") && !raw.contains("{\\\"id\\\": 10}"), "only the bad record is dead-lettered: \(raw)")
        var status = try #require(try queueStatus("poison", in: dir))
        #expect(status.lag == 0 && status.ackPending == 0, "\(status)")

        // A message whose worker dies before every commit: delivered, killed, again and again.
        try connection.publish("p", payload: Array("{\"id\": 4}".utf8))
        try await connection.flush()
        await connection.close()
        for delivery in 6...7 {
            worker = try run()
            #expect(try await waitUntil(seconds: 30) { try queueStatus("poison", in: dir)?.deliveries == delivery })
            kill(worker.processIdentifier, SIGKILL)
            await waitForExit(worker)
        }
        worker = try run()  // the third delivery, after ack_wait: over max_deliveries
        #expect(try await waitUntil(seconds: 30) { try queueStatus("poison", in: dir)?.deliveries == 8 })
        try await Task.sleep(for: .milliseconds(300))
        kill(worker.processIdentifier, SIGTERM)
        await waitForExit(worker)
        #expect(worker.terminationStatus == 0)
        letters = try SluiceProcess.run(["dlq", "list", "--pipeline", "poison", "-c", "w.yaml"], in: dir).stdout
        #expect(letters.contains("max_deliveries") && letters.contains("seq 6"), "\(letters)")
        status = try #require(try queueStatus("poison", in: dir))
        #expect(status.lag == 0 && status.ackPending == 0, "the poison message was left pending: \(status)")
        #expect(try outputLines("\(dir)/out").count == 5)
    }
}
