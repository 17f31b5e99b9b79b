import Foundation
import Testing
import SluiceTesting

/// Trigger-based CDC: `sluice cdc install-triggers`, then a changelog pull of the change table
/// into current-state tables (`mode: apply`), under kills and a transaction that commits after
/// later-numbered changes.
@Suite(.offCooperativePool, .serialized) struct TriggerCDCTests {
    @Test func currentStateTablesEqualTheSourcesAcrossKillsAndLateCommits() async throws {
        let url = try postgresURL()
        let s = try makeSchema("trig")
        let target = "\(s)_cur"
        defer { _ = try? psql("DROP SCHEMA \(s) CASCADE; DROP SCHEMA IF EXISTS \(target) CASCADE") }
        try await psqlAsync(
            """
            CREATE TABLE \(s).t1 (id int PRIMARY KEY, n int, note text, amount numeric(12,2), j jsonb, b bytea, at timestamptz, big text);
            CREATE TABLE \(s).t2 (id int PRIMARY KEY, v text, qty numeric);
            CREATE TABLE \(s).t3 (k text PRIMARY KEY, id2 int, payload jsonb, at timestamptz);
            CREATE TABLE \(s).t4 (id int PRIMARY KEY, v text);
            CREATE SCHEMA \(target);
            CREATE TABLE \(target).t1 (LIKE \(s).t1 INCLUDING ALL);
            CREATE TABLE \(target).t2 (LIKE \(s).t2 INCLUDING ALL);
            CREATE TABLE \(target).t3 (LIKE \(s).t3 INCLUDING ALL);
            CREATE TABLE \(target).t4 (LIKE \(s).t4 INCLUDING ALL);
            """)
        let dir = try makeWorkDirectory("pg-trig")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let installed = try await SluiceProcess.runWithoutBlocking(
            ["cdc", "install-triggers", "--database", url, "--tables", "\(s).t1,\(s).t2,\(s).t3,\(s).t4"], in: dir)
        #expect(installed.status == 0, "\(installed.stderr)")
        #expect(installed.stdout.contains("CREATE TRIGGER sluice_capture") && installed.stdout.contains("mode: changelog"))
        try write(
            """
            pipelines:
              state:
                source:
                  postgres: { url: "\(url)", table: \(s).sluice_changes, mode: changelog, change_id: change_id,
                              processed_column: processed, tx_column: tx_id, batch_rows: 500, poll: { min: 100ms, max: 500ms } }
                sink:
                  postgres: { url: "\(url)", table: "\(target).{table}", mode: apply, commit_interval: 300ms }
            """, to: "\(dir)/p.yaml")
        func start() throws -> Process {
            try SluiceProcess.start(["run", "p.yaml", "--no-progress", "--log-level", "warning"], in: dir, log: "\(dir)/sluice.log")
        }
        var sluice = try start()
        defer { if sluice.isRunning { kill(sluice.processIdentifier, SIGKILL) } }
        // A transaction that takes a change id now and commits seconds later, after many
        // later-numbered changes: a reader going by change id alone would skip it.
        let late = try startPsql("BEGIN; INSERT INTO \(s).t4 VALUES (1, 'late'); SELECT pg_sleep(4); COMMIT;")
        var workload = Workload(schema: s)
        var kills = 0
        var generator = SystemRandomNumberGenerator()
        let chunks = 24
        for chunk in 0..<chunks {
            try await psqlAsync(workload.transactions(6, chunk: chunk, of: chunks))
            guard chunk % 2 == 1 else { continue }
            try await Task.sleep(for: .milliseconds(Int.random(in: 100...700, using: &generator)))
            kill(sluice.processIdentifier, SIGKILL)
            await waitForExit(sluice)
            kills += 1
            sluice = try start()
        }
        await waitForExit(late)
        try await psqlAsync("INSERT INTO \(s).t3 VALUES ('zz-last', 0, null, now())")
        let caughtUp = try await waitUntil(seconds: 120, interval: .milliseconds(250)) {
            (try? psql("SELECT count(*) FROM \(s).sluice_changes WHERE NOT processed")) == ["0"]
                && (try? psql("SELECT count(*) FROM \(target).t3 WHERE k = 'zz-last'")) == ["1"]
        }
        kill(sluice.processIdentifier, SIGTERM)
        await waitForExit(sluice)
        let log = (try? String(contentsOfFile: "\(dir)/sluice.log", encoding: .utf8)) ?? ""
        #expect(caughtUp, "the pipeline did not catch up:\n\(log.suffix(3000))")
        #expect(sluice.terminationStatus == 0, "\(log.suffix(3000))")
        #expect(kills == chunks / 2)
        for (table, columns, key) in [
            ("t1", ["id", "n", "note", "amount", "j", "b", "at", "big", "extra"], "id"), ("t2", ["id", "v", "qty"], "id"),
            ("t3", ["k", "id2", "payload", "at"], "k"),
        ] {
            let source = try tableFingerprint(s, table, columns: columns, orderBy: key)
            let copy = try tableFingerprint(target, table, columns: columns, orderBy: key)
            #expect(source == copy, "\(table): source \(source), current-state table \(copy)")
        }
        #expect(try psql("SELECT v FROM \(target).t4 WHERE id = 1") == ["late"])
    }
}

