import Foundation
import Logging
import SluiceCore
import SluiceStateSQLite
import SluiceTesting
import Testing

@testable import SluicePostgres

/// A captured table's columns reach the schema registry (a subject per table), an ALTER TABLE is
/// drift, and the pipeline's policy holds: under `freeze` a change of columns stops the pipeline
/// before any row of the new shape is delivered.
@Suite(.serialized, .offCooperativePool) struct CDCSchemaDriftTests {
    @Test func tableDriftReachesTheRegistryAndItsPolicy() async throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("sluice-pg-drift-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let store = try SQLiteStateStore(path: "\(dir)/state.db")
        let registry = SchemaRegistry(store: try #require(store.schemaRegistry))
        let db = try await TestDatabase.make("cdc_drift")
        let slot = "drift_\(db.schema)"
        try await db.execute(
            """
            CREATE DOMAIN positive AS integer CHECK (VALUE > 0);
            CREATE TABLE items(id bigint PRIMARY KEY, qty positive, twice bigint GENERATED ALWAYS AS (id * 2) STORED);
            INSERT INTO items (id, qty) VALUES (1, 10);
            CREATE PUBLICATION \(slot) FOR TABLE items;
            """)
        let source = PostgresCDCSource(
            options: try PostgresCDCOptions(
                url: db.url, slot: slot, publication: slot, tables: [QualifiedName(schema: db.schema, name: "items")]))
        let pipeline = "drift"
        func context(_ settings: SchemaSettings?) -> SourceContext {
            var c = SourceContext(pipeline: pipeline, state: store, logger: Logger(label: "drift"))
            c.schema = settings
            return c
        }
        let subject = "\(pipeline).\(db.schema).items"
        func drain(_ reader: any SourceReader, until count: Int) async throws -> (ops: [String], position: SourcePosition?) {
            var ops: [String] = []
            var position: SourcePosition?
            let deadline = ContinuousClock.now + .seconds(60)
            while ops.count < count, ContinuousClock.now < deadline, let batch = try await reader.next() {
                position = batch.position
                let column = batch.records.column(named: "op")!
                for row in 0..<batch.records.count { ops.append(column.withBytes(at: row) { String(decoding: $0, as: UTF8.self) }) }
            }
            return (ops, position)
        }
        do {
            // Detection: the table is registered with its first streamed change (as pgoutput
            // describes it: the domain by its own type, the generated column left out); an added
            // column is version 2 and a drift event.
            let reader = try await source.makeReader(resumingFrom: .empty, context: context(nil))
            let snapshot = try await drain(reader, until: 1)
            #expect(snapshot.ops == ["r"])
            // A change first: the snapshot's transaction ends (its lock would hold the ALTER back).
            try await db.execute("INSERT INTO items (id, qty) VALUES (2, 20)")
            #expect(try await drain(reader, until: 1).ops == ["c"])
            var latest = try #require(try await registry.latestRecordSchema(subject: subject))
            #expect(latest.version == 1)
            #expect(latest.schema.fields.map(\.name) == ["id", "qty"])
            try await db.execute("ALTER TABLE items ADD COLUMN price numeric(10,2); INSERT INTO items (id, qty, price) VALUES (3, 30, 1.50)")
            let added = try await drain(reader, until: 1)
            await reader.close()
            #expect(added.ops == ["c"])
            latest = try #require(try await registry.latestRecordSchema(subject: subject))
            #expect(latest.version == 2)
            #expect(latest.schema.fields.last?.type == .decimal(precision: 10, scale: 2))
            #expect(try await registry.store.driftEvents(subject: subject, limit: 10).contains { $0.action == "registered" && $0.diff.contains("+ price:") })
            // Freeze: the next change of columns stops the pipeline; its row is not delivered.
            try await db.execute("ALTER TABLE items ADD COLUMN note text; INSERT INTO items (id, qty, price, note) VALUES (4, 40, 2.00, 'x')")
            let checkpoint = Checkpoint([added.position!.partition: added.position!.value])
            let frozen = try await source.makeReader(resumingFrom: checkpoint, context: context(SchemaSettings(policy: .freeze)))
            await #expect {
                _ = try await drain(frozen, until: 1)
            } throws: { error in
                guard let e = error as? SluiceError else { return false }
                return e.code == .schemaViolation && e.message.contains("items") && e.message.contains("freeze")
            }
            await frozen.close()
            #expect(try await registry.latestRecordSchema(subject: subject)?.version == 2)
            // Evolve: an added nullable column is compatible; the row comes through.
            let evolving = try await source.makeReader(resumingFrom: checkpoint, context: context(SchemaSettings(policy: .evolve)))
            let third = try await drain(evolving, until: 1)
            await evolving.close()
            #expect(third.ops == ["c"])
            #expect(try await registry.latestRecordSchema(subject: subject)?.version == 3)
            // Freeze again, once the shape is registered: the same row passes, and no new version.
            let refrozen = try await source.makeReader(resumingFrom: checkpoint, context: context(SchemaSettings(policy: .freeze)))
            #expect(try await drain(refrozen, until: 1).ops == ["c"])
            await refrozen.close()
            #expect(try await registry.latestRecordSchema(subject: subject)?.version == 3)
        } catch {
            try? await db.dropSlotAndPublication(slot)
            await db.drop()
            throw error
        }
        try await db.dropSlotAndPublication(slot)
        await db.drop()
    }
}
