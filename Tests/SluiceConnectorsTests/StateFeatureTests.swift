import Foundation
import SluiceConnectors
import SluiceCore
import Testing

/// A pipeline that needs what its state store does not keep is refused when the file is loaded
/// (so by `sluice validate` too), and each store kind keeps the features it declares.
@Suite struct StateFeatureTests {
    let registry = BuiltinComponents.registry

    func load(_ text: String) throws -> LoadedConfig {
        try ConfigLoader(registry: registry, environment: [:], baseDirectory: "/tmp").load(text: text, file: "p.yaml")
    }

    @Test func aPushSourceWithPostgresStateIsRefusedWhereItIsWritten() throws {
        let text = """
            state: postgres://sluice@127.0.0.1:5432/state
            pipelines:
              events:
                source:
                  http: { stream: events, auth: none }
                sink:
                  ndjson: { path: out }
            """
        do {
            _ = try load(text)
            Issue.record("loaded a push source with a PostgreSQL state store")
        } catch let error as ConfigError {
            #expect(error.line == 5)
            #expect(error.keyPath == "pipelines.events.source.http")
            #expect(error.message.contains("needs a state store with a push queue"), "\(error.message)")
            #expect(error.message.contains("PostgreSQL state store 'postgres://sluice@127.0.0.1:5432/state' has none"), "\(error.message)")
            #expect(error.message.contains("use a SQLite state store"), "\(error.message)")
        }
        // The same pipeline on the embedded store loads.
        let sqlite = text.replacingOccurrences(of: "postgres://sluice@127.0.0.1:5432/state", with: ".sluice/state.db")
        #expect(try load(sqlite).pipelines.count == 1)
    }

    @Test func locationsReachTheRightStoreKind() {
        #expect(registry.stateBackend(for: "postgres://u@h/db")?.name == "PostgreSQL")
        #expect(registry.stateBackend(for: "postgresql://u@h/db")?.name == "PostgreSQL")
        #expect(registry.stateBackend(for: ".sluice/state.db")?.name == "SQLite")
        #expect(registry.stateBackend(for: "/var/lib/sluice/state.db")?.name == "SQLite")
        #expect(registry.stateBackend(for: "mysql://h/db") == nil)
    }

    @Test func anOpenedSQLiteStoreKeepsWhatItsKindDeclares() async throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("features-\(UUID().uuidString).db").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        let store = try await registry.openState(path)
        #expect(store.features == registry.stateBackend(for: path)?.features)
        #expect(store.pushQueue != nil && store.schemaRegistry != nil)
    }

    @Test func anUnknownLocationSchemeIsAClearError() async throws {
        await #expect(throws: SluiceError.self) { _ = try await registry.openState("mysql://h/db") }
    }
}
