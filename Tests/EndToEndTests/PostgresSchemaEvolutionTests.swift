import Foundation
import Testing
import SluiceTesting

/// The schema-evolution input of ``SchemaEvolutionTests`` (three shape changes mid-run) into a
/// PostgreSQL table, with the schema registry on the PostgreSQL state store: `evolve` adds and
/// widens columns inside the load transactions; the other policies leave the table's shape alone.
@Suite(.offCooperativePool, .serialized) struct PostgresSchemaEvolutionTests {
    func run(_ policy: String) throws -> (dir: String, schema: String, pipeline: String, result: SluiceProcess.Result) {
        let url = try postgresURL()
        let s = try makeSchema("evo_\(policy)")
        let dir = try makeWorkDirectory("pg-schema-\(policy)")
        try SchemaEvolutionTests.writeInput(dir)
        let pipeline = "events_\(s)"
        try write(
            """
            state: "\(url)"
            pipelines:
              \(pipeline):
                source:
                  file: { path: "data/*.ndjson" }
                schema: { on_change: \(policy) }
                sink:
                  postgres: { url: "\(url)", table: \(s).events }
            """, to: "\(dir)/p.yaml")
        return (dir, s, pipeline, try SluiceProcess.run(["run", "p.yaml", "--no-progress", "--log-level", "warning"], in: dir))
    }

    func columns(_ s: String) throws -> [String] {
        try psql(
            "SELECT column_name || ':' || data_type FROM information_schema.columns WHERE table_schema = '\(s)' AND table_name = 'events' ORDER BY ordinal_position"
        )
    }

    @Test(arguments: ["evolve", "freeze", "discard_row", "discard_value"])
    func eachPolicyProducesTheDocumentedTable(policy: String) throws {
        let (dir, s, pipeline, r) = try run(policy)
        defer {
            try? FileManager.default.removeItem(atPath: dir)
            _ = try? psql("DROP SCHEMA \(s) CASCADE")
        }
        #expect(r.status == 0, "\(r.stderr)")
        let rows = try psql(
            "SELECT id || '|' || coalesce(name, '∅') || '|' || \(policy == "evolve" ? "coalesce(score::text, '∅')" : "'-'") FROM \(s).events ORDER BY id")
        switch policy {
        case "evolve":
            #expect(try columns(s) == ["id:bigint", "name:text", "score:double precision"])
            #expect(rows == ["1|a|∅", "2|b|∅", "3|c|7", "4|d|∅", "5|e|7.5", "6|∅|1"])
            let show = try SluiceProcess.run(["schema", "show", pipeline, "-c", "p.yaml"], in: dir).stdout
            #expect(show.contains("version 3") && show.contains("~ score: int64 -> float64"), "the registry on PostgreSQL: \(show)")
        case "freeze":
            #expect(try columns(s) == ["id:bigint", "name:text"])
            #expect(rows == ["1|a|-", "2|b|-", "4|d|-"])
            let dlq = try SluiceProcess.run(["dlq", "list", "--json", "-c", "p.yaml", "--pipeline", pipeline], in: dir).stdout
            #expect(dlq.split(separator: "\n").count == 3 && dlq.contains("+ score: int64"), "\(dlq)")
        case "discard_row":
            #expect(try columns(s) == ["id:bigint", "name:text"])
            #expect(rows == ["1|a|-", "2|b|-", "4|d|-"])
        default:
            #expect(try columns(s) == ["id:bigint", "name:text"])
            #expect(rows == ["1|a|-", "2|b|-", "3|c|-", "4|d|-", "5|e|-", "6|∅|-"])
        }
    }
}
