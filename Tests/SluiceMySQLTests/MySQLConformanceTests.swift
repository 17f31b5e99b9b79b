import Foundation
import SluiceCore
import SluiceTesting
import Testing

@testable import SluiceMySQL

/// The `mysql_cdc` source keeps the connector contract (``SourceConformance``) on the real server.
@Suite(.timeLimit(.minutes(10))) struct MySQLConformanceTests {
    var registry: ComponentRegistry {
        var r = ComponentRegistry()
        r.register(source: MySQLCDCSource.factory)
        r.register(sink: BlackholeSink.factory)
        return r
    }

    @Test func theCDCSourceKeepsTheContract() async throws {
        try await TestMySQLDatabase.with("conf") { db in
            try await db.execute("CREATE TABLE items (id BIGINT PRIMARY KEY, qty BIGINT)")
            let url = try testMySQLURLText()
            let fixture = SourceFixture(
                config: #"mysql_cdc: { url: "\#(url)", tables: [\#(db.name).items], server_id: \#(UInt32.random(in: 3_000_000...4_000_000)) }"#,
                // Nothing listens on port 1.
                unreachableConfig: #"mysql_cdc: { url: "mysql://sluice:sluice@127.0.0.1:1/x", tables: [x.items] }"#,
                state: MemoryStateStore(),
                append: { ids in
                    try await db.execute("INSERT INTO items VALUES " + ids.map { "(\($0), \($0 * 10))" }.joined(separator: ", "))
                },
                appendMalformed: nil,
                malformedInputImpossible:
                    "the binlog carries typed values of the captured tables; a value Sluice cannot render exactly stops the pipeline with an error naming its column",
                ids: { batch in
                    guard let after = batch.column(named: "after") else { return [] }
                    return (0..<batch.count).compactMap { row in
                        guard case let .json(text) = after.value(at: row),
                            let object = try? JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any]
                        else { return nil }
                        return object["id"] as? Int
                    }
                })
            try await SourceConformance(registry: registry, fixture: fixture).run()
        }
    }
}
