import Foundation
import Testing
import SluiceTesting

/// `sluice backfill` under `kill -9`.
@Suite(.offCooperativePool, .serialized) struct PostgresBackfillTests {
    /// A date range re-extracted into a day-partitioned Parquet lake with three parallel readers,
    /// killed at random moments and resumed: every row of the range lands once, in its day's
    /// partition, and the live pipeline's checkpoint is untouched.
    @Test func aKilledAndResumedParallelBackfillWritesEachRowOnce() async throws {
        let url = try postgresURL()
        let s = try makeSchema("backfill")
        defer { _ = try? psql("DROP SCHEMA \(s) CASCADE") }
        // 350,000 rows, one a second from 2026-03-01: the range below holds 259,200 of them.
        try psql(
            """
            CREATE TABLE \(s).orders (id bigint PRIMARY KEY, updated_at timestamptz NOT NULL, amount numeric(12,2), note text);
            INSERT INTO \(s).orders SELECT i, timestamptz '2026-03-01 00:00:00+00' + i * interval '1 second', i * 0.01, 'n' || i
            FROM generate_series(0, 349999) i;
            """)
        let dir = try makeWorkDirectory("pg-backfill")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try write(
            """
            pipelines:
              orders:
                source:
                  postgres: { url: "\(url)", table: \(s).orders, mode: incremental, cursor: [updated_at], batch_rows: 2000 }
                sink:
                  parquet: { path: lake, partition_by: "day(updated_at)", target_file_size: 256KB }
            """, to: "\(dir)/p.yaml")
        let arguments = [
            "backfill", "orders", "--from", "2026-03-01 12:00:00+00", "--to", "2026-03-04 12:00:00+00", "--parallel", "3",
            "-c", "p.yaml", "--no-progress", "--log-level", "error",
        ]
        var finished = false
        let kills = try await killRepeatedly(in: dir, kills: 5, delays: 1300...3000, maxRuns: 30, arguments: arguments) {
            finished = true
            return false
        }
        if !finished {
            let final = try await SluiceProcess.runWithoutBlocking(arguments, in: dir)
            #expect(final.status == 0, "\(final.stderr)")
        }
        // Kills land after the first commits (the first comes about 1.5 s in), so runs resume mid-range.
        #expect(kills >= 3, "only \(kills) kills landed before the backfill finished")
        let check = try python(
            """
            import duckdb
            r = duckdb.sql("select count(*), count(distinct id), min(id), max(id), count(distinct updated_at_day) from read_parquet('lake/**/*.parquet', hive_partitioning=true)").fetchall()[0]
            bad = duckdb.sql("select count(*) from read_parquet('lake/**/*.parquet', hive_partitioning=true) where strftime(updated_at, '%Y-%m-%d') <> updated_at_day::varchar").fetchall()[0][0]
            print(*r, bad)
            """, in: dir)
        #expect(
            check.trimmingCharacters(in: .whitespacesAndNewlines) == "259200 259200 43200 302399 4 0", "count, distinct, min, max, days, misplaced: \(check)")
        // A finished backfill is not repeated; the live pipeline never moved.
        let again = try await SluiceProcess.runWithoutBlocking(arguments.dropLast(2) + ["--log-level", "notice"], in: dir)
        #expect(again.status == 0 && again.stderr.contains("already finished"))
        let state = try await SluiceProcess.runWithoutBlocking(["state", "show", "orders", "-c", "p.yaml"], in: dir)
        #expect(!state.stdout.contains("updated_at") && !state.stdout.contains("after"), "the live pipeline has no checkpoint: \(state.stdout)")
    }
}
