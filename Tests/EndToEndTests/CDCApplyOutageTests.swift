import Foundation
import SluiceTesting
import Synchronization
import Testing

/// Chaos: the PostgreSQL server of a CDC → current-state pipeline (the replication slot it
/// streams from and the tables it applies to, on one server of the test's own) goes down for
/// 30 s (`pg_ctl stop`, `-m fast` and `-m immediate`: a crash, with crash recovery when it comes back) while a
/// writer keeps inserting, updating (the key too) and deleting. The pipeline waits instead of
/// stopping, `/readyz` says why, and once the server is back it streams again from what it had
/// committed (the slot may send changes again that were already applied): the current-state
/// table equals the source table, row for row.
@Suite(.offCooperativePool, .timeLimit(.minutes(8))) struct CDCApplyOutageTests {
    static let outage: Duration = .seconds(30)
    static let seedRows = 2_000
    static let columns = ["id", "n", "note", "amount", "at"]

    /// Both ways a server goes down: a clean shutdown (`fast`, ``PrivatePostgresServer/pause()``)
    /// and a crash (`immediate`). The clean one once hung: the reader kept the broken replication
    /// connection open until a new stream replaced it, so the walsender waited for its
    /// confirmations and the shutdown lasted until `wal_sender_timeout` (60 s), after `pg_ctl`
    /// had given up. It now closes that connection as soon as the stream breaks.
    @Test(arguments: ["fast", "immediate"])
    func aThirtySecondOutageOfSourceAndSinkEndsWithTheCurrentStateExact(stop mode: String) async throws {
        // A server of its own (wal_level=logical, as scripts/pg-test-server.sh starts them all):
        // stopping the shared one would break every other test.
        let server = try await PrivatePostgresServer.start()
        defer { server.stop() }
        let url = server.url
        _ = try await offPool {
            try psql(
                """
                CREATE SCHEMA app;
                CREATE TABLE app.items (id int PRIMARY KEY, n int NOT NULL, note text, amount numeric(12,2), at timestamptz);
                INSERT INTO app.items SELECT i, 0, 'seed ' || i, i / 100.0, '2026-01-01'::timestamptz + i * interval '1 minute'
                    FROM generate_series(1, \(Self.seedRows)) i;
                CREATE PUBLICATION chaos_pub FOR TABLE app.items;
                """, url: url)
        }
        let dir = try makeWorkDirectory("cdc-apply-outage")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        // The state is embedded (SQLite, on the normal disk): the outage hits the source and
        // the sink, not the state store.
        try write(
            """
            pipelines:
              cdc:
                source:
                  postgres_cdc: { url: "\(url)", slot: chaos_slot, publication: chaos_pub }
                sink:
                  postgres: { url: "\(url)", table: "cur.{table}", mode: apply, commit_interval: 200ms }
                retry: { base_delay: 200ms, max_delay: 2s }
            """, to: "\(dir)/p.yaml")
        let port = try freePort()
        let log = "\(dir)/sluice.log"
        let run = try SluiceProcess.start(["run", "p.yaml", "--no-progress", "--metrics-port", "\(port)"], in: dir, log: log)
        defer { if run.isRunning { kill(run.processIdentifier, SIGKILL) } }
        func logText() -> String { (try? String(contentsOfFile: log, encoding: .utf8)) ?? "" }
        /// The number a `SELECT count(*)` answers; 0 while it cannot (the table is not there yet, the server is down).
        func countOf(_ sql: String) -> Int { (try? psql(sql, url: url))?.first.flatMap { Int($0) } ?? 0 }

        // Changes committed before the slot is ready belong to its snapshot, not to its stream:
        // the writer starts after that, and after the snapshot reached the current-state table.
        let slotReady = try await waitUntil(seconds: 90) {
            try psql(
                "SELECT count(*) FROM pg_replication_slots WHERE slot_name = 'chaos_slot' AND confirmed_flush_lsn IS NOT NULL",
                url: url) == ["1"]
        }
        try #require(slotReady, "the pipeline did not create its slot: \(logText().suffix(3_000))")
        let snapshotted = try await waitUntil(seconds: 120) { countOf("SELECT count(*) FROM cur.items") >= Self.seedRows }
        try #require(snapshotted, "the snapshot did not reach the current-state table: \(logText().suffix(3_000))")

        let writer = ChangeWriter(url: url)
        writer.start()
        defer { writer.stop() }
        // Mid-run: the writer's changes are streaming into the current-state table.
        let streaming = try await waitUntil(seconds: 120) {
            writer.rounds >= 30 && countOf("SELECT count(*) FROM cur.items WHERE id >= \(ChangeWriter.firstID)") > 0
        }
        try #require(streaming, "the writer's changes did not stream: \(logText().suffix(3_000))")

        if mode == "fast" { try await server.pause() } else { try await server.crash() }
        let pausedAt = ContinuousClock.now
        // The server comes back on its port: held meanwhile, so that no other test's server is
        // given it while nobody listens there.
        var hold = PortHold(URLComponents(string: url)?.port)
        defer { hold.release() }
        let refusedBefore = writer.failures

        // While the server is down the pipeline waits, and /readyz says so and why (the sink
        // cannot be reached; a commit being retried says "paused, retrying" too).
        let reply = try await waitUntilNotReady(port: port, mentioning: "pipeline 'cdc'", seconds: 25, while: run)
        #expect(
            reply?.isNotReady(mentioning: "cannot reach its sink") == true || reply?.isNotReady(mentioning: "paused, retrying") == true,
            "readyz during the outage: \(reply?.summary ?? "no answer")")
        #expect(reply?.header("Content-Type")?.hasPrefix("application/problem+json") == true)
        try await Task.sleep(until: pausedAt + Self.outage)
        #expect(run.isRunning, "the pipeline stopped during the outage: \(logText().suffix(3_000))")
        #expect(writer.failures > refusedBefore, "the writer's changes were not refused during the outage")
        hold.release()
        try await server.resume()

        // The writer goes on after the outage (its refused round first), then stops.
        let roundsAtResume = writer.rounds
        let wroteAfter = try await waitUntil(seconds: 120) { writer.rounds >= roundsAtResume + 30 }
        #expect(wroteAfter, "the writer could not write after the outage")
        writer.stop()
        let writerDone = try await waitUntil(seconds: 60) { writer.isFinished }
        try #require(writerDone, "the writer did not stop")
        let ready = try await waitUntil(seconds: 120, interval: .milliseconds(500)) {
            (try? curl(["http://127.0.0.1:\(port)/readyz"]))?.status == 200
        }
        #expect(ready, "readyz after the outage: \((try? curl(["http://127.0.0.1:\(port)/readyz"]))?.summary ?? "no answer")")

        // The last change: once it is in the current-state table, so is everything before it.
        _ = try await offPool { try psql("INSERT INTO app.items VALUES (\(ChangeWriter.lastID), 0, 'last', 0, now())", url: url) }
        let caughtUp = try await waitUntil(seconds: 180, interval: .milliseconds(250)) {
            countOf("SELECT count(*) FROM cur.items WHERE id = \(ChangeWriter.lastID)") == 1
        }
        try #require(caughtUp, "the pipeline did not catch up after the outage: \(logText().suffix(3_000))")
        let source = try await offPool { try fingerprint("app.items", columns: Self.columns, orderBy: "id", url: url) }
        let copy = try await offPool { try fingerprint("cur.items", columns: Self.columns, orderBy: "id", url: url) }
        #expect(source == copy, "source \(source), current-state table \(copy)")

        // The process never exited: it runs until it is told to stop, and then stops cleanly.
        #expect(run.isRunning, "the pipeline exited: \(logText().suffix(3_000))")
        kill(run.processIdentifier, SIGTERM)
        await waitForExit(run)
        #expect(run.terminationStatus == 0, "\(logText().suffix(3_000))")
        #expect(
            logText().contains("the replication stream broke; streaming again")
                || logText().contains("the source failed; what was committed stays; starting over from the checkpoint"),
            "the outage did not break the stream: \(logText().suffix(3_000))")
        expectNothingMissing(log: log)
        print(
            "chaos: PostgreSQL (CDC source and apply sink) stopped (\(mode)) 1 time for \(Self.outage); \(writer.rounds) transactions, "
                + "\(writer.failures) refused and retried; current-state table \(copy.first ?? "?") checked")
    }
}

