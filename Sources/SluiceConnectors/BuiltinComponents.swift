import SluiceCore
import SluiceDatabase
import SluiceFiles
import SluiceHTTPAPI
import SluiceJetStream
import SluiceMySQL
import SluicePostgres
import SluiceServer
import SluiceStateSQLite

/// The one registration list of built-in components. Adding a connector adds one line here.
public enum BuiltinComponents {
    public static var registry: ComponentRegistry {
        var r = ComponentRegistry()
        r.register(source: FileSource.factory)
        r.register(source: HTTPSource.factory)
        r.register(source: SQLiteSource.factory)
        r.register(source: PostgresSource.factory)
        r.register(source: PostgresCDCSource.factory)
        r.register(source: MySQLCDCSource.factory)
        r.register(source: JetStreamSource.factory)
        r.register(source: HTTPAPISource.factory)
        r.register(sink: NDJSONFileSink.factory)
        r.register(sink: ParquetFileSink.factory)
        r.register(sink: PostgresSink.factory)
        r.register(sink: JetStreamSink.factory)
        r.register(sink: StdoutSink.factory)
        r.register(sink: BlackholeSink.factory)
        r.register(state: PostgresStateStore.backend)
        r.register(state: SQLiteStateStore.backend)
        return r
    }

    /// Opens the state store a configuration names (`state:`): a SQLite file path, or a
    /// `postgres://` URL for state shared by several workers.
    public static func openState(_ location: String) async throws -> any StateStore {
        try await registry.openState(location)
    }
}
