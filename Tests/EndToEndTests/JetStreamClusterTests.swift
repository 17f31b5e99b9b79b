import Foundation
import Logging
import SluiceNATS
import SluiceTesting
import Testing

/// JetStream as the queue between pipelines, in a three-node cluster and behind log-based CDC.
@Suite(.offCooperativePool, .serialized) struct JetStreamClusterTests {
    /// A file → JetStream publisher and a JetStream → Parquet consumer run while the stream's
    /// leader is `kill -9`'d: both carry on with the new leader, and the stream and the lake each
    /// hold every record exactly once.
    @Test func streamLeaderKilledMidRunNothingLostNothingDuplicated() async throws {
        let count = 60_000
        let cluster = try NATSTestCluster.start(size: 3)
        defer { cluster.stop() }
        let dir = try makeWorkDirectory("js-cluster")
        defer { if ProcessInfo.processInfo.environment["SLUICE_KEEP_TEST_DIRS"] == nil { try? FileManager.default.removeItem(atPath: dir) } }
        var lines = ""
        for i in 0..<count { lines += "{\"n\":\(i),\"note\":\"record \(i)\"}\n" }
        try write(lines, to: "\(dir)/data/in.ndjson")
        try write(
            """
            state: .sluice/publisher.db
            pipelines:
              publish:
                source:
                  file: { path: data/in.ndjson }
                sink:
                  jetstream: { url: "\(cluster.url)", stream: CL, subject: cl.in, replicas: 3 }
                batch: { max_rows: 2000 }
            """, to: "\(dir)/pub.yaml")
        try write(
            """
            state: .sluice/consumer.db
            pipelines:
              lake:
                source:
                  jetstream: { url: "\(cluster.url)", stream: CL, subject: cl.in, replicas: 3, consumer: lake, ack_wait: 5s }
                sink:
                  parquet: { path: lake, max_file_age: 1s }
                batch: { max_latency: 200ms }
            """, to: "\(dir)/w.yaml")
        let consumer = try SluiceProcess.start(["run", "w.yaml", "--no-progress"], in: dir, log: "\(dir)/consumer.log")
        defer { if consumer.isRunning { kill(consumer.processIdentifier, SIGKILL) } }
        try await Task.sleep(for: .seconds(2))  // the consumer creates the R3 stream and its consumer
        let publisher = try SluiceProcess.start(["run", "pub.yaml", "--no-progress"], in: dir, log: "\(dir)/publisher.log")
        defer { if publisher.isRunning { kill(publisher.processIdentifier, SIGKILL) } }

        let connection = try await NATSConnection.connect(try NATSOptions(urls: [cluster.url]), logger: Logger(label: "test"))
        let js = JetStream(connection)
        var killed: Int?
        for _ in 0..<600 where killed == nil {
            try await Task.sleep(for: .milliseconds(100))
            // Messages hold up to 500 records each: a quarter of the records is about count / 2000 messages.
            guard let info = try? await js.streamInfo("CL"), info.messages >= UInt64(count / 2000), let leader = info.leader else { continue }
            killed = cluster.index(named: leader)
        }
        let victim = try #require(killed, "the publisher did not get a quarter of the records in")
        cluster.kill(victim)
        await connection.close()

        await waitForExit(publisher)
        let publisherLog = (try? String(contentsOfFile: "\(dir)/publisher.log", encoding: .utf8)) ?? ""
        #expect(publisher.terminationStatus == 0, "\(publisherLog.suffix(3000))")
        try cluster.startNode(victim)
        try cluster.waitReady(victim)
        // The publisher is done: the stream is complete once the consumer has it all.
        let drained = try await waitUntil(seconds: 180, interval: .milliseconds(500)) {
            guard let s = try queueStatus("lake", in: dir) else { return false }
            return s.messages > 0 && s.lag == 0 && s.ackPending == 0
        }
        let status = try queueStatus("lake", in: dir)
        #expect(drained, "\(String(describing: status))")
        #expect((status?.messages ?? 0) < count / 10, "records were not packed several to a message: \(String(describing: status?.messages)) messages")
        kill(consumer.processIdentifier, SIGTERM)
        await waitForExit(consumer)
        #expect(consumer.terminationStatus == 0, "\(((try? String(contentsOfFile: "\(dir)/consumer.log", encoding: .utf8)) ?? "").suffix(3000))")
        let counts = try python(
            """
            import duckdb
            print(*duckdb.sql("select count(*), count(distinct n), min(n), max(n) from read_parquet('lake/*.parquet')").fetchall()[0])
            """, in: dir)
        #expect(counts == "\(count) \(count) 0 \(count - 1)", "count, distinct, min, max: \(counts)")
    }
}

