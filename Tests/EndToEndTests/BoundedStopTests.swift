import Foundation
import SluiceTesting
import Testing

/// Stopping is bounded: a `sluice run` whose sink waits on a PostgreSQL lock that is never
/// released exits `shutdown_timeout` after SIGTERM, or at once on a second signal; the next run
/// delivers every row exactly once.
@Suite(.offCooperativePool, .serialized, .timeLimit(.minutes(5))) struct BoundedStopTests {
    /// A pipeline writing 100 rows into `schema.t`, which another session holds locked (its
    /// `psql` returned), and `sluice run` started, waiting on that lock.
    func blockedRun(_ name: String, timeout: String) async throws -> (dir: String, schema: String, locker: Process, run: Process) {
        let dir = try makeWorkDirectory(name)
        let schema = try makeSchema(name.replacingOccurrences(of: "-", with: "_"))
        try await psqlAsync("CREATE TABLE \(schema).t (id int PRIMARY KEY, v text)")
        try write((0..<100).map { "{\"id\":\($0),\"v\":\"v\($0)\"}" }.joined(separator: "\n") + "\n", to: "\(dir)/in.ndjson")
        try write(
            """
            shutdown_timeout: \(timeout)
            pipelines:
              blocked:
                source: { file: { path: in.ndjson } }
                sink: { postgres: { url: "\(try postgresURL())", table: \(schema).t, mode: upsert, key: [id] } }
            """, to: "\(dir)/p.yaml")
        // SHARE blocks the sink's writes. ACCESS EXCLUSIVE would too, but it is WAL-logged and so
        // takes a transaction id, and every replication slot other tests create meanwhile waits
        // for that transaction to end (a CDC test's slot was not created within its 60 s).
        let locker = try startPsql("BEGIN; LOCK TABLE \(schema).t IN SHARE MODE; SELECT pg_sleep(600);")
        #expect(
            try await waitUntil(seconds: 30) { try psql("SELECT count(*) FROM pg_locks WHERE relation = '\(schema).t'::regclass AND granted").first == "1" },
            "the locker holds the table")
        let run = try SluiceProcess.start(["run", "p.yaml", "--no-progress"], in: dir, log: "\(dir)/run.log")
        // Waiting on the lock: a lock on the table is requested and not granted.
        let waiting = try await waitUntil(seconds: 60) {
            try psql("SELECT count(*) FROM pg_locks WHERE relation = '\(schema).t'::regclass AND NOT granted").first != "0"
        }
        #expect(waiting, "the run waits on the lock: \((try? String(contentsOfFile: "\(dir)/run.log", encoding: .utf8)) ?? "")")
        return (dir, schema, locker, run)
    }

    /// Releases the lock, runs the pipeline again, and checks every row arrived once.
    func finish(_ dir: String, schema: String, locker: Process) async throws {
        // Ends the locking session on the server (psql then exits by itself), then psql.
        _ = try await psqlAsync("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query LIKE '%pg_sleep(600)%' AND pid <> pg_backend_pid()")
        kill(locker.processIdentifier, SIGKILL)
        await waitForExit(locker)
        let again = try await SluiceProcess.runWithoutBlocking(["run", "p.yaml", "--no-progress"], in: dir)
        #expect(again.status == 0, "\(again.stderr)")
        #expect(try await psqlAsync("SELECT count(*), count(DISTINCT id) FROM \(schema).t") == ["100|100"])
    }

    @Test func aRunStuckOnItsSinkExitsWhenTheShutdownTimeoutRunsOut() async throws {
        let (dir, schema, locker, run) = try await blockedRun("stop-timeout", timeout: "2s")
        defer {
            try? FileManager.default.removeItem(atPath: dir)
            _ = try? psql("DROP SCHEMA \(schema) CASCADE")
        }
        let signalled = ContinuousClock.now
        run.terminate()
        await waitForExit(run)
        let took = ContinuousClock.now - signalled
        let log = (try? String(contentsOfFile: "\(dir)/run.log", encoding: .utf8)) ?? ""
        #expect(run.terminationReason == .exit && run.terminationStatus == 1, "status \(run.terminationStatus): \(log)")
        #expect(log.contains("did not stop within the shutdown timeout"), "\(log)")
        // Bounded by the timeout (2 s), with room for a loaded machine; the lock is held 600 s.
        #expect(took < .seconds(60), "took \(took)")
        try await finish(dir, schema: schema, locker: locker)
    }

    @Test func aSecondSignalExitsAtOnce() async throws {
        let (dir, schema, locker, run) = try await blockedRun("stop-twice", timeout: "10m")
        defer {
            try? FileManager.default.removeItem(atPath: dir)
            _ = try? psql("DROP SCHEMA \(schema) CASCADE")
        }
        run.terminate()
        // A second signal counts from a second after the first (one Ctrl-C that a process
        // manager also forwards is one).
        try await Task.sleep(for: .milliseconds(1500))
        run.interrupt()
        await waitForExit(run)
        let log = (try? String(contentsOfFile: "\(dir)/run.log", encoding: .utf8)) ?? ""
        #expect(run.terminationReason == .exit && run.terminationStatus == 128 + SIGINT, "status \(run.terminationStatus): \(log)")
        #expect(log.contains("a second signal"), "\(log)")
        try await finish(dir, schema: schema, locker: locker)
    }
}
