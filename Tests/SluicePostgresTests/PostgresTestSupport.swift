import Foundation
import Logging
import SluiceConnectors
import SluiceCore
@testable import SluicePostgres
import SluiceStateSQLite
import Testing

/// The throwaway server `scripts/test.sh` starts (scripts/pg-test-server.sh). Tests fail, not
/// skip, without it: a database test that silently does not run is a defect.
func testServerURL() throws -> String {
    guard let url = ProcessInfo.processInfo.environment["SLUICE_TEST_PG_URL"] else {
        throw SluiceError(.configuration, "SLUICE_TEST_PG_URL is not set: run the tests through scripts/test.sh, which starts a throwaway PostgreSQL server")
    }
    return url
}

/// A schema of its own per test, dropped at the end.
struct TestDatabase {
    let url: String
    let schema: String
    let connection: PostgresConnection

    static func make(_ name: String) async throws -> TestDatabase {
        let url = try testServerURL()
        let connection = try await PostgresConnection.connect(try PostgresURL(url))
        let schema = "t_\(name)_\(UUID().uuidString.prefix(8).lowercased())"
        try await connection.run { try $0.execute("CREATE SCHEMA \(schema)") }
        return TestDatabase(url: url, schema: schema, connection: connection)
    }

    func execute(_ sql: String) async throws {
        let schema = self.schema
        try await connection.run { try $0.execute("SET search_path = \(schema), public; " + sql) }
    }

    /// Drops a replication slot once its last reader's walsender has let it go (on its own
    /// time, after the reader closed), and the publication of the same name.
    func dropSlotAndPublication(_ slot: String) async throws {
        for attempt in 1...50 {
            do {
                try await execute("SELECT pg_drop_replication_slot('\(slot)')")
                break
            } catch  where attempt < 50 {
                try await Task.sleep(for: .milliseconds(100))
            }
        }
        try await execute("DROP PUBLICATION IF EXISTS \(slot)")
    }

    /// Rows as text (NULL as "∅"), for comparisons.
    func rows(_ sql: String) async throws -> [[String]] {
        let schema = self.schema
        return try await connection.run { session in
            try session.execute("SET search_path = \(schema), public")
            let r = try session.query(sql)
            return (0..<r.rows).map { i in (0..<r.columns).map { r.string(i, $0) ?? "∅" } }
        }
    }

    func drop() async {
        let schema = self.schema
        _ = try? await connection.run { try $0.execute("DROP SCHEMA \(schema) CASCADE") }
    }

    /// Runs the pipelines of `yaml` to completion in-process, with a SQLite state store in `dir`.
    func run(_ yaml: String, state: any StateStore) async throws -> [String: RunTotals] {
        let loader = ConfigLoader(registry: BuiltinComponents.registry, environment: [:], baseDirectory: NSTemporaryDirectory())
        let config = try loader.load(text: yaml, file: "test.yaml")
        var totals: [String: RunTotals] = [:]
        for plan in config.pipelines {
            totals[plan.name] = try await PipelineRunner(plan: plan, store: state, logger: Logger(label: "test")).run()
        }
        return totals
    }
}

func temporaryStateStore() throws -> SQLiteStateStore {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("pgstate-\(UUID().uuidString)").path
    try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    return try SQLiteStateStore(path: "\(dir)/state.db")
}
