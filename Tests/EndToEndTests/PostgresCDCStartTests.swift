import Foundation
import Testing
import SluiceTesting

/// A CDC pipeline's start survives a connection that breaks at each of its steps: creating the
/// slot, importing the exported snapshot, reading it, opening the first stream. Each test holds
/// `sluice` at one step (a test hook, `SLUICE_TEST_HOLD`), terminates the backend there, waits
/// until it is gone and only then lets `sluice` go on: the break lands at that step whatever the
/// machine's load. The trail must then hold every row and every change exactly once.
@Suite(.offCooperativePool) struct PostgresCDCStartTests {
    /// Which server process a test terminates.
    enum Backend {
        /// The walsender of the pipeline's replication connection.
        case walsender
        /// The connection holding the imported snapshot (a client backend in a transaction).
        case snapshotReader

        func condition(application: String) -> String {
            switch self {
            case .walsender: "backend_type = 'walsender' AND application_name = '\(application)'"
            case .snapshotReader: "backend_type = 'client backend' AND application_name = '\(application)' AND state = 'idle in transaction'"
            }
        }
    }

    static let rows = 2_000

    @Test func aBreakBeforeTheSlotIsCreatedIsRetriedByTheRunner() async throws {
        try await breakStart(
            at: "postgres_cdc.create_slot", terminating: .walsender,
            expecting: ["the source could not start; retrying", "reading the snapshot exported with the slot"])
    }

    @Test func aBreakBeforeTheExportedSnapshotIsImportedFallsBackToWatermarks() async throws {
        try await breakStart(
            at: "postgres_cdc.import_snapshot", terminating: .walsender,
            expecting: ["could not be imported; reading the tables while streaming", "SQLSTATE 22023", "table snapshotted"])
    }

    @Test func aReplicationBreakWhileTheExportedSnapshotIsReadIsReplacedAtTheHandOver() async throws {
        try await breakStart(
            at: "postgres_cdc.exported_chunk", terminating: .walsender,
            expecting: ["streaming again", "snapshot read; streaming changes"])
    }

    @Test func aBrokenSnapshotReaderFallsBackToWatermarksForTheRest() async throws {
        try await breakStart(
            at: "postgres_cdc.exported_chunk", terminating: .snapshotReader,
            expecting: ["the connection reading the exported snapshot broke", "table snapshotted"])
    }

    @Test func aBreakBeforeTheStreamStartsAfterTheSnapshotIsReplaced() async throws {
        try await breakStart(
            at: "postgres_cdc.start_replication", terminating: .walsender,
            expecting: ["streaming again", "snapshot read; streaming changes"])
    }

    @Test func aBreakBeforeTheFirstStreamOfANewSlotWithoutSnapshotIsRetriedByTheRunner() async throws {
        try await breakStart(
            at: "postgres_cdc.start_replication", terminating: .walsender, snapshot: false,
            expecting: ["the source could not start; retrying", "streaming changes"])
    }

