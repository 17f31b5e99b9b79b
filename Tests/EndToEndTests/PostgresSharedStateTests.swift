import Foundation
import Testing
import SluiceTesting

/// Several workers sharing the PostgreSQL state store.
@Suite(.offCooperativePool, .serialized) struct PostgresSharedStateTests {
    /// Two `sluice run` processes with the same scheduled pull and one shared state store: each
    /// scheduled run is claimed by one of them, runs never overlap, and each continues from the
    /// other's committed checkpoint, so every row arrives once across both outputs.
    @Test func twoWorkersNeverRunTheSameScheduledRunTwice() async throws {
        let url = try postgresURL()
        let s = try makeSchema("shared")
        defer { _ = try? psql("DROP SCHEMA \(s) CASCADE") }
        try psql("CREATE TABLE \(s).events (id bigserial PRIMARY KEY, at timestamptz NOT NULL DEFAULT clock_timestamp(), n int NOT NULL)")
        let pipeline = "events_\(s)"
        let config = """
            state: "\(url)"
            pipelines:
              \(pipeline):
                source:
                  postgres: { url: "\(url)", table: \(s).events, mode: incremental, cursor: [id], schedule: "every 1s", batch_rows: 50 }
                sink:
                  ndjson: { path: out }
            """
        let dirs = try (0..<2).map { try makeWorkDirectory("shared-\($0)") }
        defer { for d in dirs { try? FileManager.default.removeItem(atPath: d) } }
        var workers: [Process] = []
        for d in dirs {
            try write(config, to: "\(d)/p.yaml")
            workers.append(try SluiceProcess.start(["run", "p.yaml", "--no-progress", "--log-level", "info"], in: d, log: "\(d)/sluice.log"))
        }
        defer { for w in workers where w.isRunning { kill(w.processIdentifier, SIGKILL) } }
        for i in 0..<40 {
            try psql("INSERT INTO \(s).events (n) SELECT \(i) FROM generate_series(1, 25)")
            try await Task.sleep(for: .milliseconds(150))
        }
        // A stop commits what was read, not what was still to be read: wait until a scheduled
        // pass has committed the cursor past the last row (id 1000).
        let pulled = try await waitUntil(seconds: 120, interval: .milliseconds(250)) {
            try psql("SELECT count(*) FROM sluice.checkpoints WHERE pipeline = '\(pipeline)' AND value ~ '(^|[^0-9])1000([^0-9]|$)'") != ["0"]
        }
        #expect(
            pulled, "no pass committed the last row: \((try? psql("SELECT partition, value FROM sluice.checkpoints WHERE pipeline = '\(pipeline)'")) ?? [])")
        for w in workers { kill(w.processIdentifier, SIGTERM) }
        for w in workers { await waitForExit(w) }
        for (w, d) in zip(workers, dirs) {
            #expect(w.terminationStatus == 0, "\((try? String(contentsOfFile: "\(d)/sluice.log", encoding: .utf8)) ?? "")")
        }
        var seen: [Int: Int] = [:]
        for d in dirs {
            for line in try outputLines("\(d)/out") {
                if let id = (try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])?["id"] as? Int { seen[id, default: 0] += 1 }
            }
        }
        #expect(seen.values.allSatisfy { $0 == 1 }, "\(seen.filter { $0.value > 1 }.count) rows were pulled twice")
        #expect(seen.count == 1000, "\(seen.count) of 1000 rows arrived")
        let slots = try psql("SELECT count(*), count(DISTINCT slot) FROM sluice.schedule_claims WHERE pipeline = '\(pipeline)'")
        #expect(slots.first.map { $0.split(separator: "|").count == 2 && $0.split(separator: "|")[0] == $0.split(separator: "|")[1] } == true)
    }
}
