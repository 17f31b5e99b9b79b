import Foundation
import SluiceCore
import SluiceStateSQLite
import Logging
import Testing

/// Casts that must be exact, and detection that must not churn versions.
@Suite struct SchemaGuardTests {
    func batch(_ fields: [Field], _ rows: [[Value]]) -> RecordBatch {
        var builders = fields.map { ColumnBuilder(type: $0.type) }
        for row in rows { for (i, v) in row.enumerated() { builders[i].append(value: v) } }
        return RecordBatch(schema: Schema(fields), columns: builders.indices.map { builders[$0].finish() })
    }

    @Test func castsAreExactOrTheRowFails() {
        let conformer = SchemaConformer(target: Schema([Field("n", .float64), Field("d", .decimal(precision: 38, scale: 20))]))
        let input = batch(
            [Field("n", .int64), Field("d", .int64)],
            [[.int64(1 << 53), .int64(5)], [.int64((1 << 53) + 1), .int64(1)], [.int64(3), .int64(Int64.max)]])
        let (out, failures) = conformer.conform(input)
        #expect(out.columns[0].value(at: 0) == .float64(9007199254740992))
        #expect(failures[1]?.contains("does not fit float64") == true, "2^53 + 1 is not a double")
        #expect(failures[2]?.contains("decimal") == true, "an overflowing decimal cast fails the row instead of trapping")
        #expect(failures[0] == nil)
    }

    func withGuard(_ settings: SchemaSettings?, _ body: (SchemaGuard, SQLiteStateStore) async throws -> Void) async throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("guard-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let store = try SQLiteStateStore(path: "\(dir)/state.db")
        let g = SchemaGuard(registry: SchemaRegistry(store: store), pipeline: "p", settings: settings, logger: Logger(label: "test"))
        try await g.start()
        try await body(g, store)
    }

    func source(_ b: RecordBatch, _ n: Int) -> SourceBatch {
        SourceBatch(records: b, position: SourcePosition(partition: "", value: "\(n)"), inputBytes: 0)
    }

    @Test func detectionDoesNotChurnOnColumnOrderOrAllNullColumns() async throws {
        try await withGuard(nil) { g, store in
            let a = batch([Field("id", .int64), Field("name", .string)], [[.int64(1), .string("x")]])
            let reordered = batch([Field("name", .string), Field("id", .int64)], [[.string("y"), .int64(2)]])
            let emptyColumn = batch([Field("id", .int64), Field("name", .string), Field("later", .string)], [[.int64(3), .string("z"), .null]])
            let nullTyped = batch([Field("id", .string), Field("name", .string)], [[.null, .string("w")]])
            for (i, b) in [a, reordered, emptyColumn, nullTyped, a, reordered].enumerated() {
                let out = try await g.apply(source(b, i))
                #expect(out.records == b, "detection passes batches unchanged")
            }
            #expect(try await store.registryVersions(subject: "p", includeDeleted: false).count == 1)
            #expect(try await store.driftEvents(subject: "p", limit: 10).isEmpty)
            // A real change is one version and one event, however often it recurs.
            let wider = batch([Field("id", .int64), Field("name", .string), Field("score", .float64)], [[.int64(4), .string("v"), .float64(1)]])
            for (i, b) in [wider, a, wider, a].enumerated() { _ = try await g.apply(source(b, 10 + i)) }
            #expect(try await store.registryVersions(subject: "p", includeDeleted: false).count == 2)
            #expect(try await store.driftEvents(subject: "p", limit: 10).count == 1)
        }
    }

    @Test func evolveKeepsTheTypeOfAColumnThatIsAllNull() async throws {
        try await withGuard(SchemaSettings(policy: .evolve)) { g, store in
            _ = try await g.apply(source(batch([Field("id", .int64), Field("n", .int64)], [[.int64(1), .int64(2)]]), 0))
            // A file whose `n` is empty infers it as string: not a type change.
            let out = try await g.apply(source(batch([Field("id", .int64), Field("n", .string)], [[.int64(2), .null]]), 1))
            #expect(out.records.schema.fields.map(\.type) == [.int64, .int64])
            #expect(out.rejects.isEmpty)
            #expect(try await store.registryVersions(subject: "p", includeDeleted: false).count == 1)
        }
    }

    @Test func aReadOnlySubjectRefusesANewShapeAsASchemaViolation() async throws {
        try await withGuard(SchemaSettings(policy: .evolve)) { g, store in
            _ = try await g.apply(source(batch([Field("id", .int64)], [[.int64(1)]]), 0))
            try await store.registrySetMode(subject: "p", mode: .readOnly)
            _ = try await g.apply(source(batch([Field("id", .int64)], [[.int64(2)]]), 1))
            let wider = batch([Field("id", .int64), Field("note", .string)], [[.int64(3), .string("x")]])
            await #expect(throws: SluiceError.self) { try await g.apply(source(wider, 2)) }
            #expect(try await store.registryVersions(subject: "p", includeDeleted: false).count == 1)
            #expect(try await store.driftEvents(subject: "p", limit: 5).first?.action == "refused")
        }
    }

    @Test func concurrentRegistrationsCannotBothPassTheCheck() async throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("race-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let store = try SQLiteStateStore(path: "\(dir)/state.db")
        let base = #"{"type":"sluice","fields":[{"name":"a","type":"int64"}]}"#
        _ = try await SchemaRegistry(store: store).register(subject: "s", text: base, format: .sluice)
        // Two registries (as two pipelines or processes have), many writers, the same new schema and an incompatible one.
        let same = #"{"type":"sluice","fields":[{"name":"a","type":"int64"},{"name":"b","type":"string"}]}"#
        let registries = [SchemaRegistry(store: store), SchemaRegistry(store: store)]
        let ids = try await withThrowingTaskGroup(of: Int64.self) { group in
            for i in 0..<20 { group.addTask { try await registries[i % 2].register(subject: "s", text: same, format: .sluice).id } }
            return try await group.reduce(into: Set<Int64>()) { $0.insert($1) }
        }
        #expect(ids.count == 1)
        #expect(try await store.registryVersions(subject: "s", includeDeleted: false).count == 2, "one new version, not twenty")
    }

    @Test func aConformedChangeIsRecordedOnceAcrossRestarts() async throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("guard-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let store = try SQLiteStateStore(path: "\(dir)/state.db")
        let wideFields = [Field("id", .int64)] + (0..<500).map { Field("f\($0)", .int64) }
        let wide = batch(wideFields, [[.int64(1)] + (0..<500).map { .int64(Int64($0)) }])
        let narrow = batch([Field("id", .int64)], [[.int64(777)]])
        // Each run is a new guard over the same store, as after a restart of the process.
        for run in 0..<3 {
            let g = SchemaGuard(registry: SchemaRegistry(store: store), pipeline: "p", settings: SchemaSettings(policy: .evolve), logger: Logger(label: "test"))
            try await g.start()
            if run == 0 {
                _ = try await g.apply(source(narrow, 0))
                _ = try await g.apply(source(wide, 0))
            }
            let out = try await g.apply(source(narrow, run + 1))
            #expect(out.records.count == 1)
        }
        let events = try await store.driftEvents(subject: "p", limit: 10)
        // The version with 500 new columns, and the narrow batch's missing columns once.
        #expect(events.map(\.action).sorted() == ["conformed", "registered"], "\(events.map(\.action))")
    }
}