/// Rounds of inserts, updates (one of them of the key) and deletes on `app.items`, one
/// transaction each, from a thread of its own until ``stop()``. A round the server refuses (it
/// is down) is tried again until it goes through. Whether a refused round had committed (its
/// reply lost) does not matter: the check compares the copy with the source as it ends up.
final class ChangeWriter: Sendable {
    /// The writer's inserts start here; ``lastID`` is the test's last row.
    static let firstID = 100_000
    static let lastID = 1_999_999_999

    private struct State {
        var rounds = 0
        var failures = 0
        var stopping = false
        var finished = false
    }

    private let state = Mutex(State())
    let url: String

    init(url: String) { self.url = url }

    /// Rounds committed so far.
    var rounds: Int { state.withLock { $0.rounds } }
    /// Attempts the server refused.
    var failures: Int { state.withLock { $0.failures } }
    var isFinished: Bool { state.withLock { $0.finished } }

    func start() {
        Thread { [self] in
            var round = 0
            while !state.withLock({ $0.stopping }) {
                do {
                    try psql(ChangeWriter.sql(round: round), url: url)
                    state.withLock { $0.rounds += 1 }
                    round += 1
                    Thread.sleep(forTimeInterval: 0.05)
                } catch {
                    state.withLock { $0.failures += 1 }
                    Thread.sleep(forTimeInterval: 0.5)
                }
            }
            state.withLock { $0.finished = true }
        }.start()
    }

