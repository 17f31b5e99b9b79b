import Foundation
import SluiceTesting
import Testing

/// Incremental pulls while the source table changes under them.
@Suite(.offCooperativePool, .serialized) struct PostgresIncrementalTests {
    /// A table updated concurrently while the pipeline polls: thousands of rows share each
    /// `updated_at`, and one transaction commits late with an older timestamp (`now()` is its
    /// start time). With a lookback the pull catches the late rows, and the implicit dedupe keeps
    /// the re-read overlap from creating duplicates: the upsert target equals the source, and the
    /// append log holds each row version once.
    @Test func concurrentUpdatesAndALateCommitEndWithTheSinkEqualToTheSource() async throws {
        let url = try postgresURL()
        let s = try makeSchema("incr")
        defer { _ = try? psql("DROP SCHEMA \(s) CASCADE") }
        try psql(
            """
            CREATE TABLE \(s).src (id int PRIMARY KEY, updated_at timestamptz NOT NULL, v int NOT NULL);
            INSERT INTO \(s).src SELECT i, timestamptz '2026-01-01' + (i / 5000) * interval '1 second', 0 FROM generate_series(1, 20000) i;
            """)
        let dir = try makeWorkDirectory("pg-incr")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try write(
            """
            pipelines:
              current:
                source:
                  postgres: { url: "\(url)", table: \(s).src, mode: incremental, cursor: [updated_at], key: [id],
                              lookback: 30s, poll: { min: 100ms, max: 400ms }, batch_rows: 1500 }
                sink:
                  postgres: { url: "\(url)", table: \(s).current, mode: upsert, key: [id], commit_rows: 4000 }
              log:
                source:
                  postgres: { url: "\(url)", table: \(s).src, mode: incremental, cursor: [updated_at], key: [id],
                              lookback: 30s, poll: { min: 100ms, max: 400ms }, batch_rows: 2500 }
                sink:
                  postgres: { url: "\(url)", table: \(s).log, commit_rows: 3000 }
            """, to: "\(dir)/p.yaml")
        let sluice = try SluiceProcess.start(["run", "p.yaml", "--no-progress", "--log-level", "warning"], in: dir, log: "\(dir)/sluice.log")
        defer { if sluice.isRunning { kill(sluice.processIdentifier, SIGKILL) } }
        try await Task.sleep(for: .milliseconds(500))
        // The late transaction: takes its timestamp now, commits after the rounds below.
        let late = Process()
        late.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        late.arguments = [
            "psql", "-X", "-q", url, "-c",
            "BEGIN; UPDATE \(s).src SET updated_at = now(), v = v + 1000 WHERE id <= 300; SELECT pg_sleep(2.5); COMMIT;",
        ]
        late.standardOutput = FileHandle.nullDevice
        try ChildProcesses.run(late)
        for round in 0..<12 {
            // 1,000+ rows share one timestamp per statement; some rounds insert new rows too.
            try psql("UPDATE \(s).src SET updated_at = now(), v = v + 1 WHERE id % 20 = \(round) AND id > 300")
            if round % 4 == 0 {
                try psql("INSERT INTO \(s).src SELECT i, now(), 1 FROM generate_series(\(20001 + round * 100), \(20000 + round * 100 + 100)) i")
            }
            try await Task.sleep(for: .milliseconds(300))
        }
        await waitForExit(late)
        #expect(late.terminationStatus == 0)
        // Wait for the pipelines to catch up, then stop them gracefully.
        let compare =
            "SELECT count(*) FROM ((SELECT id, updated_at, v FROM \(s).src EXCEPT SELECT id, updated_at, v FROM \(s).current) "
            + "UNION ALL (SELECT id, updated_at, v FROM \(s).current EXCEPT SELECT id, updated_at, v FROM \(s).src)) d"
        var differences = "-1"
        for _ in 0..<60 {
            try await Task.sleep(for: .milliseconds(500))
            differences = (try? psql(compare).first) ?? "-1"
            if differences == "0" { break }
        }
        kill(sluice.processIdentifier, SIGTERM)
        await waitForExit(sluice)
        let log = (try? String(contentsOfFile: "\(dir)/sluice.log", encoding: .utf8)) ?? ""
        #expect(sluice.terminationStatus == 0, "\(log)")
        #expect(differences == "0", "the target differs from the source in \(differences) rows")
        #expect(try psql("SELECT count(*) FROM \(s).src WHERE v >= 1000") == ["300"], "the late transaction committed")
        // The append log: every version once (the lookback re-reads, the dedupe drops the repeats)…
        #expect(try psql("SELECT count(*) = count(DISTINCT (id, updated_at)) FROM \(s).log") == ["t"])
        // …and the last version of every row is in it, the late ones included.
        #expect(try psql("SELECT count(*) FROM (SELECT id, updated_at FROM \(s).src EXCEPT SELECT id, updated_at FROM \(s).log) d") == ["0"])
    }
}