/// PostgreSQL CDC → JetStream (two partitions by key) → two workers → PostgreSQL current-state
/// table, with the publishing pipeline
/// `kill -9`'d again and again, half the time between the publish (acked by JetStream) and the
/// state commit that advances the slot: the replayed changes carry the same `Nats-Msg-Id`
/// (commit LSN and index), so the stream holds each change once and the target equals the source.
@Suite(.offCooperativePool, .serialized) struct JetStreamCDCTests {
    @Test func cdcThroughJetStreamSurvivesCrashesBetweenPublishAndSlotAdvance() async throws {
        let url = try postgresURL()
        let nats = try NATSTestCluster.start()
        defer { nats.stop() }
        let s = try makeSchema("jscdc")
        let target = try makeSchema("jscdc_tgt")
        let slot = "slot_\(s)", publication = "pub_\(s)"
        defer { dropCDCObjects(slots: [slot], publication: publication, schemas: [s, target]) }
        try await psqlAsync("CREATE TABLE \(s).accounts (id int PRIMARY KEY, balance int NOT NULL, note text)")
        let dir = try makeWorkDirectory("js-cdc")
        defer { if ProcessInfo.processInfo.environment["SLUICE_KEEP_TEST_DIRS"] == nil { try? FileManager.default.removeItem(atPath: dir) } }
        try write(
            """
            state: .sluice/cdc.db
            pipelines:
              capture:
                source:
                  postgres_cdc: { url: "\(url)", slot: \(slot), publication: \(publication), tables: [\(s).accounts] }
                sink:
                  jetstream: { url: "\(nats.url)", stream: CDC, subject: "cdc.{table}.{partition}", partitions: 2 }
                batch: { max_latency: 100ms }
            """, to: "\(dir)/p.yaml")
        // Two apply workers, one per partition: a key's changes always go to the same one.
        for partition in 0..<2 {
            try write(
                """
                state: .sluice/apply\(partition).db
                pipelines:
                  apply\(partition):
                    source:
                      jetstream: { url: "\(nats.url)", stream: CDC, subject: "cdc.{table}.{partition}", consumer: apply\(partition),
                                   filter_subject: "cdc.*.*.\(partition)", format: change_events }
                    sink:
                      postgres: { url: "\(url)", table: "\(target).{table}", mode: apply }
                    batch: { max_latency: 200ms }
                """, to: "\(dir)/w\(partition).yaml")
        }
        let appliers = try (0..<2).map { try SluiceProcess.start(["run", "w\($0).yaml", "--no-progress"], in: dir, log: "\(dir)/apply\($0).log") }
        defer { for a in appliers where a.isRunning { kill(a.processIdentifier, SIGKILL) } }
        func startCapture(pause: Bool) throws -> Process {
            try SluiceProcess.start(
                ["run", "p.yaml", "--no-progress", "--log-level", "warning"], in: dir, log: "\(dir)/capture.log",
                environment: pause ? ["SLUICE_TEST_COMMIT_DELAY_MS": "200"] : [:])
        }
        var capture = try startCapture(pause: false)
        defer { if capture.isRunning { kill(capture.processIdentifier, SIGKILL) } }
        #expect(try await waitUntil(seconds: 60) { try psql("SELECT count(*) FROM pg_replication_slots WHERE slot_name = '\(slot)'") == ["1"] })
        // The first run's snapshot (of the empty table) must be committed before the kills
        // start: a run killed during its snapshot snapshots again (rows as of then, op `r`).
        try await psqlAsync("INSERT INTO \(s).accounts VALUES (-2, 0, 'first')")
        #expect(try await waitUntil(seconds: 60) { (try? psql("SELECT count(*) FROM \(target).accounts WHERE id = -2")) == ["1"] })
        try await Task.sleep(for: .seconds(2))  // the capture's commit interval is 1 s

        var changes = 1, kills = 0
        var existing = Set<Int>()
        var generator = SystemRandomNumberGenerator()
        for chunk in 0..<24 {
            var sql = ""
            for i in (chunk * 25)..<(chunk * 25 + 25) {
                sql += "INSERT INTO \(s).accounts VALUES (\(i), 100, 'a\(i)'); "
                existing.insert(i)
                changes += 1
                if i % 2 == 0 {
                    sql += "UPDATE \(s).accounts SET balance = balance + \(i) WHERE id = \(i / 2); "
                    if existing.contains(i / 2) { changes += 1 }
                }
                if i % 5 == 4 {
                    sql += "DELETE FROM \(s).accounts WHERE id = \(i - 3); "
                    if existing.remove(i - 3) != nil { changes += 1 }
                }
            }
            try await psqlAsync("BEGIN; \(sql) COMMIT;")
            if chunk % 2 == 1 {
                try await Task.sleep(for: .milliseconds(Int.random(in: 100...900, using: &generator)))
                kill(capture.processIdentifier, SIGKILL)
                await waitForExit(capture)
                kills += 1
                capture = try startCapture(pause: kills % 2 == 1)
            }
        }
        try await psqlAsync("INSERT INTO \(s).accounts VALUES (-1, 0, 'last')")
        changes += 1
        let caughtUp = try await waitUntil(seconds: 180, interval: .milliseconds(500)) {
            guard try psql("SELECT count(*) FROM \(target).accounts WHERE id = -1") == ["1"] else { return false }
            let both = try (0..<2).compactMap { try queueStatus("apply\($0)", in: dir, config: "w\($0).yaml") }
            return both.count == 2 && both.allSatisfy { $0.lag == 0 && $0.ackPending == 0 }
        }
        #expect(caughtUp, "\(((try? String(contentsOfFile: "\(dir)/apply0.log", encoding: .utf8)) ?? "").suffix(3000))")
        #expect(kills >= 10)
        // Changes are packed several to a message: count them, and their ids (LSN and index).
        let records = try await streamRecords(url: nats.url, stream: "CDC")
        let ids = try records.map { line -> String in
            let event = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
            return "\(event["lsn"] ?? ""):\(event["seq"] ?? "")"
        }
        #expect(
            records.count == changes && Set(ids).count == changes,
            "the stream holds \(records.count) change events (\(Set(ids).count) distinct) for \(changes) changes")
        let source = try tableFingerprint(s, "accounts", columns: ["id", "balance", "note"], orderBy: "id")
        let copy = try tableFingerprint(target, "accounts", columns: ["id", "balance", "note"], orderBy: "id")
        #expect(source == copy, "the current-state table differs from the source (\(source.count) vs \(copy.count) rows)")
        kill(capture.processIdentifier, SIGTERM)
        for a in appliers { kill(a.processIdentifier, SIGTERM) }
        await waitForExit(capture)
        for a in appliers { await waitForExit(a); #expect(a.terminationStatus == 0) }
    }
}

