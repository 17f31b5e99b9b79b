import Foundation
import Logging
import SluiceCore
import SluiceNATS
import SluiceTesting
import Testing

/// Log-based CDC into JetStream, packed many changes to a message, `kill -9`'d during its
/// initial snapshot and while changes stream: after a kill the rest of the snapshot is read
/// again (with watermarks, the exported snapshot being gone) and changes since the last commit
/// come again, in other messages than the first time. The stream must hold each row's snapshot
/// event once, and each change once.
@Suite(.offCooperativePool, .serialized) struct CDCJetStreamSnapshotCrashTests {
    @Test func killsDuringTheInitialSnapshotLeaveEachRowInTheStreamOnce() async throws {
        let rows = 60_000
        let s = try makeSchema("cdcjs")
        let slot = "slot_\(s)", publication = "pub_\(s)"
        defer { dropCDCObjects(slots: [slot], publication: publication, schemas: [s]) }
        try await psqlAsync(
            """
            CREATE TABLE \(s).t (id int PRIMARY KEY, v text);
            INSERT INTO \(s).t SELECT i, 'row ' || i FROM generate_series(1, \(rows)) i;
            CREATE PUBLICATION \(publication) FOR TABLE \(s).t;
            """)
        let nats = try NATSTestCluster.start()
        defer { nats.stop() }
        let dir = try makeWorkDirectory("cdc-js-snapshot")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try write(
            """
            pipelines:
              capture:
                source:
                  postgres_cdc: { url: "\(try postgresURL())", slot: \(slot), publication: \(publication), snapshot_chunk: 500 }
                sink:
                  jetstream: { url: "\(nats.url)", stream: CDC, subject: "cdc.{table}", commit_interval: 300ms }
                batch: { max_latency: 100ms }
            """, to: "\(dir)/p.yaml")
        // The kills come from a script of their own (a busy test process may not run a loop in
        // time): each run is killed at a random moment after the stream grew, every other run
        // pausing between the commit phases (published and acked, not committed). The script
        // kills its last run too: a run left behind would keep it from ending for this process.
        try write(
            """
            set -u
            kills=0; seen=0
            stored() { "$SLUICE" queue status capture -c p.yaml --json 2>/dev/null | grep -o '"messages":[0-9]*' | cut -d: -f2; }
            start() {
              if [ $((kills % 2)) -eq 1 ]; then SLUICE_TEST_COMMIT_DELAY_MS=200 "$SLUICE" run p.yaml --no-progress >> capture.log 2>&1 &
              else "$SLUICE" run p.yaml --no-progress >> capture.log 2>&1 & fi
              pid=$!
            }
            start
            while [ $kills -lt 8 ]; do
              for _ in $(seq 1200); do
                kill -0 $pid 2>/dev/null || break
                n=$(stored); n=${n:-0}
                if [ "$n" -gt "$seen" ]; then seen=$n; break; fi
                sleep 0.05
              done
              [ "$seen" -ge \(rows) ] && break
              sleep "0.$((RANDOM % 9))"
              kill -0 $pid 2>/dev/null || break
              kill -9 $pid; wait $pid 2>/dev/null
              kills=$((kills + 1))
              start
            done
            kill -9 $pid 2>/dev/null; wait $pid 2>/dev/null
            echo "$kills $seen" > killer.out
            """, to: "\(dir)/killer.sh")
        let outcome = try await runKillScript("killer.sh", in: dir, reporting: "killer.out")
        func log() -> String { (try? String(contentsOfFile: "\(dir)/capture.log", encoding: .utf8)) ?? "" }
        try #require(outcome.count == 2, "the kill script did not finish: \(log().suffix(3_000))")
        #expect(outcome[0] >= 4, "only \(outcome[0]) kills landed during the snapshot (\(outcome[1]) messages stored)")

        // The last run finishes the snapshot and streams: a change after it arrives once too.
        let last = try SluiceProcess.start(["run", "p.yaml", "--no-progress"], in: dir, log: "\(dir)/last.log")
        defer { if last.isRunning { kill(last.processIdentifier, SIGKILL) } }
        func lastLog() -> String { (try? String(contentsOfFile: "\(dir)/last.log", encoding: .utf8)) ?? "" }
        let streaming = try await waitUntil(seconds: 120) { lastLog().contains("streaming changes") || !last.isRunning }
        try #require(streaming && last.isRunning, "the last run did not reach the stream: \(lastLog().suffix(3_000))")
        try await psqlAsync("INSERT INTO \(s).t VALUES (-1, 'after the snapshot')")

        let connection = try await NATSConnection.connect(try NATSOptions(urls: [nats.url]), logger: Logger(label: "test"))
        let js = JetStream(connection)
        // Read the stream through a pull consumer of the test's own (nothing acked: it is read
        // once, within the ack wait).
        var config = ConsumerConfig(durable: "check")
        config.ackWait = .seconds(600)
        _ = try await retryingRequest { try await js.ensureConsumer(stream: "CDC", config) }
        let consumer = try JetStreamPullConsumer(connection: connection, stream: "CDC", consumer: "check", batch: 1_000)
        var snapshot: [Int: Int] = [:], created: [Int: Int] = [:], other: [String] = []
        // The rest of the snapshot is read in watermark chunks while streaming, after the change
        // above: read on while the stream grows (a loaded run took more than 180 s for 29
        // chunks), and give up after 120 s without a new message.
        var quietSince = ContinuousClock.now
        while created[-1] == nil || snapshot.count < rows, ContinuousClock.now < quietSince + .seconds(120) {
            let messages = try await consumer.fetch(max: 1_000)
            if !messages.isEmpty { quietSince = ContinuousClock.now }
            for message in messages {
                for line in String(decoding: message.payload, as: UTF8.self).split(separator: "\n") {
                    let event = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
                    let id = (event["after"] as? [String: Any])?["id"] as? Int ?? 0
                    switch event["op"] as? String {
                    case "r": snapshot[id, default: 0] += 1
                    case "c": created[id, default: 0] += 1
                    default: other.append(String(line.prefix(200)))
                    }
                }
            }
        }
        await connection.close()
        #expect(created[-1] != nil, "the change after the snapshot never reached the stream: \(lastLog().suffix(3_000))")
        #expect(other.isEmpty, "unexpected events: \(other.prefix(3))")
        kill(last.processIdentifier, SIGTERM)
        await waitForExit(last)
        #expect(last.terminationStatus == 0, "\(lastLog().suffix(3_000))")
        let missing = (1...rows).filter { snapshot[$0] == nil }
        let twice = snapshot.filter { $0.value > 1 }.map(\.key).sorted()
        #expect(missing.count == 0, "\(missing.count) rows without a snapshot event, e.g. \(missing.prefix(5))")
        #expect(twice.count == 0, "\(twice.count) rows snapshotted twice in the stream, e.g. \(twice.prefix(5))")
        #expect(snapshot.count == rows && created == [-1: 1], "\(snapshot.count) rows snapshotted, changes \(created)")
    }

