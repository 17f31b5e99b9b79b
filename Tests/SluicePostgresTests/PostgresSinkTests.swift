import Foundation
import Logging
import SluiceCore
@testable import SluicePostgres
import Testing

/// The PostgreSQL sink against the real test server: modes, evolution, refused rows, recovery.
@Suite struct PostgresSinkTests {
    /// A pipeline from an NDJSON file to a table of `db`.
    func pipeline(_ db: TestDatabase, _ name: String, lines: [String], sink: String, schema: String = "") throws -> String {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("pgsink-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        try (lines.joined(separator: "\n") + "\n").write(toFile: "\(dir)/in.ndjson", atomically: true, encoding: .utf8)
        return """
            pipelines:
              \(name):
                source:
                  file: { path: "\(dir)/in.ndjson", format: ndjson }
                sink:
                  postgres: { url: "\(db.url)", \(sink) }
            \(schema)
            """
    }

    @Test func appendUpsertAndReplace() async throws {
        let db = try await TestDatabase.make("modes")
        defer { Task { await db.drop() } }
        let state = try temporaryStateStore()
        let s = db.schema
        let rows = [#"{"id": 1, "v": "a", "amount": 1.50}"#, #"{"id": 2, "v": "b", "amount": 2.25}"#, #"{"id": 1, "v": "c", "amount": 3.00}"#]
        _ = try await db.run(try pipeline(db, "app", lines: rows, sink: "table: \(s).app"), state: state)
        #expect(try await db.rows("SELECT id, v FROM app ORDER BY id, v") == [["1", "a"], ["1", "c"], ["2", "b"]])
        _ = try await db.run(try pipeline(db, "ups", lines: rows, sink: "table: \(s).ups, mode: upsert, key: [id]"), state: state)
        #expect(try await db.rows("SELECT id, v FROM ups ORDER BY id") == [["1", "c"], ["2", "b"]], "the last version of a key wins")
        _ = try await db.run(
            try pipeline(db, "ups2", lines: [#"{"id": 2, "v": "z", "amount": 9}"#], sink: "table: \(s).ups, mode: upsert, key: [id]"), state: state)
        #expect(try await db.rows("SELECT id, v FROM ups ORDER BY id") == [["1", "c"], ["2", "z"]])
        // replace: readers see the old table until the new extract is complete, then the new one.
        try await db.execute("CREATE TABLE rep (id bigint PRIMARY KEY, v text); INSERT INTO rep VALUES (99, 'old')")
        _ = try await db.run(try pipeline(db, "rep", lines: Array(rows.prefix(2)), sink: "table: \(s).rep, mode: replace"), state: state)
        #expect(try await db.rows("SELECT id, v FROM rep ORDER BY id") == [["1", "a"], ["2", "b"]])
        #expect(try await db.rows("SELECT count(*) FROM pg_tables WHERE schemaname = '\(s)' AND tablename LIKE 'rep__sluice%'") == [["0"]])
        #expect(try await db.rows("SELECT count(*) FROM pg_indexes WHERE schemaname = '\(s)' AND tablename = 'rep'") == [["1"]], "the primary key carried over")
    }

    @Test func refusedRowsGoToTheDeadLetterQueueAndTheRestIsLoaded() async throws {
        let db = try await TestDatabase.make("refused")
        defer { Task { await db.drop() } }
        let state = try temporaryStateStore()
        try await db.execute("CREATE TABLE t (id bigint PRIMARY KEY, qty smallint CHECK (qty >= 0))")
        // 1,000 rows, two refused (found by halving the batch, not row by row).
        let lines = (1...1000).map { i in
            i == 2 ? #"{"id": 2, "qty": -1}"# : i == 777 ? #"{"id": 777, "qty": 70000}"# : "{\"id\": \(i), \"qty\": \(i % 100)}"
        }
        let totals = try await db.run(try pipeline(db, "p", lines: lines, sink: "table: \(db.schema).t"), state: state)
        #expect(try await db.rows("SELECT count(*), sum(id) FROM t") == [["998", "\(500_500 - 2 - 777)"]])
        #expect(totals["p"]?.deadLettered == 2)
        let letters = try await state.deadLetters(pipeline: "p", limit: 10)
        #expect(letters.count == 2 && letters.allSatisfy { $0.letter.stage == "sink" })
        #expect(letters.contains { $0.letter.message.contains("check constraint") })
        #expect(letters.contains { $0.letter.message.contains("out of range") })
    }

    /// A table whose columns have Sluice's own types takes a batch by one binary COPY (no stage,
    /// no `INSERT … SELECT`); the values land as the stage path lands them; a batch the table
    /// refuses is rolled back to a savepoint and loaded through the stage, which finds the row.
    @Test func appendCopiesStraightIntoATableOfSluiceTypesAndFallsBackOnARefusedRow() async throws {
        let db = try await TestDatabase.make("straight")
        defer { Task { await db.drop() } }
        let state = try temporaryStateStore()
        let s = db.schema
        // Which statement inserted (a statement trigger fires for COPY and INSERT alike).
        try await db.execute(
            """
            CREATE TABLE calls (q text);
            CREATE FUNCTION note_call() RETURNS trigger LANGUAGE plpgsql AS $$
              BEGIN INSERT INTO \(s).calls VALUES (split_part(ltrim(current_query()), ' ', 1)); RETURN NULL; END $$;
            CREATE TABLE t (id bigint NOT NULL, ok boolean, n double precision, d numeric(20,4), s text, day date,
                            at timestamp with time zone, j jsonb, CHECK (id <> 13));
            CREATE TRIGGER t_calls AFTER INSERT ON t FOR EACH STATEMENT EXECUTE FUNCTION note_call();
            CREATE TABLE u (LIKE t INCLUDING CONSTRAINTS); ALTER TABLE u ALTER COLUMN ok TYPE text;
            CREATE TRIGGER u_calls AFTER INSERT ON u FOR EACH STATEMENT EXECUTE FUNCTION note_call();
            """)
        let lines = [
            #"{"id": 1, "ok": true, "n": 0.1, "d": 1234567890123456.1234, "s": "é\"x", "day": "2026-12-06", "at": "2026-12-06T10:00:00.123456Z", "j": {"a": [1, 2.5, null]}}"#,
            #"{"id": 2, "ok": false, "n": -1e300, "d": -0.0001, "s": "", "day": "1999-01-01", "at": "1970-01-01T00:00:00Z", "j": []}"#,
            #"{"id": 3, "ok": null, "n": null, "d": 0, "s": null, "day": null, "at": null, "j": null}"#,
            #"{"id": 4, "d": 9999999999999999.9999, "j": "text"}"#,
        ]
        let columns = "id, n, d, s, day, at, j"
        _ = try await db.run(try pipeline(db, "straight", lines: lines, sink: "table: \(s).t"), state: state)
        #expect(try await db.rows("SELECT q FROM calls") == [["COPY"]], "one COPY, no INSERT … SELECT")
        // The same rows through the stage (one column of another type) land identically.
        _ = try await db.run(try pipeline(db, "staged", lines: lines, sink: "table: \(s).u"), state: state)
        #expect(try await db.rows("SELECT q FROM calls") == [["COPY"], ["INSERT"]])
        let straight = try await db.rows("SELECT \(columns) FROM t ORDER BY id")
        let staged = try await db.rows("SELECT \(columns) FROM u ORDER BY id")
        #expect(straight == staged)
        // And as written (not only as the shared encoder wrote both).
        #expect(
            straight == [
                ["1", "0.1", "1234567890123456.1234", "é\"x", "2026-12-06", "2026-12-06 10:00:00.123456+00", #"{"a": [1, 2.5, null]}"#],
                ["2", "-1e+300", "-0.0001", "", "1999-01-01", "1970-01-01 00:00:00+00", "[]"],
                ["3", "∅", "0.0000", "∅", "∅", "∅", "∅"],
                ["4", "∅", "9999999999999999.9999", "∅", "∅", "∅", #""text""#],
            ], "\(straight)")
        #expect(try await db.rows("SELECT ok FROM t ORDER BY id") == [["t"], ["f"], ["∅"], ["∅"]])

        // A batch of many pieces (3,000 rows of 1 KB): every row once, a row with a NUL byte
        // (PostgreSQL text cannot hold one) dead-lettered, the rest copied.
        try await db.execute("TRUNCATE calls")
        let pad = String(repeating: "p", count: 1000)
        let big = (100..<3100).map { $0 == 2000 ? "{\"id\": \($0), \"s\": \"nul\\u0000\"}" : "{\"id\": \($0), \"s\": \"\(pad)\($0)\"}" }
        let bigTotals = try await db.run(try pipeline(db, "big", lines: big, sink: "table: \(s).t"), state: state)
        #expect(bigTotals["big"]?.deadLettered == 1)
        let length: Int = (100..<3100).filter { $0 != 2000 }.reduce(0) { $0 + 1000 + String($1).count }
        #expect(try await db.rows("SELECT count(*), count(DISTINCT id), sum(length(s)) FROM t WHERE id >= 100") == [["2999", "2999", "\(length)"]])
        #expect(try await db.rows("SELECT DISTINCT q FROM calls") == [["COPY"]])

        // A refused row: the COPY is rolled back, the stage finds the row, the rest is loaded.
        try await db.execute("TRUNCATE calls")
        let more = (10...20).map { "{\"id\": \($0)}" }
        let totals = try await db.run(try pipeline(db, "refused", lines: more, sink: "table: \(s).t"), state: state)
        #expect(totals["refused"]?.deadLettered == 1)
        #expect(try await db.rows("SELECT count(*) FROM t WHERE id BETWEEN 10 AND 20") == [["10"]])
        #expect(
            try await db.rows("SELECT DISTINCT q FROM calls") == [["INSERT"]],
            "the COPY's trigger row went with its savepoint; the stage's statements found the row")

        // A table under row security (COPY FROM is refused there for roles the policies bind)
        // takes the stage, whatever its column types.
        try await db.execute("TRUNCATE calls; ALTER TABLE t ENABLE ROW LEVEL SECURITY")
        _ = try await db.run(try pipeline(db, "secured", lines: ["{\"id\": 50}"], sink: "table: \(s).t"), state: state)
        #expect(try await db.rows("SELECT q FROM calls") == [["INSERT"]])
        #expect(try await db.rows("SELECT count(*) FROM t WHERE id = 50") == [["1"]])
    }

    /// A column's type changed by someone else between two commits of one writer: the next
    /// transaction reads the columns again (under the lock an INSERT takes) and casts through
    /// the stage, instead of copying int8 bytes into a column that now reads them otherwise.
    @Test func aColumnRetypedBetweenCommitsIsCastNotCopiedAsBytes() async throws {
        let db = try await TestDatabase.make("retyped")
        defer { Task { await db.drop() } }
        let state = try temporaryStateStore()
        let options = try JSONDecoder().decode(
            PostgresSinkOptions.self, from: JSONSerialization.data(withJSONObject: ["url": db.url, "table": "\(db.schema).t"]))
        let writer = try await PostgresSink(options: options).makeWriter(context: SinkContext(pipeline: "p", state: state, logger: Logger(label: "t")))
        func batch(_ values: [Int64]) -> RecordBatch {
            var id = ColumnBuilder(type: .int64), n = ColumnBuilder(type: .int64)
            for v in values {
                id.append(v)
                n.append(v * 10)
            }
            return RecordBatch(schema: Schema([Field("id", .int64, nullable: false), Field("n", .int64)]), columns: [id.finish(), n.finish()])
        }
        func commit(_ position: String) async throws {
            var c = StateCommit(pipeline: "p")
            c.checkpoint = ["f": position]
            try await writer.prepareCommit(&c)
            try await state.commit(c)
            try await writer.finishCommit()
        }
        _ = try await writer.write(batch([1, 2]))
        try await commit("1")
        try await db.execute("ALTER TABLE t ALTER COLUMN n TYPE double precision; ALTER TABLE t ALTER COLUMN id TYPE numeric(10,0)")
        _ = try await writer.write(batch([3, 4]))
        try await commit("2")
        await writer.close()
        #expect(try await db.rows("SELECT id, n FROM t ORDER BY id") == [["1", "10"], ["2", "20"], ["3", "30"], ["4", "40"]])
    }

    /// Change events whose `after` is not text (events from elsewhere): apply reads their
    /// columns through the server, which refuses them with an error, and the process lives on
    /// (the client's reader of row images takes text columns only).
    @Test func applyRefusesRowImagesThatAreNotJSONWithAnError() async throws {
        let db = try await TestDatabase.make("imagetype")
        defer { Task { await db.drop() } }
        let state = try temporaryStateStore()
        let lines = [#"{"op": "c", "table": "public.t", "key": null, "before": null, "after": 5}"#]
        // Before the guard this trapped (`withBytes` on an int64 column) and took the process down.
        let outcome = try? await db.run(
            try pipeline(db, "odd", lines: lines, sink: "table: \(db.schema).cur, mode: apply, key: [id]"), state: state)
        #expect(outcome == nil, "a row image that is a number is refused, not applied")
    }

    /// Updates marked `source.partial` (their `after` lacks columns the source did not send):
    /// applied to rows the table holds, keeping the columns left out, but not made into rows it
    /// does not hold, unless another change of the key in the batch is a whole row.
    @Test func applyMakesNoRowFromAnUpdateWithoutItsWholeRow() async throws {
        let db = try await TestDatabase.make("partial")
        defer { Task { await db.drop() } }
        let state = try temporaryStateStore()
        try await db.execute("CREATE TABLE cur (id bigint PRIMARY KEY, n bigint, m text)")
        func change(_ op: String, _ after: String, partial: Bool) -> String {
            #"{"op": "\#(op)", "table": "app.t", "key": null, "before": null, "after": \#(after), "source": {"db":"app"\#(partial ? ",\"partial\":true" : "")}}"#
        }
        _ = try await db.run(
            try pipeline(
                db, "partial",
                lines: [
                    change("c", #"{"id": 1, "n": 1, "m": "a"}"#, partial: false),
                    // A whole row earlier in the batch: the merged image is whole.
                    change("u", #"{"id": 1, "n": 2}"#, partial: true),
                    // Not held, no whole image: not inserted.
                    change("u", #"{"id": 2, "n": 5}"#, partial: true),
                    // A whole update makes the row.
                    change("u", #"{"id": 3, "n": 3, "m": "c"}"#, partial: false),
                    change("u", #"{"id": 4, "n": 4}"#, partial: true),
                    change("u", #"{"id": 4, "n": 40, "m": "d"}"#, partial: false),
                ], sink: "table: \(db.schema).cur, mode: apply, key: [id]"), state: state)
        #expect(try await db.rows("SELECT id, n, m FROM cur ORDER BY id") == [["1", "2", "a"], ["3", "3", "c"], ["4", "40", "d"]])
        // A later batch: a partial update of a held row keeps the columns it leaves out.
        _ = try await db.run(
            try pipeline(
                db, "partial2", lines: [change("u", #"{"id": 3, "m": "z"}"#, partial: true), change("u", #"{"id": 2, "m": "y"}"#, partial: true)],
                sink: "table: \(db.schema).cur, mode: apply, key: [id]"), state: state)
        #expect(try await db.rows("SELECT id, n, m FROM cur ORDER BY id") == [["1", "2", "a"], ["3", "3", "z"], ["4", "40", "d"]])
        // A partial update that moves a row to a new key cannot make the moved row: refused,
        // and the table is left as it was. (`"partial": true` with a space: read as JSON.)
        let moved = #"{"op": "u", "table": "app.t", "key": null, "before": {"id": 3}, "after": {"id": 30, "n": 3}, "source": {"partial": true}}"#
        let outcome = try? await db.run(
            try pipeline(db, "partial3", lines: [moved], sink: "table: \(db.schema).cur, mode: apply, key: [id]"), state: state)
        #expect(outcome == nil, "a key move without the whole row is refused")
        #expect(try await db.rows("SELECT id, n, m FROM cur ORDER BY id") == [["1", "2", "a"], ["3", "3", "z"], ["4", "40", "d"]])
    }

    @Test func schemaEvolutionAddsAndWidensColumnsInTheLoadTransaction() async throws {
        let db = try await TestDatabase.make("evolve")
        defer { Task { await db.drop() } }
        let state = try temporaryStateStore()
        let s = db.schema
        _ = try await db.run(
            try pipeline(
                db, "ev", lines: [#"{"id": 1, "n": 5}"#], sink: "table: \(s).ev, mode: upsert, key: [id]",
                schema: "    schema: { on_change: evolve }"), state: state)
        _ = try await db.run(
            try pipeline(
                db, "ev", lines: [#"{"id": 2, "n": 5.5, "extra": "x"}"#], sink: "table: \(s).ev, mode: upsert, key: [id]",
                schema: "    schema: { on_change: evolve }"), state: state)
        #expect(
            try await db.rows(
                "SELECT column_name, data_type FROM information_schema.columns WHERE table_schema = '\(s)' AND table_name = 'ev' ORDER BY ordinal_position")
                == [["id", "bigint"], ["n", "double precision"], ["extra", "text"]])
        #expect(try await db.rows("SELECT id, n, extra FROM ev ORDER BY id") == [["1", "5", "∅"], ["2", "5.5", "x"]])
    }

    @Test func aCommitThatLandedInTheTargetButNotInTheStateStoreIsRecovered() async throws {
        let db = try await TestDatabase.make("recover")
        defer { Task { await db.drop() } }
        let state = try temporaryStateStore()
        let options = try JSONDecoder().decode(
            PostgresSinkOptions.self,
            from: JSONSerialization.data(withJSONObject: [
                "url": db.url, "table": "\(db.schema).t",
            ]))
        let context = SinkContext(pipeline: "p", state: state, logger: Logger(label: "t"))
        let writer = try await PostgresSink(options: options).makeWriter(context: context)
        var builder = ColumnBuilder(type: .int64)
        builder.append(Int64(7))
        _ = try await writer.write(RecordBatch(schema: Schema([Field("id", .int64, nullable: false)]), columns: [builder.finish()]))
        var commit = StateCommit(pipeline: "p")
        commit.checkpoint = ["f": "42"]
        commit.deadLetters = [DeadLetter(stage: "decode", errorKind: "malformed_row", message: "bad", location: "f:3", raw: [1, 2])]
        try await writer.prepareCommit(&commit)
        // The process dies here: the target committed, the state store did not.
        #expect(try await state.checkpoint(pipeline: "p").partitions.isEmpty)
        _ = try await PostgresSink(options: options).makeWriter(context: context)
        #expect(try await state.checkpoint(pipeline: "p").partitions == ["f": "42"])
        #expect(try await state.deadLetterCount(pipeline: "p") == 1)
        // Opening again changes nothing more.
        _ = try await PostgresSink(options: options).makeWriter(context: context)
        #expect(try await state.deadLetterCount(pipeline: "p") == 1)
        #expect(try await db.rows("SELECT id FROM t") == [["7"]])
    }
}
