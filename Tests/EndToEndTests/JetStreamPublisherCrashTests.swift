import Foundation
import Logging
import SluiceNATS
import SluiceTesting
import Testing

/// DESIGN.md §2 for publishing to the queue: a file → JetStream pipeline that packs several
/// records per message is `kill -9`'d at random moments, half of its runs pausing between the
/// publish (acked by JetStream) and the state commit. Each replay commits at other places than
/// the attempt it repeats, so its messages end elsewhere; the stream must still hold every
/// record exactly once.
@Suite(.offCooperativePool, .serialized) struct JetStreamPublisherCrashTests {
    @Test func aPublisherKilledAtRandomLeavesEveryRecordInTheStreamOnce() async throws {
        let count = 1_000_000
        let nats = try NATSTestCluster.start()
        defer { nats.stop() }
        let dir = try makeWorkDirectory("js-pub-crash")
        defer { if ProcessInfo.processInfo.environment["SLUICE_KEEP_TEST_DIRS"] == nil { try? FileManager.default.removeItem(atPath: dir) } }
        let lines = try await offPool { () -> String in
            var lines = ""
            lines.reserveCapacity(count * 40)
            for i in 0..<count { lines += "{\"n\":\(i),\"note\":\"record \(i)\"}\n" }
            return lines
        }
        try write(lines, to: "\(dir)/data/in.ndjson")
        // Commits every 300 ms and message ends at 50 records or at a commit: where an attempt
        // committed decides where its messages end, and no two attempts commit at the same places.
        try write(
            """
            state: .sluice/publisher.db
            pipelines:
              publish:
                source:
                  file: { path: data/in.ndjson }
                sink:
                  jetstream: { url: "\(nats.url)", stream: PUB, subject: pub.in, records_per_message: 50, commit_interval: 300ms }
                batch: { max_rows: 1500 }
            """, to: "\(dir)/p.yaml")
        // The kills are driven by a script of their own: a test process busy with other suites
        // may not get to run a loop of its own in time (its few threads can all be blocked).
        // Each run is killed at a random moment after it stored something; every other run
        // pauses between the commit phases.
        try write(
            """
            set -u
            kills=0; seen=0
            start() {
              if [ $((kills % 2)) -eq 1 ]; then SLUICE_TEST_COMMIT_DELAY_MS=150 "$SLUICE" run p.yaml --no-progress >> publisher.log 2>&1 &
              else "$SLUICE" run p.yaml --no-progress >> publisher.log 2>&1 & fi
              pid=$!
            }
            stored() { "$SLUICE" queue status publish -c p.yaml --json 2>/dev/null | grep -o '"messages":[0-9]*' | cut -d: -f2; }
            # The first run is killed where its messages are in the stream and its commit is
            # not: the next run must meet them (a random kill may never land there).
            SLUICE_TEST_HOLD=commit-prepared=$PWD/release "$SLUICE" run p.yaml --no-progress >> publisher.log 2>&1 &
            pid=$!
            for _ in $(seq 2400); do [ -e release.reached ] && break; sleep 0.05; done
            [ -e release.reached ] && echo held > held.out
            kill -9 $pid; wait $pid 2>/dev/null
            kills=1
            start
            while [ $kills -lt 10 ]; do
              for _ in $(seq 1200); do
                kill -0 $pid 2>/dev/null || break
                n=$(stored); n=${n:-0}
                if [ "$n" -gt "$seen" ]; then seen=$n; break; fi
                sleep 0.05
              done
              sleep "0.$((RANDOM % 9))"
              kill -0 $pid 2>/dev/null || break
              kill -9 $pid; wait $pid 2>/dev/null
              kills=$((kills + 1))
              start
            done
            wait $pid; status=$?
            echo "$kills $status" > killer.out
            """, to: "\(dir)/killer.sh")
        let outcome = try await runKillScript("killer.sh", in: dir, reporting: "killer.out")
        let log = (try? String(contentsOfFile: "\(dir)/publisher.log", encoding: .utf8)) ?? ""
        #expect(outcome.count == 2 && outcome[1] == 0, "the last run failed: \(log.suffix(3000))")
        #expect(FileManager.default.fileExists(atPath: "\(dir)/held.out"), "the first run never reached the hold between the commit phases")
        let kills = outcome.first ?? 0
        #expect(kills >= 4, "the publisher finished after \(kills) kills: too fast for this test to mean anything")
        // The test can fail: replays sent messages the stream already held.
        #expect(log.contains("JetStream dropped repeated publishes"), "no replay met a stored message")

        let connection = try await NATSConnection.connect(try NATSOptions(urls: [nats.url]), logger: Logger(label: "test"))
        let js = JetStream(connection)
        // Read the stream back message by message with the plain JetStream API.
        let info = try #require(try await retryingRequest { try await js.streamInfo("PUB") })
        var seen = [UInt8](repeating: 0, count: count)
        var records = 0, messages = 0, grouped = 0
        for seq in info.firstSequence...info.lastSequence {
            let reply = try await retryingRequest { try await js.request("STREAM.MSG.GET.PUB", ["seq": seq]) }
            let message = try #require(reply["message"] as? [String: Any])
            let data = try #require(Data(base64Encoded: message["data"] as? String ?? ""))
            if let hdrs = (message["hdrs"] as? String).flatMap({ Data(base64Encoded: $0) }),
                String(decoding: hdrs, as: UTF8.self).contains("Sluice-Records:")
            {
                grouped += 1
            }
            messages += 1
            for line in String(decoding: data, as: UTF8.self).split(separator: "\n") {
                let object = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
                let n = try #require(object["n"] as? Int)
                seen[n] &+= 1
                records += 1
            }
        }
        await connection.close()
        let missing = seen.indices.filter { seen[$0] == 0 }
        let twice = seen.indices.filter { seen[$0] > 1 }
        #expect(missing.isEmpty, "\(missing.count) records missing, e.g. \(missing.prefix(5))")
        #expect(twice.isEmpty, "\(twice.count) records stored twice, e.g. \(twice.prefix(5))")
        #expect(records == count, "\(records) records in \(messages) messages for \(count)")
        #expect(grouped > messages / 2, "\(grouped) of \(messages) messages carry several records")
    }
}
