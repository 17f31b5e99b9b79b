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

    public var replacesOutputEachPass: String? { options.mode == .replace ? "postgres.mode" : nil }

    /// `append` and `upsert` take a replay's rows in a transaction of their own (with its own
    /// `sluice_sink_state` row). `replace` would load them into the next extract's staging table,
    /// and `apply` would apply old changes after newer ones.
    public var deadLetterReplay: DeadLetterReplaySupport {
        switch options.mode {
        case .append, .upsert: .ownTransaction
        case .replace: .unsupported("a `replace` target is rebuilt by each extract: run the extract again instead of a replay")
        case .apply: .unsupported("`apply` changes must land in commit order: resnapshot the table (`sluice cdc resnapshot`) instead of a replay")
        }
    }

    public static let spec = ComponentSpec(
        type: "postgres",
        summary: "a PostgreSQL table: append, upsert by key, or replace (staged and swapped); exactly once",
        options: [
            OptionSpec(
                "url", .string, required: true, example: #""${PG_URL}""#, secret: true,
                "`postgres://user:password@host:5432/db`, as for the `postgres` source. The password is never logged."),
            OptionSpec(
                "table", .string, required: true, example: "analytics.orders",
                "`table` or `schema.table`, created from the data's schema when missing (see `create`). With `mode: apply`, the name may be a template such as `analytics.{table}` (also `{schema}`), filled from each change's source table."
            ),
            OptionSpec(
                "mode", .choice(["append", "upsert", "replace", "apply"]), default: "append", example: "replace",
                "`append` inserts; `upsert` merges by `key` (`INSERT … ON CONFLICT … DO UPDATE`); `replace` loads a staging table `<table>__sluice_staging`, swapped in by rename when the extract's pass ends; `apply` applies change events (of `postgres_cdc` or a trigger change table) to current-state tables."
            ),
            OptionSpec(
                "key", .list(.string), example: "[id]",
                "`upsert` (and required by it): the merge key, which needs a unique index. Also the primary key of a table Sluice creates (with `apply`, default: the events' `key`), and with `apply` the key of a target that has no primary key."
            ),
            OptionSpec(
                "soft_delete", .string, example: "deleted_at", requires: ["mode: upsert", "key: [id]"],
                "`upsert`: a column whose value, when set (not null), deletes the row from the target by key instead of merging it."),
            OptionSpec(
                "create", .boolean, default: "true", example: "false",
                "Create a missing table from the data's schema (with `false`, a missing table stops the pipeline)."),
            OptionSpec(
                "commit_rows", .integer(1...100_000_000), default: "100000", example: "50000",
                "Commit (rows and checkpoint in one PostgreSQL transaction) after this many rows (or 64 MB held), or after `commit_interval`, whichever comes first."
            ),
            OptionSpec(
                "commit_interval", .duration, default: "2s", example: "200ms",
                "Commit at least this often while rows flow (see `commit_rows`)."),
        ],
        example: """
            sink:
              postgres: { url: "${WAREHOUSE_URL}", table: analytics.orders, mode: upsert, key: [id] }
            """,
        exampleFile: "examples/postgres-to-postgres.yaml"
    )

    public static let factory = SinkFactory(spec: spec) { config, _ in
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
