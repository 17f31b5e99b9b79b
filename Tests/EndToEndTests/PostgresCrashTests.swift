import Foundation
import Testing
import SluiceTesting

/// Guarantees 1 and 2 for PostgreSQL: pulls from and loads into the real server while
/// `sluice run` is `kill -9`'d at random moments (every other run also pauses between the
/// target's commit and the state store's, so kills land in that window too).
@Suite(.offCooperativePool, .serialized) struct PostgresCrashTests {
    static let rows = 300_000

    /// Postgres → Postgres, two pipelines in one process: an upsert by key (the target must equal
    /// the source) and an append (each row exactly once: an upsert alone would hide duplicates).
    @Test func upsertAndAppendUnderTwentyKillsEqualTheSource() async throws {
        let url = try postgresURL()
        let s = try makeSchema("pgpg")
        defer { _ = try? psql("DROP SCHEMA \(s) CASCADE") }
        try psql(
            """
            CREATE TABLE \(s).src (id bigint PRIMARY KEY, updated_at timestamptz NOT NULL, amount numeric(12,2), note text, tags text[]);
            INSERT INTO \(s).src SELECT i, timestamptz '2026-01-01' + (i / 500) * interval '1 second', i * 0.01, 'note ' || i,
                ARRAY['t' || (i % 7)] FROM generate_series(1, \(Self.rows)) i;
            """)
        let dir = try makeWorkDirectory("pg-pg")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try write(
            """
            pipelines:
              ups:
                source:
                  postgres: { url: "\(url)", table: \(s).src, mode: incremental, cursor: [updated_at], batch_rows: 2000 }
                sink:
                  postgres: { url: "\(url)", table: \(s).tgt_ups, mode: upsert, key: [id], commit_rows: 6000 }
              app:
                source:
                  postgres: { url: "\(url)", table: \(s).src, mode: incremental, cursor: [id], batch_rows: 3000 }
                sink:
                  postgres: { url: "\(url)", table: \(s).tgt_app, commit_rows: 9000 }
            """, to: "\(dir)/p.yaml")
        var finished = false
        let kills = try await killRepeatedly(in: dir, kills: 20, delays: 150...1200, maxRuns: 60) {
            finished = true
            return false
        }
        if !finished {
            let final = try await SluiceProcess.runWithoutBlocking(["run", "p.yaml", "--no-progress"], in: dir)
            #expect(final.status == 0, "\(final.stderr)")
        }
        #expect(kills >= 20, "only \(kills) kills landed before the pull finished; make the table larger")
        let columns = "id, updated_at, amount, note, to_jsonb(tags)"
        #expect(
            try psql("SELECT count(*) FROM (SELECT \(columns) FROM \(s).src EXCEPT SELECT id, updated_at, amount, note, tags FROM \(s).tgt_ups) d") == ["0"])
        #expect(
            try psql("SELECT count(*) FROM (SELECT id, updated_at, amount, note, tags FROM \(s).tgt_ups EXCEPT SELECT \(columns) FROM \(s).src) d") == ["0"])
        #expect(try psql("SELECT count(*) FROM \(s).tgt_ups") == ["\(Self.rows)"])
        #expect(try psql("SELECT count(*), count(DISTINCT id) FROM \(s).tgt_app") == ["\(Self.rows)|\(Self.rows)"], "append: each row exactly once")
    }

    /// Change-log mode: rows are marked processed only once the sink committed them, and a
    /// `kill -9` at any moment loses and duplicates nothing.
    @Test func changelogMarksRowsOnlyAfterCommitAndSurvivesKills() async throws {
        let url = try postgresURL()
        let s = try makeSchema("chg")
        defer { _ = try? psql("DROP SCHEMA \(s) CASCADE") }
        let changes = 150_000
        try psql(
            """
            CREATE TABLE \(s).changes (change_id bigserial PRIMARY KEY, order_id int NOT NULL, op text NOT NULL, processed boolean NOT NULL DEFAULT false);
            INSERT INTO \(s).changes (order_id, op) SELECT i % 1000, CASE WHEN i % 3 = 0 THEN 'delete' ELSE 'update' END FROM generate_series(1, \(changes)) i;
            """)
        let dir = try makeWorkDirectory("pg-changelog")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try write(
            """
            pipelines:
              changes:
                source:
                  postgres: { url: "\(url)", table: \(s).changes, mode: changelog, processed_column: processed, batch_rows: 1000 }
                sink:
                  ndjson: { path: out, max_file_size: 256KB }
            """, to: "\(dir)/p.yaml")
        var generator = SystemRandomNumberGenerator()
        var kills = 0
        for run in 0..<40 where kills < 8 {
            let p = try SluiceProcess.start(
                ["run", "p.yaml", "--no-progress", "--log-level", "error"], in: dir, log: "\(dir)/sluice.log",
                environment: run % 2 == 1 ? ["SLUICE_TEST_COMMIT_DELAY_MS": "120"] : [:])
            let timer = KillTimer(p.processIdentifier, afterMilliseconds: Int.random(in: 200...1500, using: &generator))
            await waitForExit(p)
            timer.cancel()
            if p.terminationReason == .uncaughtSignal { kills += 1 }
            // Never marked before committed: every processed row is in the published output.
            let processed = Int(try psql("SELECT count(*) FROM \(s).changes WHERE processed").first ?? "") ?? -1
            let published = Set(try outputLines("\(dir)/out").compactMap(Self.changeID))
            #expect(processed <= published.count, "\(processed) rows marked processed but only \(published.count) published")
            if p.terminationReason != .uncaughtSignal { break }
        }
        let final = try await SluiceProcess.runWithoutBlocking(["run", "p.yaml", "--no-progress"], in: dir)
        #expect(final.status == 0, "\(final.stderr)")
        #expect(kills >= 2)
        expectNothingMissing(log: "\(dir)/sluice.log")
        let ids = try outputLines("\(dir)/out").compactMap(Self.changeID)
        #expect(ids.count == changes && Set(ids).count == changes, "\(ids.count) lines, \(Set(ids).count) distinct of \(changes)")
        #expect(try psql("SELECT count(*) FROM \(s).changes WHERE NOT processed") == ["0"])
        // New changes arrive; only they are read.
        try psql("INSERT INTO \(s).changes (order_id, op) VALUES (1, 'insert'), (2, 'insert')")
        _ = try await SluiceProcess.runWithoutBlocking(["run", "p.yaml", "--no-progress"], in: dir)
        #expect(try outputLines("\(dir)/out").count == changes + 2)
    }

    static func changeID(_ line: Substring) -> Int? {
        (try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])?["change_id"] as? Int
    }
}