    /// Starts a CDC pipeline over a table of ``rows`` rows, holds it at `point`, terminates
    /// `backend`, releases it, then writes 100 inserts, 10 updates and a last row. The log must
    /// show `expecting` in that order, the pipeline must still run, and the trail must be exact:
    /// every row's snapshot event once (`r`, with `snapshot`), every change once, and the trail
    /// replayed in order equal to the table.
    func breakStart(at point: String, terminating backend: Backend, snapshot: Bool = true, expecting phrases: [String]) async throws {
        let s = try makeSchema("cdcstart")
        let slot = "slot_\(s)", publication = "pub_\(s)", application = "sluice_\(s)"
        defer { dropCDCObjects(slots: [slot], publication: publication, schemas: [s]) }
        try await psqlAsync(
            """
            CREATE TABLE \(s).t (id int PRIMARY KEY, v text);
            INSERT INTO \(s).t SELECT i, 'old' FROM generate_series(1, \(Self.rows)) i;
            CREATE PUBLICATION \(publication) FOR TABLE \(s).t;
            """)
        let base = try postgresURL()
        let url = base + (base.contains("?") ? "&" : "?") + "application_name=\(application)"
        let dir = try makeWorkDirectory("pg-cdc-start")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try write(
            """
            pipelines:
              changes:
                source:
                  postgres_cdc: { url: "\(url)", slot: \(slot), publication: \(publication), snapshot: \(snapshot ? "initial" : "never"), snapshot_chunk: 100 }
                sink:
                  ndjson: { path: out, max_file_age: 200ms }
                retry: { base_delay: 200ms }
            """, to: "\(dir)/p.yaml")
        let release = "\(dir)/release"
        let sluice = try SluiceProcess.start(
            ["run", "p.yaml", "--no-progress", "--log-level", "info"], in: dir, log: "\(dir)/sluice.log",
            environment: ["SLUICE_TEST_HOLD": "\(point)=\(release)"])
        defer { if sluice.isRunning { kill(sluice.processIdentifier, SIGKILL) } }
        func log() -> String { (try? String(contentsOfFile: "\(dir)/sluice.log", encoding: .utf8)) ?? "" }

        let held = try await waitUntil(seconds: 120) { FileManager.default.fileExists(atPath: release + ".reached") }
        try #require(held, "sluice never reached \(point): \(log().suffix(2_000))")
        let pids = try await psqlAsync("SELECT pid FROM pg_stat_activity WHERE \(backend.condition(application: application))")
        try #require(pids.count == 1, "expected one backend to terminate at \(point), found \(pids)")
        try await psqlAsync("SELECT pg_terminate_backend(\(pids[0]))")
        let gone = try await waitUntil(seconds: 60) { try psql("SELECT count(*) FROM pg_stat_activity WHERE pid = \(pids[0])") == ["0"] }
        try #require(gone, "backend \(pids[0]) did not end")
        FileManager.default.createFile(atPath: release, contents: nil)

        // Changes once the slot is ready: before that they belong to its snapshot.
        try #require(try await waitForReadySlots([slot]), "the slot was not created: \(log().suffix(2_000))")
        try await psqlAsync("INSERT INTO \(s).t SELECT i, 'new' FROM generate_series(100001, 100100) i; UPDATE \(s).t SET v = 'changed' WHERE id <= 10")
        try await psqlAsync("INSERT INTO \(s).t VALUES (-1, 'last')")
        var events: [[String: Any]] = []
        let arrived = try await waitUntil(seconds: 300, interval: .milliseconds(250)) {
            events = try outputLines("\(dir)/out").compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
            guard sluice.isRunning else { return true }
            let last = events.contains { $0["op"] as? String == "c" && ($0["after"] as? [String: Any])?["id"] as? Int == -1 }
            // A snapshot read with watermarks runs alongside the stream: the last change can
            // arrive before the snapshot's last chunk, so wait for every row's `r` event too.
            guard last, snapshot else { return last }
            let read = Set(events.filter { $0["op"] as? String == "r" }.compactMap { ($0["after"] as? [String: Any])?["id"] as? Int })
            return read.isSuperset(of: 1...Self.rows)
        }
        #expect(arrived && sluice.isRunning, "the pipeline stopped or fell behind: \(log().suffix(3_000))")
        kill(sluice.processIdentifier, SIGTERM)
        await waitForExit(sluice)
        let text = log()
        #expect(sluice.terminationStatus == 0, "\(text.suffix(3_000))")
        var from = text.startIndex
        for phrase in phrases {
            guard let found = text.range(of: phrase, range: from..<text.endIndex) else {
                Issue.record("the log lacks '\(phrase)' (after the phrases before it): \(text.suffix(3_000))")
                break
            }
            from = found.upperBound
        }

        func ids(_ op: String) -> [Int] {
            events.filter { $0["op"] as? String == op }.compactMap { (($0["after"] ?? $0["before"]) as? [String: Any])?["id"] as? Int }
        }
        let inserted = [-1] + Array(100_001...100_100)
        #expect(ids("c").sorted() == inserted, "\(ids("c").count) inserts")
        #expect(ids("u").sorted() == Array(1...10), "\(ids("u").count) updates")
        #expect(ids("d").isEmpty && ids("t").isEmpty)
        let snapshotRows = ids("r")
        #expect(Set(snapshotRows).count == snapshotRows.count, "a row was snapshotted twice")
        if snapshot {
            // Read with watermarks while the changes streamed, an inserted row may also be read
            // as a snapshot row; every row that was there is read once.
            #expect(Set(snapshotRows).isSuperset(of: 1...Self.rows), "\(snapshotRows.count) snapshot rows")
            #expect(Set(snapshotRows).subtracting(1...Self.rows).isSubset(of: inserted))
        } else {
            #expect(snapshotRows.isEmpty)
        }
        // The trail, applied in order, is the table (with `snapshot`; without, only the changes).
        var state: [Int: String] = [:]
        for event in events {
            guard let after = event["after"] as? [String: Any], let id = after["id"] as? Int else { continue }
            state[id] = after["v"] as? String
        }
        let table = try await psqlAsync("SELECT id || '=' || v FROM \(s).t ORDER BY id")
        let expected =
            snapshot
            ? table
            : table.filter { row in
                let id = Int(row.prefix { $0 != "=" })!
                return id < 0 || id > 100_000 || id <= 10
            }
        let replayed = state.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }
        let differences = Set(replayed).symmetricDifference(expected)
        #expect(differences.isEmpty, "the trail replayed differs from the table in \(differences.count) rows, e.g. \(differences.sorted().prefix(5))")
    }
}
