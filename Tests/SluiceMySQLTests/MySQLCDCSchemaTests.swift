import Foundation
import Logging
import SluiceCore
import SluiceStateSQLite
import Testing

@testable import SluiceMySQL

/// A captured table's columns reach the schema registry (a subject per table), a DDL is drift,
/// and the pipeline's policy holds: under `freeze` a change stops the pipeline before any row of
/// the new shape is delivered.
extension MySQLCDCReaderTests {
    @Test func tableDriftReachesTheRegistryAndItsPolicy() async throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("sluice-mysql-schema-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let store = try SQLiteStateStore(path: "\(dir)/state.db")
        let registry = SchemaRegistry(store: try #require(store.schemaRegistry))
        try await TestMySQLDatabase.with("drift") { db in
            try await db.execute("CREATE TABLE t (id INT PRIMARY KEY, v VARCHAR(20))", "INSERT INTO t VALUES (1, 'a')")
            let s = try source(try testMySQLURLText(), ["\(db.name).t"], snapshot: .initial)
            let pipeline = "drift-\(UUID().uuidString.prefix(8))"
            func context(_ settings: SchemaSettings?) -> SourceContext {
                var c = SourceContext(pipeline: pipeline, state: store, logger: Logger(label: "drift"))
                c.schema = settings
                return c
            }
            let subject = "\(pipeline).\(db.name).t"
            // Detection: the table is registered with its first change; an added column is a new
            // version and a drift event.
            let reader = try await s.makeReader(resumingFrom: .empty, context: context(nil))
            let first = try await read(reader, count: 1)
            #expect(first.ops == ["r"])
            try await db.execute("INSERT INTO t VALUES (2, 'b')")
            #expect(try await read(reader, count: 1).ids == [2])
            var latest = try #require(try await registry.latestRecordSchema(subject: subject))
            #expect(latest.version == 1)
            #expect(latest.schema.fields.map(\.name) == ["id", "v"])
            #expect(latest.schema.fields.map(\.type) == [.int64, .string])
            try await db.execute("ALTER TABLE t ADD COLUMN w DECIMAL(10,2)", "INSERT INTO t VALUES (3, 'c', 1.50)")
            let second = try await read(reader, count: 1)
            await reader.close()
            #expect(second.ids == [3])
            latest = try #require(try await registry.latestRecordSchema(subject: subject))
            #expect(latest.version == 2)
            #expect(latest.schema.fields.last?.type == .decimal(precision: 10, scale: 2))
            let events = try await registry.store.driftEvents(subject: subject, limit: 10)
            #expect(events.contains { $0.action == "registered" && $0.diff.contains("+ w:") })
            // Freeze: the next change of the table's columns stops the pipeline, its rows undelivered.
            try await db.execute("ALTER TABLE t ADD COLUMN x INT", "INSERT INTO t VALUES (4, 'd', 2.00, 7)")
            let checkpoint = Checkpoint([s.partition: second.positions.last!])
            let frozen = try await s.makeReader(resumingFrom: checkpoint, context: context(SchemaSettings(policy: .freeze)))
            await #expect {
                _ = try await self.read(frozen, count: 1, seconds: 20)
            } throws: { error in
                guard let e = error as? SluiceError else { return false }
                return e.code == .schemaViolation && e.message.contains("\(db.name).t") && e.message.contains("freeze")
            }
            await frozen.close()
            #expect(try await registry.latestRecordSchema(subject: subject)?.version == 2)
            #expect(try await registry.store.driftEvents(subject: subject, limit: 10).contains { $0.action == "refused" })
            // Evolve: an added nullable column is a compatible change; the row comes through.
            let evolving = try await s.makeReader(resumingFrom: checkpoint, context: context(SchemaSettings(policy: .evolve)))
            let third = try await read(evolving, count: 1)
            await evolving.close()
            #expect(third.ids == [4])
            #expect(try await registry.latestRecordSchema(subject: subject)?.version == 3)
            // Freeze again, once the shape is registered: the same row passes.
            let refrozen = try await s.makeReader(resumingFrom: checkpoint, context: context(SchemaSettings(policy: .freeze)))
            #expect(try await read(refrozen, count: 1).ids == [4])
            await refrozen.close()
        }
    }
}
