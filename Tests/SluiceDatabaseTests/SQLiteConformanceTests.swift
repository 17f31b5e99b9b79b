import Foundation
import GRDB
import SluiceConnectors
import SluiceCore
import SluiceTesting
import Testing

/// The SQLite source keeps the connector contract (``SourceConformance``) on a real database
/// file, read incrementally by an autoincrement cursor; a value that does not fit its column
/// is the bad input.
@Suite(.timeLimit(.minutes(3))) struct SQLiteConformanceTests {
    @Test func theSQLiteSourceKeepsTheContract() async throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("conformance-sqlite-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = "\(dir)/source.db"
        let database = try DatabaseQueue(path: path)
        try await database.write { db in
            try db.execute(sql: "CREATE TABLE items(seq INTEGER PRIMARY KEY AUTOINCREMENT, id INTEGER, qty INTEGER)")
        }
        let fixture = SourceFixture(
            config: #"sqlite: { path: "\#(path)", table: items, mode: incremental, cursor: [seq] }"#,
            unreachableConfig: #"sqlite: { path: "\#(dir)/missing.db", table: items }"#,
            state: MemoryStateStore(),
            append: { ids in
                try await database.write { db in
                    for id in ids { try db.execute(sql: "INSERT INTO items(id, qty) VALUES (?, ?)", arguments: [id, id * 10]) }
                }
            },
            appendMalformed: {
                try await database.write { db in try db.execute(sql: "INSERT INTO items(id, qty) VALUES (0, 'lots')") }
            })
        try await SourceConformance(registry: BuiltinComponents.registry, fixture: fixture).run()
    }
}