/// Trigger-based CDC on SQLite: the change table feeds a PostgreSQL current-state table.
@Suite(.offCooperativePool, .serialized) struct SQLiteTriggerCDCTests {
    @Test func sqliteChangesReachACurrentStateTableOnceEach() async throws {
        let url = try postgresURL()
        let target = try makeSchema("sqltrig")
        defer { _ = try? psql("DROP SCHEMA \(target) CASCADE") }
        let dir = try makeWorkDirectory("sqlite-trig")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        _ = try python(
            """
            import sqlite3
            c = sqlite3.connect('app.db')
            c.execute('create table items(id integer primary key, v text, n real, data blob)')
            c.commit()
            """, in: dir)
        let installed = try await SluiceProcess.runWithoutBlocking(["cdc", "install-triggers", "--database", "app.db", "--tables", "items"], in: dir)
        #expect(installed.status == 0, "\(installed.stderr)")
        try write(
            """
            pipelines:
              items:
                source:
                  sqlite: { path: app.db, table: sluice_changes, mode: changelog, change_id: change_id, processed_column: processed }
                sink:
                  postgres: { url: "\(url)", table: "\(target).{table}", mode: apply }
            """, to: "\(dir)/p.yaml")
        func change(_ round: Int) throws {
            _ = try python(
                """
                import sqlite3
                c = sqlite3.connect('app.db')
                base = \(round) * 1000
                c.executemany('insert into items values (?,?,?,?)', ((base + i, "v%d 'q'" % i, i * 0.5, bytes([i % 256, 255])) for i in range(200)))
                c.execute('update items set v = v || "+", n = n + 1 where id % 4 = 0 and id >= ?', (base,))
                c.execute('delete from items where id % 7 = 0 and id >= ?', (base,))
                c.execute('update items set id = id + 500 where id = ?', (base + 5,))
                c.commit()
                """, in: dir)
        }
        func compare() throws {
            let source = try python(
                """
                import sqlite3
                c = sqlite3.connect('app.db')
                for r in c.execute('select id, v, n, hex(data) from items order by id'): print('%d|%s|%s|%s' % (r[0], r[1], repr(r[2]), r[3]))
                """, in: dir
            ).split(separator: "\n").map(String.init)
            let copy = try psql("SELECT id || '|' || v || '|' || n || '|' || data FROM \(target).items ORDER BY id")
            #expect(
                source.count > 150 && source == copy,
                "\(source.count) source rows, \(copy.count) copied; first difference: \(zip(source, copy).first { $0 != $1 }.map { "\($0) vs \($1)" } ?? "-")")
        }
        for round in 0..<2 {
            try change(round)
            let r = try await SluiceProcess.runWithoutBlocking(["run", "p.yaml", "--no-progress"], in: dir)
            #expect(r.status == 0, "\(r.stderr)")
            try compare()
        }
        let unprocessed = try python(
            "import sqlite3; print(sqlite3.connect('app.db').execute('select count(*) from sluice_changes where processed = 0').fetchone()[0])", in: dir)
        #expect(unprocessed.trimmingCharacters(in: .whitespacesAndNewlines) == "0")
    }
}