    func stop() { state.withLock { $0.stopping = true } }

    /// Round `r`: 20 new rows, updates of about 1/97 of the rows, a key change of a seed row
    /// (to a negative id), and up to 3 deletes.
    static func sql(round r: Int) -> String {
        let first = firstID + r * 20
        return """
            BEGIN;
            INSERT INTO app.items SELECT i, 0, 'r\(r) ' || i, i / 100.0, now() FROM generate_series(\(first), \(first + 19)) i
                ON CONFLICT (id) DO NOTHING;
            UPDATE app.items SET n = n + 1, amount = amount + 1, note = CASE WHEN n % 3 = 2 THEN NULL ELSE 'u\(r)' END, at = now()
                WHERE id % 97 = \(r % 97);
            UPDATE app.items SET id = -id, note = 'moved' WHERE id = (SELECT min(id) FROM app.items WHERE id > 0 AND id < \(firstID));
            DELETE FROM app.items WHERE id IN (SELECT id FROM app.items WHERE id % 89 = \(r % 89) AND id <> \(lastID) ORDER BY id LIMIT 3);
            COMMIT;
            """
    }
}

/// ``tableFingerprint(_:_:columns:orderBy:)`` of `table` (`schema.name`) on the server at `url`.
private func fingerprint(_ table: String, columns: [String], orderBy key: String, url: String) throws -> [String] {
    let cols = columns.map { "coalesce(\($0)::text, '∅')" }.joined(separator: ", ")
    return try psql(
        "SELECT count(*) || ':' || coalesce(md5(string_agg(concat_ws('|', \(cols)), E'\\n' ORDER BY \(key)::text)), '') FROM \(table)", url: url)
}

/// A loopback port kept bound (not listening) while its server is down, so that no other
/// test's server is given it in the meantime (the server comes back on the same port).
/// Best effort: when the port cannot be bound, nothing is held.
struct PortHold {
    private(set) var descriptor: Int32?

    init(_ port: Int?) {
        guard let port else { return }
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return }
        // The server's connections closed by the stop may linger in TIME_WAIT on this port.
        var one: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = UInt16(port).bigEndian
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        let bound = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0 }
        }
        if bound { descriptor = fd } else { close(fd) }
    }

    /// Lets the port go (for the server to bind it again). Idempotent.
    mutating func release() {
        if let descriptor { close(descriptor) }
        descriptor = nil
    }
}

extension PrivatePostgresServer {
    /// An outage by crash: `pg_ctl stop -m immediate` (as a `kill -9` of the server or a power
    /// cut: no shutdown checkpoint, crash recovery at the next start). Its data stays for
    /// ``resume()``.
    func crash() async throws {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/bin/bash")
        // Sourced with a URL set, the script starts nothing; it sets PG_TEST_BIN.
        p.arguments = [
            "-c",
            """
            SLUICE_TEST_PG_URL=private; source "$0"; PG_TEST_DIR="$1"; as=(); [ "$(id -u)" -eq 0 ] && as=(runuser -u postgres --)
            cd "$PG_TEST_DIR" && "${as[@]}" "$PG_TEST_BIN/pg_ctl" -D "$PG_TEST_DIR/data" -m immediate -w stop >/dev/null
            """,
            Self.script, directory,
        ]
        p.standardOutput = FileHandle.nullDevice
        try ChildProcesses.run(p)
        await waitForExit(p)
        struct Failed: Error, CustomStringConvertible { var description: String }
        guard p.terminationStatus == 0 else { throw Failed(description: "could not crash the private server (status \(p.terminationStatus))") }
    }
}
