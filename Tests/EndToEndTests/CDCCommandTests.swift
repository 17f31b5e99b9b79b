import Foundation
import Testing
import SluiceTesting

/// `sluice cdc setup|teardown|resnapshot` against the real server.
@Suite(.offCooperativePool, .serialized) struct CDCCommandTests {
    @Test func setupRunTeardownAndResnapshotAfterALostSlot() async throws {
        let url = try postgresURL()
        let s = try makeSchema("cdccmd")
        let slot = "slot_\(s)", publication = "pub_\(s)"
        defer { dropCDCObjects(slots: [slot], publication: publication, schemas: [s]) }
        try await psqlAsync("CREATE TABLE \(s).t (id int PRIMARY KEY, v text); INSERT INTO \(s).t SELECT i, 'v' || i FROM generate_series(1, 300) i")
        let dir = try makeWorkDirectory("pg-cdc-cmd")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try write(
            """
            pipelines:
              changes:
                source:
                  postgres_cdc: { url: "\(url)", slot: \(slot), publication: \(publication), tables: [\(s).t], snapshot_chunk: 100 }
                sink:
                  ndjson: { path: out, max_file_age: 200ms }
            """, to: "\(dir)/p.yaml")

        let setup = try await SluiceProcess.runWithoutBlocking(["cdc", "setup", "changes", "-c", "p.yaml"], in: dir)
        #expect(setup.status == 0, "\(setup.stderr)")
        #expect(setup.stdout.contains("CREATE PUBLICATION") && setup.stdout.contains("pg_create_logical_replication_slot"), "\(setup.stdout)")
        #expect(try psql("SELECT count(*) FROM pg_replication_slots WHERE slot_name = '\(slot)'") == ["1"])

        // The slot exists without a checkpoint: the first run snapshots the rows while streaming.
        // (Creating a slot waits for every transaction open on the shared server; after
        // `resnapshot`, a loaded full run had not snapshotted the rows within 60 s.)
        func runUntil(_ condition: @escaping () throws -> Bool) async throws -> Process {
            let p = try SluiceProcess.start(["run", "p.yaml", "--no-progress", "--log-level", "warning"], in: dir, log: "\(dir)/sluice.log")
            #expect(
                try await waitUntil(seconds: 300, interval: .milliseconds(200)) { try condition() },
                "\((try? String(contentsOfFile: "\(dir)/sluice.log", encoding: .utf8))?.suffix(3_000) ?? "")")
            return p
        }
        func events() throws -> [[String: Any]] {
            try outputLines("\(dir)/out").compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
        }
        var sluice = try await runUntil { try events().filter { $0["op"] as? String == "r" }.count == 300 }
        try await psqlAsync("INSERT INTO \(s).t VALUES (1000, 'streamed')")
        #expect(try await waitUntil(seconds: 30) { try events().contains { $0["op"] as? String == "c" } })
        let busy = try await SluiceProcess.runWithoutBlocking(["cdc", "teardown", "changes", "-c", "p.yaml", "--yes"], in: dir)
        #expect(busy.status != 0 && busy.stderr.contains("in use"), "\(busy.stdout)\(busy.stderr)")
        kill(sluice.processIdentifier, SIGTERM)
        await waitForExit(sluice)

        // The slot disappears under the pipeline: the run stops and says what to do.
        try await psqlAsync("SELECT pg_drop_replication_slot('\(slot)')")
        let refused = try await SluiceProcess.runWithoutBlocking(["run", "p.yaml", "--no-progress"], in: dir)
        #expect(refused.status != 0 && refused.stderr.contains("sluice cdc resnapshot"), "\(refused.stderr)")
        let re = try await SluiceProcess.runWithoutBlocking(["cdc", "resnapshot", "changes", "-c", "p.yaml", "--yes"], in: dir)
        #expect(re.status == 0 && re.stdout.contains("forgot the checkpoint"), "\(re.stdout)\(re.stderr)")
        try FileManager.default.removeItem(atPath: "\(dir)/out")
        sluice = try await runUntil { try events().filter { $0["op"] as? String == "r" }.count == 301 }
        kill(sluice.processIdentifier, SIGTERM)
        await waitForExit(sluice)

        let down = try await SluiceProcess.runWithoutBlocking(["cdc", "teardown", "changes", "-c", "p.yaml", "--yes"], in: dir)
        #expect(
            down.status == 0 && down.stdout.contains("pg_drop_replication_slot") && down.stdout.contains("DROP PUBLICATION"), "\(down.stdout)\(down.stderr)")
        #expect(try psql("SELECT count(*) FROM pg_replication_slots WHERE slot_name = '\(slot)'") == ["0"])
        #expect(try psql("SELECT count(*) FROM pg_publication WHERE pubname = '\(publication)'") == ["0"])
    }
}
