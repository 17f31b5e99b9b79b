import Foundation
import Testing
import SluiceTesting

/// `mode: apply` creates current-state tables with the source's exact column types (from the
/// change events' `column_types`), not types guessed from JSON, and the rows arrive exactly.
@Suite(.offCooperativePool) struct PostgresCDCExactTypesTests {
    @Test func applyCreatesTablesWithTheSourcesTypes() async throws {
        let url = try postgresURL()
        let schema = try makeSchema("cdc_types")
        let target = schema + "_cur"
        let slot = "types_\(UUID().uuidString.prefix(6).lowercased())"
        defer { dropCDCObjects(slots: [slot], publication: slot, schemas: [schema, target]) }
        try psql(
            """
            CREATE TABLE \(schema).t (id bigint PRIMARY KEY, amount numeric(12,2), at timestamptz, local timestamp(3), day date,
              blob bytea, code varchar(20), tag uuid, doc jsonb, nums integer[], ok boolean, ratio real, note text, small smallint);
            INSERT INTO \(schema).t VALUES (1, 12345.67, '2026-01-02 03:04:05.123456+00', '2026-01-02 03:04:05.123', '2026-01-02',
              '\\x00ff10', 'abc', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '{"k": [1, 2]}', '{1,2,3}', true, 0.5, 'x', 7);
            CREATE PUBLICATION \(slot) FOR TABLE \(schema).t;
            """)
        let dir = try makeWorkDirectory("cdc-types")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try write(
            """
            pipelines:
              types:
                source:
                  postgres_cdc: { url: "\(url)", slot: \(slot), publication: \(slot), tables: [\(schema).t] }
                sink:
                  postgres: { url: "\(url)", table: "\(target).{table}", mode: apply, create: true, commit_interval: 100ms }
            """, to: "\(dir)/p.yaml")
        let sluice = try SluiceProcess.start(["run", "p.yaml", "--no-progress"], in: dir, log: "\(dir)/sluice.log")
        defer { if sluice.isRunning { kill(sluice.processIdentifier, SIGKILL) } }
        func log() -> String { (try? String(contentsOfFile: "\(dir)/sluice.log", encoding: .utf8)) ?? "" }
        #expect(try await waitUntil(seconds: 90) { (try? psql("SELECT count(*) FROM \(target).t")) == ["1"] }, "the snapshot row did not arrive:\n\(log())")
        // A streamed change lands in the typed table too.
        try psql(
            """
            INSERT INTO \(schema).t VALUES (2, -0.01, '1999-12-31 23:59:59.999999+00', NULL, '1999-12-31', '\\x', 'z', NULL, '[]', '{}',
              false, -1.25, NULL, -1)
            """)
        #expect(try await waitUntil(seconds: 90) { (try? psql("SELECT count(*) FROM \(target).t")) == ["2"] }, "\(log())")
        kill(sluice.processIdentifier, SIGTERM)
        await waitForExit(sluice)

        let types =
            "SELECT string_agg(attname || ' ' || format_type(atttypid, atttypmod), ', ' ORDER BY attname) FROM pg_attribute "
            + "WHERE attnum > 0 AND NOT attisdropped AND attrelid = "
        #expect(try psql(types + "'\(target).t'::regclass") == psql(types + "'\(schema).t'::regclass"))
        let columns = ["id", "amount", "at", "local", "day", "blob", "code", "tag", "doc", "nums", "ok", "ratio", "note", "small"]
        let select = "SELECT \(columns.joined(separator: ", ")) FROM "
        let sourceRows = try psql(select + "\(schema).t ORDER BY id"), copiedRows = try psql(select + "\(target).t ORDER BY id")
        #expect(
            try tableFingerprint(target, "t", columns: columns, orderBy: "id") == tableFingerprint(schema, "t", columns: columns, orderBy: "id"),
            "source \(sourceRows), current state \(copiedRows)")
        #expect(sluice.terminationStatus == 0, "\(log().suffix(2000))")
    }
}
