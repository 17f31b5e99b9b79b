import Foundation
import SluiceTesting
import Testing

/// Commit order in the WAL is not visibility order. A transaction waiting for a synchronous
/// standby has its commit record in the WAL, so logical decoding streams it, while no other
/// session sees it yet. A snapshot chunk read then (after the stream applied the transaction)
/// holds the rows as they were before it; emitted at the high watermark it would undo the
/// transaction in the current-state table. It must be read again instead.
@Suite(.offCooperativePool, .serialized) struct PostgresCDCVisibilityTests {
    @Test func aChunkReadBeforeAStreamedTransactionBecameVisibleIsReadAgain() async throws {
        // A server of its own: it names a synchronous standby that never connects (the shared
        // server must not make anyone wait).
        let server = try await PrivatePostgresServer.start()
        defer { server.stop() }
        let url = server.url
        // Sessions of `sluice` (the pipeline and this test) commit without waiting for the standby.
        try psql("ALTER ROLE sluice SET synchronous_commit = local", url: url)
        try psql("ALTER SYSTEM SET synchronous_standby_names = 'sluice_never_connects'", url: url)
        try psql("SELECT pg_reload_conf()", url: url)
        try psql(
            """
            CREATE SCHEMA v;
            CREATE TABLE v.a (id int PRIMARY KEY, n int);
            INSERT INTO v.a SELECT i, 0 FROM generate_series(1, 1000) i;
            CREATE TABLE v.z (id int PRIMARY KEY);
            CREATE PUBLICATION pub FOR TABLE v.z;
            """, url: url)
        let dir = try makeWorkDirectory("pg-cdc-visibility")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try write(
            """
            pipelines:
              state:
                source:
                  postgres_cdc: { url: "\(url)", slot: vis, publication: pub, snapshot_chunk: 100 }
                sink:
                  postgres: { url: "\(url)", table: "v_cur.{table}", mode: apply, commit_interval: 100ms }
            """, to: "\(dir)/p.yaml")
        let sluice = try SluiceProcess.start(["run", "p.yaml", "--no-progress", "--log-level", "info"], in: dir, log: "\(dir)/sluice.log")
        defer { if sluice.isRunning { kill(sluice.processIdentifier, SIGKILL) } }
        func log() -> String { (try? String(contentsOfFile: "\(dir)/sluice.log", encoding: .utf8)) ?? "" }
        try psql("INSERT INTO v.z VALUES (1)", url: url)
        try #require(try await waitUntil(seconds: 90) { (try? psql("SELECT count(*) FROM v_cur.z", url: url)) == ["1"] }, "not streaming:\n\(log())")

        // Table a joins; its first change comes from a transaction that waits for the standby:
        // streamed (it is in the WAL), yet invisible to the chunk the pipeline reads next.
        try psql("ALTER PUBLICATION pub ADD TABLE v.a", url: url)
        let waiting = Process()
        waiting.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        waiting.arguments = ["psql", "-X", "-q", url, "-c", "SET synchronous_commit = on; DELETE FROM v.a WHERE id = 1; UPDATE v.a SET n = 7 WHERE id = 2"]
        waiting.standardOutput = FileHandle.nullDevice
        waiting.standardError = FileHandle.nullDevice
        try ChildProcesses.run(waiting)
        defer { if waiting.isRunning { kill(waiting.processIdentifier, SIGKILL) } }
        #expect(
            try await waitUntil(seconds: 30) {
                (try? psql("SELECT count(*) FROM pg_stat_activity WHERE wait_event = 'SyncRep'", url: url)) == ["1"]
            }, "the transaction did not wait for the standby")
        // Chunks read while it waits miss it; each is read again.
        let reread = try await waitUntil(seconds: 60) { log().contains("reading a snapshot chunk again") }
        #expect(reread, "no chunk was read again:\n\(log().suffix(3000))")
        // The wait ends (cancelled: committed locally), the transaction becomes visible.
        try psql("SELECT pg_cancel_backend(pid) FROM pg_stat_activity WHERE wait_event = 'SyncRep'", url: url)
        await waitForExit(waiting)

        let snapshotted = try await waitUntil(seconds: 90) {
            log().split(separator: "\n").contains { $0.contains("table snapshotted") && $0.hasSuffix("table=v.a") }
        }
        try #require(snapshotted, "\(log().suffix(3000))")
        try psql("INSERT INTO v.z VALUES (2)", url: url)
        #expect(try await waitUntil(seconds: 90) { (try? psql("SELECT count(*) FROM v_cur.z", url: url)) == ["2"] })
        kill(sluice.processIdentifier, SIGTERM)
        await waitForExit(sluice)
        let render = "SELECT count(*) || ':' || md5(string_agg(id || '=' || n, ',' ORDER BY id)) FROM "
        let source = try psql(render + "v.a", url: url), copy = try psql(render + "v_cur.a", url: url)
        let firstRows = try psql("SELECT id, n FROM v_cur.a WHERE id <= 2 ORDER BY id", url: url)
        #expect(source == copy, "source \(source), current-state table \(copy) (rows 1-2: \(firstRows); the transaction deleted 1 and set n = 7 on 2)")
        #expect(sluice.terminationStatus == 0, "\(log().suffix(3000))")
    }
}
