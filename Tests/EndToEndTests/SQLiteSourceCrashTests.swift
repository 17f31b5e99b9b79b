import Foundation
import Testing
import SluiceTesting

/// Guarantees 1 and 2 for database pulls: a SQLite table pulled into NDJSON while `sluice run` is
/// `kill -9`'d at random moments ends with every row exactly once, for a full extract and for
/// an incremental one (whose cursor values are shared by many rows).
@Suite(.offCooperativePool, .serialized) struct SQLiteSourceCrashTests {
    static let rows = 400_000

    func makeDatabase(_ dir: String) throws {
        _ = try python(
            """
            import sqlite3
            c = sqlite3.connect('app.db')
            c.execute('create table orders(id integer primary key, updated_at text not null, amount decimal(12,2), note text)')
            c.executemany('insert into orders values (?,?,?,?)',
                          ((i, '2026-11-%02dT%02d:%02d:00Z' % (1 + i // 144000, (i // 6000) % 24, (i // 100) % 60), '%d.%02d' % (i, i % 100), 'n%d' % i) for i in range(\(Self.rows))))
            c.commit()
            """, in: dir)
    }

    func check(_ dir: String) throws {
        var seen = [Int](repeating: 0, count: Self.rows)
        for line in try outputLines("\(dir)/out") {
            guard let o = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any], let id = o["id"] as? Int,
                id >= 0, id < Self.rows
            else { Issue.record("bad line \(line)"); continue }
            seen[id] += 1
        }
        let missing = seen.filter { $0 == 0 }.count, duplicated = seen.filter { $0 > 1 }.count
        #expect(missing == 0 && duplicated == 0, "\(missing) rows missing, \(duplicated) written twice")
    }

    @Test(arguments: ["full", "incremental"])
    func killNineDuringAPullLosesAndDuplicatesNothing(mode: String) async throws {
        let dir = try makeWorkDirectory("sqlite-\(mode)")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try makeDatabase(dir)
        let cursor = mode == "incremental" ? ", cursor: [updated_at]" : ""
        try write(
            """
            pipelines:
              orders:
                source:
                  sqlite: { path: app.db, table: orders, mode: \(mode)\(cursor), batch_rows: 1000 }
                sink:
                  ndjson: { path: out, max_file_size: 1MB }
            """, to: "\(dir)/p.yaml")
        var finished = false
        let kills = try await killRepeatedly(in: dir, kills: 6, delays: 100...700, maxRuns: 30) {
            finished = true
            return false
        }
        if !finished {
            let final = try await SluiceProcess.runWithoutBlocking(["run", "p.yaml", "--no-progress"], in: dir)
            #expect(final.status == 0, "\(final.stderr)")
        }
        #expect(kills >= 2, "the pull finished before kills could land; make the table larger")
        try check(dir)
        // A full extract pulls the table again on the next run; an incremental one has nothing new.
        let again = try await SluiceProcess.runWithoutBlocking(["run", "p.yaml", "--no-progress", "--log-level", "warning"], in: dir)
        #expect(again.status == 0)
        let lines = try outputLines("\(dir)/out").count
        #expect(lines == (mode == "full" ? 2 * Self.rows : Self.rows))
    }
}

/// The SQLite change-log mode, polled: rows appended while `sluice run` polls arrive once, and
/// are marked processed only after the sink committed them.
@Suite(.offCooperativePool, .serialized) struct SQLiteChangelogTests {
    @Test func polledChangelogDeliversEachChangeOnceAndMarksItProcessed() async throws {
        let dir = try makeWorkDirectory("sqlite-changelog")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        _ = try python(
            """
            import sqlite3
            c = sqlite3.connect('app.db')
            c.execute('create table changes(change_id integer primary key, order_id int not null, op text not null, processed int not null default 0)')
            c.executemany('insert into changes(order_id, op) values (?, ?)', ((i, 'insert') for i in range(500)))
            c.commit()
            """, in: dir)
        try write(
            """
            pipelines:
              changes:
                source:
                  sqlite: { path: app.db, table: changes, mode: changelog, processed_column: processed, batch_rows: 100,
                            poll: { min: 100ms, max: 300ms } }
                sink:
                  ndjson: { path: out, max_file_age: 200ms }
            """, to: "\(dir)/p.yaml")
        let sluice = try SluiceProcess.start(["run", "p.yaml", "--no-progress", "--log-level", "warning"], in: dir, log: "\(dir)/sluice.log")
        defer { if sluice.isRunning { kill(sluice.processIdentifier, SIGKILL) } }
        for round in 0..<5 {
            try await Task.sleep(for: .milliseconds(300))
            _ = try python(
                """
                import sqlite3
                c = sqlite3.connect('app.db', timeout=10)
                c.executemany('insert into changes(order_id, op) values (?, ?)', ((i, 'update') for i in range(\(round * 100), \(round * 100 + 100))))
                c.commit()
                """, in: dir)
            // Never marked before committed: processed rows are all in the published output.
            let processed =
                Int(
                    try python(
                        "import sqlite3; print(sqlite3.connect('app.db', timeout=10).execute('select count(*) from changes where processed = 1').fetchone()[0])",
                        in: dir
                    )
                    .trimmingCharacters(in: .whitespacesAndNewlines)) ?? -1
            #expect(processed <= (try outputLines("\(dir)/out").count))
        }
        // Every change read, committed and marked (a stop commits only what was read).
        let drained = try await waitUntil(seconds: 120, interval: .milliseconds(250)) {
            try python(
                "import sqlite3; print(sqlite3.connect('app.db', timeout=10).execute('select count(*) from changes where processed = 1').fetchone()[0])",
                in: dir
            )
            .trimmingCharacters(in: .whitespacesAndNewlines) == "1000"
        }
        #expect(drained, "the changes were not all processed")
        kill(sluice.processIdentifier, SIGTERM)
        await waitForExit(sluice)
        #expect(sluice.terminationStatus == 0, "\((try? String(contentsOfFile: "\(dir)/sluice.log", encoding: .utf8)) ?? "")")
        expectNothingMissing(log: "\(dir)/sluice.log")
        let ids = try outputLines("\(dir)/out").compactMap {
            (try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any])?["change_id"] as? Int
        }
        #expect(ids.count == 1000 && Set(ids).count == 1000, "\(ids.count) lines, \(Set(ids).count) distinct")
        let unprocessed = try python(
            "import sqlite3; print(sqlite3.connect('app.db').execute('select count(*) from changes where processed = 0').fetchone()[0])", in: dir)
        #expect(unprocessed.trimmingCharacters(in: .whitespacesAndNewlines) == "0")
    }
}
