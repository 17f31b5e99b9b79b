import Foundation
import Logging
import SluiceCore

/// Loads batches into a PostgreSQL table: `append`, `upsert` (`INSERT … ON CONFLICT … DO UPDATE`
/// by key) or `replace` (a staging table swapped in by rename when the extract ends).
///
/// Exactly once: everything between two commits is one PostgreSQL transaction, and that
/// transaction also stores the pipeline's checkpoint (and the rest of the state commit) in
/// `sluice_sink_state` next to the data. A crash before it commits loses nothing (the source
/// re-reads from the previous checkpoint); a crash after it but before the state store commits
/// is repaired when the next writer opens, from the copy stored with the data.
public struct PostgresSink: Sink {
    public var options: PostgresSinkOptions

    public init(options: PostgresSinkOptions) { self.options = options }

    public static let factory = SinkFactory(
        type: "postgres",
        summary: "a PostgreSQL table: append, upsert by key, or replace (staged and swapped); exactly once",
        example: """
        sink:
          postgres: { url: "${WAREHOUSE_URL}", table: analytics.orders, mode: upsert, key: [id] }
        """
    ) { config, _ in
        PostgresSink(options: try config.decodeOptions(PostgresSinkOptions.self))
    }

    public func checkReachable() async throws {
        let connection = try await PostgresConnection.connect(options.url)
        _ = try await connection.run { try $0.query("SELECT 1") }
    }

    public func makeWriter(context: SinkContext) async throws -> any SinkWriter {
        let writer = try await PostgresSinkWriter(options: options, context: context)
        try await writer.recover()
        return writer
    }
}

/// The state row stored with the data: the checkpoint before and after the last commit and
/// that commit itself.
struct SinkStateRow: Sendable {
    var before: [String: String]
    var after: [String: String]
    var pending: StateCommit?

    static func table(for target: QualifiedName) -> QualifiedName {
        QualifiedName(schema: target.schema, name: "sluice_sink_state")
    }

    static func createSQL(_ table: QualifiedName) -> String {
        """
        CREATE TABLE IF NOT EXISTS \(SQLText.qualified(table)) (
            pipeline text PRIMARY KEY, target text NOT NULL, checkpoint_before jsonb NOT NULL,
            checkpoint_after jsonb NOT NULL, pending jsonb, commit_id text, committed_at timestamptz NOT NULL DEFAULT now())
        """
    }

    static func encode<T: Encodable>(_ value: T) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        encoder.dataEncodingStrategy = .base64
        return String(decoding: (try? encoder.encode(value)) ?? Data("{}".utf8), as: UTF8.self)
    }

    static func decode<T: Decodable>(_ type: T.Type, _ text: String?) -> T? {
        guard let text else { return nil }
        return try? JSONDecoder().decode(type, from: Data(text.utf8))
    }
}
