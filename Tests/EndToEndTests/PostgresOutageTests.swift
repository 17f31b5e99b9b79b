import Foundation
import SluiceTesting
import Testing

/// Chaos: the PostgreSQL server a pipeline reads, writes and (in one case) keeps its state in
/// stops for 30 s in the middle of a pull. The pipeline pauses and retries, `/readyz` says why,
/// and once the server is back it finishes with every row in the target exactly once.
@Suite(.offCooperativePool, .timeLimit(.minutes(10))) struct PostgresOutageTests {
    static let rows = 300_000
    static let outage: Duration = .seconds(30)

    /// The state embedded or on the same server, the sink appending (a row written twice would
    /// show) or upserting by key (the mode that pipeline kind uses: nothing lost, values exact).
    @Test(arguments: [("embedded", "append"), ("postgres", "append"), ("embedded", "upsert")])
    func aThirtySecondOutagePausesThePullWhichThenFinishesExactly(state: String, mode: String) async throws {
        let server = try await PrivatePostgresServer.start()
        defer { server.stop() }
        let url = server.url
        try await offPool {
            try psql(
                """
                CREATE TABLE src (id bigint PRIMARY KEY, v text NOT NULL, amount numeric(12,2) NOT NULL);
                INSERT INTO src SELECT i, md5(i::text), i / 100.0 FROM generate_series(1, \(Self.rows)) i;
                CREATE TABLE dst (id bigint \(mode == "upsert" ? "PRIMARY KEY" : "NOT NULL"), v text NOT NULL, amount numeric(12,2) NOT NULL);
                """, url: url)
        }
        let dir = try makeWorkDirectory("pg-outage-\(state)-\(mode)")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        // Appending (no key), a row written twice would show as a duplicate id. A small buffer
        // keeps the source reading until the end, so the outage breaks its connection.
        try write(
            """
            \(state == "postgres" ? "state: \"\(url)\"\n" : "")pipelines:
              copy:
                source:
                  postgres: { url: "\(url)", table: public.src, batch_rows: 1000 }
                sink:
                  postgres: { url: "\(url)", table: public.dst, mode: \(mode),\(mode == "upsert" ? " key: [id]," : "") commit_interval: 50ms }
                batch: { max_rows: 2000 }
                buffer: { max_batches: 2 }
                retry: { base_delay: 200ms, max_delay: 2s }
            """, to: "\(dir)/p.yaml")
        let port = try freePort()
        let log = "\(dir)/sluice.log"
        // Held in its first commit while the server stops; each commit phase is held 100 ms after.
        let hold = CommitHold(in: dir)
        let run = try SluiceProcess.start(
            ["run", "p.yaml", "--no-progress", "--metrics-port", "\(port)"], in: dir, log: log,
            environment: hold.environment.merging(["SLUICE_TEST_COMMIT_DELAY_MS": "100"]) { $1 })
        defer { if run.isRunning { kill(run.processIdentifier, SIGKILL) } }
        func logText() -> String { (try? String(contentsOfFile: log, encoding: .utf8)) ?? "" }
        func copied() throws -> Int { Int(try psql("SELECT count(*) FROM dst", url: url).first ?? "") ?? 0 }

        try #require(try await hold.reached(), "the run never reached its first commit: \(logText().suffix(2_000))")
        let before = try await offPool { try copied() }
        try #require(before < Self.rows, "the first commit held every row; make the batches smaller")
        try await server.pause()
        let pausedAt = ContinuousClock.now
        hold.release()

        // While the server is down the pipeline waits, and /readyz says so and why.
        let reply = try await waitUntilNotReady(port: port, mentioning: "paused, retrying", seconds: 25, while: run)
        #expect(reply?.isNotReady(mentioning: "paused, retrying") == true, "readyz during the outage: \(reply?.summary ?? "no answer")")
        #expect(reply?.header("Content-Type")?.hasPrefix("application/problem+json") == true)
        try await Task.sleep(until: pausedAt + Self.outage)
        #expect(run.isRunning, "the pipeline stopped during the outage: \(logText().suffix(3_000))")
        try await server.resume()

        let ended = try await waitUntil(seconds: 300) { !run.isRunning }
        try #require(ended, "the pipeline did not finish after the server came back: \(logText().suffix(3_000))")
        #expect(run.terminationStatus == 0, "\(logText().suffix(3_000))")
        let counts = try await offPool { try psql("SELECT count(*), count(DISTINCT id), sum(amount) FROM dst", url: url) }
        let sum = try await offPool { try psql("SELECT sum(amount) FROM src", url: url) }
        #expect(counts == ["\(Self.rows)|\(Self.rows)|\(sum.first ?? "")"], "every row once")
        #expect(
            logText().contains("the source failed; what was committed stays; starting over from the checkpoint"),
            "the source broke off and started over: \(logText().suffix(3_000))")
        print(
            "chaos: PostgreSQL (source, \(mode) sink, \(state == "postgres" ? "state" : "not the state")) stopped 1 time for \(Self.outage); \(Self.rows) rows checked"
        )
    }
}
