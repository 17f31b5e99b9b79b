import Foundation
import Testing
import SluiceTesting

/// Data whose shape changes three times mid-run (a column added, a type widened, a column
/// removed), under each `on_change` policy, into a Parquet lake read back by DuckDB with
/// `union_by_name`; and an incompatible change that `evolve` refuses.
@Suite(.offCooperativePool, .serialized) struct SchemaEvolutionTests {
    /// Four files, three changes: + score (int), score int → float, - name.
    static func writeInput(_ dir: String) throws {
        try write("{\"id\":1,\"name\":\"a\"}\n{\"id\":2,\"name\":\"b\"}\n", to: "\(dir)/data/f1.ndjson")
        try write("{\"id\":3,\"name\":\"c\",\"score\":7}\n{\"id\":4,\"name\":\"d\"}\n", to: "\(dir)/data/f2.ndjson")
        try write("{\"id\":5,\"name\":\"e\",\"score\":7.5}\n", to: "\(dir)/data/f3.ndjson")
        try write("{\"id\":6,\"score\":1}\n", to: "\(dir)/data/f4.ndjson")
    }

    static func config(_ policy: String) -> String {
        """
        pipelines:
          events:
            source:
              file: { path: "data/*.ndjson" }
            schema: { on_change: \(policy) }
            sink:
              parquet: { path: lake }
        """
    }

    /// Rows of the lake as `id|name|score` lines (DuckDB, union_by_name), ordered by id.
    static func lake(_ dir: String) throws -> [String] {
        try python(
            """
            import duckdb
            rel = duckdb.sql("select * from read_parquet('lake/*.parquet', union_by_name=true)")
            cols = rel.columns
            for row in duckdb.sql("select * from rel order by id").fetchall():
                d = dict(zip(cols, row))
                print(f"{d.get('id')}|{d.get('name')}|{d.get('score')}")
            """, in: dir
        ).split(separator: "\n").map(String.init)
    }

    func run(_ policy: String) throws -> (dir: String, result: SluiceProcess.Result) {
        let dir = try makeWorkDirectory("schema-\(policy)")
        try Self.writeInput(dir)
        try write(Self.config(policy), to: "\(dir)/p.yaml")
        return (dir, try SluiceProcess.run(["run", "p.yaml", "--no-progress", "--log-level", "warning"], in: dir))
    }

    @Test func evolveRegistersVersionsAndTheLakeHasEveryColumn() throws {
        let (dir, r) = try run("evolve")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        #expect(r.status == 0, "\(r.stderr)")
        #expect(try Self.lake(dir) == ["1|a|None", "2|b|None", "3|c|7.0", "4|d|None", "5|e|7.5", "6|None|1.0"])
        let show = try SluiceProcess.run(["schema", "show", "events"], in: dir).stdout
        #expect(show.contains("version 3"), "\(show)")
        #expect(show.contains("registered  v1 -> v2  + score: int64"))
        #expect(show.contains("registered  v2 -> v3  ~ score: int64 -> float64"))
        #expect(show.contains("conformed") && show.contains("- name: string"), "a removed column is an event too")
        let diff = try SluiceProcess.run(["schema", "diff", "events", "--from", "1", "--to", "3"], in: dir).stdout
        #expect(diff.contains("+ score: float64") && diff.contains("backward compatible: yes"), "\(diff)")
        #expect(try SluiceProcess.run(["schema", "list"], in: dir).stdout.contains("events"))
    }

    @Test func freezeDeadLettersNonConformingRowsWithTheDiff() throws {
        let (dir, r) = try run("freeze")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        #expect(r.status == 0, "\(r.stderr)")
        #expect(try Self.lake(dir) == ["1|a|None", "2|b|None", "4|d|None"])
        let dlq = try SluiceProcess.run(["dlq", "list", "--json"], in: dir).stdout
        let letters = dlq.split(separator: "\n").compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
        #expect(letters.count == 3, "\(dlq)")
        #expect(letters.allSatisfy { ($0["stage"] as? String) == "schema" })
        #expect(letters.contains { ($0["message"] as? String)?.contains("+ score: int64") == true })
        #expect(letters.contains { ($0["message"] as? String)?.contains("+ score: float64") == true })
        let show = try SluiceProcess.run(["schema", "show", "events"], in: dir).stdout
        #expect(!show.contains("version 2"), "a frozen subject keeps its version")
        #expect(show.contains("dead_lettered"))
    }

    @Test func discardRowDropsAndDiscardValueKeepsTheRowsWithoutTheOffendingFields() throws {
        let (rowDir, rows) = try run("discard_row")
        defer { try? FileManager.default.removeItem(atPath: rowDir) }
        #expect(rows.status == 0, "\(rows.stderr)")
        #expect(try Self.lake(rowDir) == ["1|a|None", "2|b|None", "4|d|None"])
        #expect(try SluiceProcess.run(["dlq", "list"], in: rowDir).stdout.contains("no dead letters"))
        let (valueDir, values) = try run("discard_value")
        defer { try? FileManager.default.removeItem(atPath: valueDir) }
        #expect(values.status == 0, "\(values.stderr)")
        #expect(try Self.lake(valueDir) == ["1|a|None", "2|b|None", "3|c|None", "4|d|None", "5|e|None", "6|None|None"])
    }

    @Test func evolveRefusesAnIncompatibleChangeAndWritesNothingOfIt() throws {
        let dir = try makeWorkDirectory("schema-refuse")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try write("{\"id\":1,\"name\":\"a\"}\n", to: "\(dir)/data/f1.ndjson")
        try write("{\"id\":\"two\",\"name\":\"b\"}\n", to: "\(dir)/data/f2.ndjson")
        try write(Self.config("evolve"), to: "\(dir)/p.yaml")
        let r = try SluiceProcess.run(["run", "p.yaml", "--no-progress", "--log-level", "warning"], in: dir)
        #expect(r.status == 1)
        #expect(r.stderr.contains("id: int64 -> string") && r.stderr.contains("widen_to_string"), "\(r.stderr)")
        #expect(try Self.lake(dir) == ["1|a|None"], "the first file is written, the refused one is not")
        // Allowed explicitly, the same data goes through on the next run.
        try write(Self.config("evolve").replacingOccurrences(of: "on_change: evolve", with: "on_change: evolve, widen_to_string: true"), to: "\(dir)/p.yaml")
        let again = try SluiceProcess.run(["run", "p.yaml", "--no-progress", "--log-level", "warning"], in: dir)
        #expect(again.status == 0, "\(again.stderr)")
        #expect(try Self.lake(dir) == ["1|a|None", "two|b|None"])
    }
}