/// HTTP push → JetStream → two workers → Parquet lake, from configuration alone: every record
/// answered 202 is in the lake once.
@Suite(.offCooperativePool, .serialized) struct JetStreamPushTests {
    @Test func pushedRecordsReachTheLakeThroughJetStreamOnce() async throws {
        let nats = try NATSTestCluster.start()
        defer { nats.stop() }
        let pg = try postgresURL()
        let dir = try makeWorkDirectory("js-push")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try write(
            """
            pipelines:
              ingest:
                source:
                  http: { stream: clicks, columns: { user_id: int64, url: string }, required: [user_id] }
                sink:
                  # One record per message (as for consumers that are not Sluice): the stream's count is the records'.
                  jetstream: { url: "\(nats.url)", stream: CLICKS, subject: clicks.in, records_per_message: 1 }
                batch: { max_latency: 100ms }
            """, to: "\(dir)/p.yaml")
        let pipeline = "push_lake_\(UUID().uuidString.prefix(8).lowercased())"
        try write(
            """
            state: "\(pg)"
            pipelines:
              \(pipeline):
                source:
                  jetstream: { url: "\(nats.url)", stream: CLICKS, subject: clicks.in, consumer: lake, columns: { user_id: int64, url: string } }
                sink:
                  parquet: { path: lake, max_file_age: 1s }
                batch: { max_latency: 100ms }
            """, to: "\(dir)/w.yaml")
        let port = try freePort()
        let server = try await ServedProcess.start(in: dir, port: port)
        let workers = try (0..<2).map { i in
            try SluiceProcess.start(["run", "w.yaml", "--no-progress"], in: dir, log: "\(dir)/worker\(i).log")
        }
        defer { for w in workers where w.isRunning { kill(w.processIdentifier, SIGKILL) } }
        var accepted = 0
        for request in 0..<50 {
            let body = (0..<100).map { "{\"user_id\": \(request * 100 + $0), \"url\": \"/p\($0)\"}" }.joined(separator: "\n")
            let r = try curl(postArgs(port, "clicks", data: body, contentType: "application/x-ndjson"))
            #expect(r.status == 202, "\(r.body)")
            if r.status == 202 { accepted += 100 }
        }
        let drained = try await waitUntil(seconds: 120, interval: .milliseconds(300)) {
            guard let s = try queueStatus(pipeline, in: dir) else { return false }
            return s.messages == accepted && s.lag == 0 && s.ackPending == 0
        }
        let status = try queueStatus(pipeline, in: dir)
        #expect(drained, "\(String(describing: status))")
        #expect(server.stop() == 0)
        for w in workers { kill(w.processIdentifier, SIGTERM) }
        for w in workers { await waitForExit(w); #expect(w.terminationStatus == 0) }
        let counts = try python(
            """
            import duckdb
            print(*duckdb.sql("select count(*), count(distinct user_id) from read_parquet('lake/*.parquet')").fetchall()[0])
            """, in: dir)
        #expect(counts == "\(accepted) \(accepted)", "rows, distinct: \(counts)")
    }
}
