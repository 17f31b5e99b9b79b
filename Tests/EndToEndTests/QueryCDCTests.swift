import Foundation
import Testing
import SluiceTesting

/// Query-based CDC: an incremental pull by `updated_at` (with a lookback for late commits) into
/// an upsert sink whose `soft_delete` column turns soft-deleted rows into deletes, under kills.
@Suite(.offCooperativePool, .serialized) struct QueryCDCTests {
    @Test func theTargetEqualsTheLiveSourceRowsAcrossKillsAndALateCommit() async throws {
        let url = try postgresURL()
        let s = try makeSchema("qcdc")
        defer { _ = try? psql("DROP SCHEMA \(s) CASCADE") }
        try await psqlAsync(
            """
            CREATE TABLE \(s).q (id int PRIMARY KEY, v text, n numeric(12,2), updated_at timestamptz NOT NULL DEFAULT clock_timestamp(), deleted_at timestamptz);
            INSERT INTO \(s).q (id, v, n) SELECT i, 'v' || i, i * 1.5 FROM generate_series(1, 500) i;
            CREATE VIEW \(s).live AS SELECT * FROM \(s).q WHERE deleted_at IS NULL;
            """)
        let dir = try makeWorkDirectory("pg-qcdc")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try write(
            """
            pipelines:
              current:
                source:
                  postgres: { url: "\(url)", table: \(s).q, mode: incremental, cursor: [updated_at], key: [id], lookback: 10s,
                              batch_rows: 200, poll: { min: 100ms, max: 500ms } }
                sink:
                  postgres: { url: "\(url)", table: \(s).q_current, mode: upsert, key: [id], soft_delete: deleted_at, commit_interval: 300ms }
            """, to: "\(dir)/p.yaml")
        func start() throws -> Process {
            try SluiceProcess.start(["run", "p.yaml", "--no-progress", "--log-level", "warning"], in: dir, log: "\(dir)/sluice.log")
        }
        var sluice = try start()
        defer { if sluice.isRunning { kill(sluice.processIdentifier, SIGKILL) } }
        // A transaction that stamps its update early and commits seconds later (the lookback's case).
        let late = try startPsql("BEGIN; UPDATE \(s).q SET v = 'late', updated_at = clock_timestamp() WHERE id = 1; SELECT pg_sleep(3); COMMIT;")
        var generator = SystemRandomNumberGenerator()
        var next = 1000
        for round in 0..<16 {
            var sql = ""
            for _ in 0..<10 {
                switch Int.random(in: 0..<4, using: &generator) {
                case 0:
                    sql += "INSERT INTO \(s).q (id, v, n) VALUES (\(next), 'new', \(next).25); "
                    next += 1
                case 1:
                    sql +=
                        "UPDATE \(s).q SET n = n + 1, updated_at = clock_timestamp() WHERE id = (SELECT id FROM \(s).q WHERE id > 1 AND deleted_at IS NULL ORDER BY random() LIMIT 1); "
                case 2:
                    sql +=
                        "UPDATE \(s).q SET deleted_at = now(), updated_at = clock_timestamp() WHERE id = (SELECT id FROM \(s).q WHERE id > 1 AND deleted_at IS NULL ORDER BY random() LIMIT 1); "
                default:
                    // Restored: a soft-deleted row comes back.
                    sql +=
                        "UPDATE \(s).q SET deleted_at = NULL, v = v || '+', updated_at = clock_timestamp() WHERE id = (SELECT id FROM \(s).q WHERE deleted_at IS NOT NULL ORDER BY random() LIMIT 1); "
                }
            }
            try await psqlAsync(sql)
            if round % 2 == 1 {
                try await Task.sleep(for: .milliseconds(Int.random(in: 100...600, using: &generator)))
                kill(sluice.processIdentifier, SIGKILL)
                await waitForExit(sluice)
                sluice = try start()
            }
        }
        await waitForExit(late)
        // At least one row stays soft-deleted (the random restores above can undo them all,
        // about one run in ten), so the target must have turned it into a delete.
        try await psqlAsync(
            """
            UPDATE \(s).q SET deleted_at = now(), updated_at = clock_timestamp()
              WHERE id = (SELECT min(id) FROM \(s).q WHERE id > 1 AND deleted_at IS NULL);
            INSERT INTO \(s).q (id, v, n) VALUES (999999, 'last', 0)
            """)
        let columns = ["id", "v", "n", "updated_at"]
        let source = try tableFingerprint(s, "live", columns: columns, orderBy: "id")
        let caughtUp = try await waitUntil(seconds: 90, interval: .milliseconds(250)) {
            (try? tableFingerprint(s, "q_current", columns: columns, orderBy: "id")) == source
        }
        kill(sluice.processIdentifier, SIGTERM)
        await waitForExit(sluice)
        let copy = try tableFingerprint(s, "q_current", columns: columns, orderBy: "id")
        let log = (try? String(contentsOfFile: "\(dir)/sluice.log", encoding: .utf8)) ?? ""
        #expect(caughtUp && source == copy, "live source \(source), target \(copy)\n\(log.suffix(2000))")
        #expect(try psql("SELECT v FROM \(s).q_current WHERE id = 1") == ["late"])
        #expect(try psql("SELECT count(*) FROM \(s).q WHERE deleted_at IS NOT NULL").first.flatMap { Int($0) } ?? 0 > 0, "nothing was soft-deleted")
    }
}