    @Test func killsWhileChangesStreamLeaveEachChangeInTheStreamOnce() async throws {
        let transactions = 150, perTransaction = 200, rows = transactions * perTransaction
        let s = try makeSchema("cdcjsc")
        let slot = "slot_\(s)", publication = "pub_\(s)"
        defer { dropCDCObjects(slots: [slot], publication: publication, schemas: [s]) }
        try await psqlAsync("CREATE TABLE \(s).t (id int PRIMARY KEY, v text); CREATE PUBLICATION \(publication) FOR TABLE \(s).t;")
        let nats = try NATSTestCluster.start()
        defer { nats.stop() }
        let dir = try makeWorkDirectory("cdc-js-changes")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try write(
            """
            pipelines:
              capture:
                source:
                  postgres_cdc: { url: "\(try postgresURL())", slot: \(slot), publication: \(publication), snapshot: never }
                sink:
                  jetstream: { url: "\(nats.url)", stream: CDC, subject: "cdc.{table}.{partition}", partitions: 3, commit_interval: 300ms, records_per_message: 50 }
                batch: { max_latency: 100ms }
            """, to: "\(dir)/p.yaml")
        // Partitioned by key: a message packs changes of one partition, whose rows interleave.
        // Kills while the writer below commits transactions: every third run is held once its
        // sink has published and the stream acknowledged, before the state store commits
        // (`SLUICE_TEST_HOLD`), and killed there, so its replay surely meets changes the stream
        // holds; the others at random moments, every other one pausing between commit phases.
        try write(
            """
            set -u
            kills=0
            start() {
              if [ $((kills % 3)) -eq 2 ]; then SLUICE_TEST_HOLD="\(PipelineRunner.holdCommitPrepared)=hold$kills" "$SLUICE" run p.yaml --no-progress >> capture.log 2>&1 &
              elif [ $((kills % 2)) -eq 1 ]; then SLUICE_TEST_COMMIT_DELAY_MS=300 "$SLUICE" run p.yaml --no-progress >> capture.log 2>&1 &
              else "$SLUICE" run p.yaml --no-progress >> capture.log 2>&1 & fi
              pid=$!
            }
            start
            while [ ! -f writer.done ] && [ $kills -lt 12 ]; do
              if [ $((kills % 3)) -eq 2 ]; then
                for _ in $(seq 600); do [ -f "hold$kills.reached" ] && break; kill -0 $pid 2>/dev/null || break; sleep 0.1; done
              else
                sleep "$((RANDOM % 2)).$((RANDOM % 10))"
              fi
              kill -0 $pid 2>/dev/null || break
              kill -9 $pid; wait $pid 2>/dev/null
              kills=$((kills + 1))
              start
            done
            kill -9 $pid 2>/dev/null; wait $pid 2>/dev/null
            echo "$kills 0" > killer.out
            """, to: "\(dir)/killer.sh")
        func log() -> String { (try? String(contentsOfFile: "\(dir)/capture.log", encoding: .utf8)) ?? "" }
        async let killed = runKillScript("killer.sh", in: dir, reporting: "killer.out")
        let slotReady = try await waitForReadySlots([slot])
        // One psql for all the transactions (a psql each took seconds on a loaded run), a
        // transaction every 100 ms.
        if slotReady {
            try await psqlAsync(
                """
                DO $$ BEGIN FOR t IN 0..\(transactions - 1) LOOP
                    INSERT INTO \(s).t SELECT i, 'row ' || i FROM generate_series(t * \(perTransaction) + 1, (t + 1) * \(perTransaction)) i;
                    COMMIT;
                    PERFORM pg_sleep(0.1);
                END LOOP; END $$
                """)
        }
        try write("", to: "\(dir)/writer.done")
        let outcome = try await killed
        try #require(slotReady, "the slot was not created: \(log().suffix(3_000))")
        try #require(outcome.count == 2, "the kill script did not finish: \(log().suffix(3_000))")
        #expect(outcome[0] >= 5, "only \(outcome[0]) kills landed while the writer ran")

        let last = try SluiceProcess.start(["run", "p.yaml", "--no-progress"], in: dir, log: "\(dir)/last.log")
        defer { if last.isRunning { kill(last.processIdentifier, SIGKILL) } }
        func lastLog() -> String { (try? String(contentsOfFile: "\(dir)/last.log", encoding: .utf8)) ?? "" }
        let connection = try await NATSConnection.connect(try NATSOptions(urls: [nats.url]), logger: Logger(label: "test"))
        let js = JetStream(connection)
        var config = ConsumerConfig(durable: "check")
        config.ackWait = .seconds(600)
        _ = try await retryingRequest { try await js.ensureConsumer(stream: "CDC", config) }
        let consumer = try JetStreamPullConsumer(connection: connection, stream: "CDC", consumer: "check", batch: 1_000)
        var created: [Int: Int] = [:], other: [String] = [], packed = 0
        // Read until every change is in and a fetch comes back empty (a copy would be stored
        // with the rest), giving up after 120 s without a new message.
        var quietSince = ContinuousClock.now
        while ContinuousClock.now < quietSince + .seconds(120) {
            let messages = try await consumer.fetch(max: 1_000)
            if messages.isEmpty && created.count >= rows { break }
            if !messages.isEmpty { quietSince = ContinuousClock.now }
            for message in messages {
                let lines = String(decoding: message.payload, as: UTF8.self).split(separator: "\n")
                if lines.count > 1 { packed += 1 }
                for line in lines {
                    let event = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
                    if event["op"] as? String == "c", let id = (event["after"] as? [String: Any])?["id"] as? Int {
                        created[id, default: 0] += 1
                    } else {
                        other.append(String(line.prefix(200)))
                    }
                }
            }
        }
        await connection.close()
        kill(last.processIdentifier, SIGTERM)
        await waitForExit(last)
        #expect(last.terminationStatus == 0, "\(lastLog().suffix(3_000))")
        #expect(other.isEmpty, "unexpected events: \(other.prefix(3))")
        #expect(packed > 0, "no message packed several changes")
        let missing = (1...rows).filter { created[$0] == nil }
        let twice = created.filter { $0.value > 1 }.map(\.key).sorted()
        #expect(missing.count == 0, "\(missing.count) changes missing from the stream, e.g. \(missing.prefix(5))")
        #expect(twice.count == 0, "\(twice.count) changes twice in the stream, e.g. \(twice.prefix(5))")
        #expect(created.count == rows, "\(created.count) of \(rows) changes")
        #expect(log().contains("were not published again") || lastLog().contains("were not published again"), "no replay skipped a change the stream held")
    }
}
