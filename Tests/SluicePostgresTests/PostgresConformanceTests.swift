import Foundation
import SluiceConnectors
import SluiceCore
@testable import SluicePostgres
import SluiceTesting
import Testing

/// The PostgreSQL source, the CDC source and the PostgreSQL sink keep the connector contract
/// (``SourceConformance``, ``SinkConformance``) on the real server.
@Suite(.timeLimit(.minutes(10))) struct PostgresConformanceTests {
    let registry = BuiltinComponents.registry
    /// Nothing listens on port 1.
    let unreachableURL = "postgres://sluice@127.0.0.1:1/sluice"

    /// Appends rows `(id, qty)` to `table` of `db`.
    static func append(_ db: TestDatabase, _ table: String, _ ids: [Int]) async throws {
        try await db.execute("INSERT INTO \(table)(id, qty) VALUES " + ids.map { "(\($0), \($0 * 10))" }.joined(separator: ", "))
    }

    @Test func thePostgresSourceKeepsTheContract() async throws {
        let db = try await TestDatabase.make("conf_src")
        try await db.execute("CREATE TABLE items(seq bigserial PRIMARY KEY, id bigint, qty bigint)")
        let fixture = SourceFixture(
            config: #"postgres: { url: "\#(db.url)", table: \#(db.schema).items, mode: incremental, cursor: [seq] }"#,
            unreachableConfig: #"postgres: { url: "\#(unreachableURL)", table: items }"#,
            state: MemoryStateStore(),
            append: { try await Self.append(db, "items", $0) },
            appendMalformed: nil,
            malformedInputImpossible: "PostgreSQL hands over typed values, each of which Sluice represents exactly or refuses at the start (unsupported_types)")
        try await SourceConformance(registry: registry, fixture: fixture).run()
        await db.drop()
    }

    @Test func theCDCSourceKeepsTheContract() async throws {
        let db = try await TestDatabase.make("conf_cdc")
        let slot = "conf_\(db.schema)"
        try await db.execute(
            """
            CREATE TABLE items(id bigint PRIMARY KEY, qty bigint);
            CREATE PUBLICATION \(slot) FOR TABLE items;
            """)
        let fixture = SourceFixture(
            config: #"postgres_cdc: { url: "\#(db.url)", slot: \#(slot), publication: \#(slot), tables: [\#(db.schema).items] }"#,
            unreachableConfig: #"postgres_cdc: { url: "\#(unreachableURL)", slot: \#(slot), publication: \#(slot), tables: [items] }"#,
            state: MemoryStateStore(),
            append: { try await Self.append(db, "items", $0) },
            appendMalformed: nil,
            malformedInputImpossible:
                "pgoutput carries typed values of a published table; a type Sluice cannot represent stops the pipeline with a clear error",
            ids: { batch in
                // A change event carries the row as JSON in `after`.
                guard let after = batch.column(named: "after") else { return [] }
                return (0..<batch.count).compactMap { row in
                    guard case let .json(text) = after.value(at: row),
                        let object = try? JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any]
                    else { return nil }
                    return (object["id"] as? Int) ?? (object["id"] as? String).flatMap { Int($0) }
                }
            })
        try await SourceConformance(registry: registry, fixture: fixture).run()
        // The last reader closed; its walsender ends on its own time.
        try await db.dropSlotAndPublication(slot)
        await db.drop()
    }

    @Test func thePostgresSinkKeepsTheContract() async throws {
        let db = try await TestDatabase.make("conf_sink")
        try await db.execute("CREATE TABLE landed(id bigint, name text)")
        let fixture = SinkFixture(
            config: #"postgres: { url: "\#(db.url)", table: \#(db.schema).landed }"#,
            unreachableConfig: #"postgres: { url: "\#(unreachableURL)", table: landed }"#,
            state: MemoryStateStore(),
            readBack: { try await db.rows("SELECT id FROM landed").compactMap { Int($0[0]) } })
        try await SinkConformance(registry: registry, fixture: fixture).run()
        await db.drop()
    }
}
