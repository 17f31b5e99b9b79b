import ArgumentParser
import Foundation
import SluiceConnectors
import SluiceCore
import SluiceDatabase
import SluicePostgres

struct CDCCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cdc",
        abstract: "Set up, tear down or re-snapshot a log-based CDC pipeline; install change triggers.",
        discussion: """
            A postgres_cdc pipeline creates its publication and replication slot by itself on its first
            run. These commands do it explicitly, printing every statement they run.

            Examples:
              sluice cdc setup orders_cdc -c pipelines.yaml          check the server, create publication and slot
              sluice cdc teardown orders_cdc -c pipelines.yaml --yes drop the slot (and publication), forget the checkpoint
              sluice cdc resnapshot orders_cdc -c pipelines.yaml --yes
                                         after a lost slot: drop it and the checkpoint; the next run snapshots again
              sluice cdc install-triggers --database "$PG_URL" --tables public.orders,public.items
                                         trigger-based CDC where logical decoding is not available
            """,
        subcommands: [Setup.self, Teardown.self, Resnapshot.self, InstallTriggers.self]
    )

    /// The CDC source of a pipeline, and the state store location.
    static func cdcSource(_ pipeline: String, config: String) async throws -> (any CDCAdministrable, String) {
        try await ConfigLoading.reportingErrors {
            let (state, plans) = try ConfigLoading.load([config])
            guard let plan = plans.first(where: { $0.name == pipeline }) else {
                throw ConfigFailure(errors: [
                    ConfigError(
                        file: config, line: nil, column: nil, keyPath: "pipelines",
                        message: "no pipeline named '\(pipeline)' (defined: \(plans.map(\.name).joined(separator: ", ")))")
                ])
            }
            guard let source = plan.source as? any CDCAdministrable else {
                throw SluiceError(
                    .configuration,
                    "pipeline '\(pipeline)' has a \(type(of: plan.source)) source; these commands are for log-based CDC sources (postgres_cdc, mysql_cdc)",
                    location: "pipelines.\(pipeline).source")
            }
            return (source, state)
        }
    }

    struct Setup: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Check the server's settings and create the pipeline's publication and slot.",
            discussion:
                "Prints what the server lacks (wal_level, REPLICATION privilege, free slots) with the statement that fixes it, and stops there; otherwise creates what is missing and prints the SQL. The first run then snapshots the tables while streaming."
        )

        @Argument(help: "The postgres_cdc pipeline.") var pipeline: String
        @Option(name: [.short, .long], help: "The pipeline file.") var config: String

        func run() async throws {
            let (source, _) = try await CDCCommand.cdcSource(pipeline, config: config)
            let missing = try await ConfigLoading.reportingErrors { try await source.missingServerSettings() }
            guard missing.isEmpty else {
                print("The server is not ready for log-based CDC:")
                for m in missing { print("  - \(m)") }
                throw ExitCode(1)
            }
            let done = try await ConfigLoading.reportingErrors { try await source.setUp() }
            for line in done { print(line) }
            print("ready: `sluice run` streams \(pipeline); its first run snapshots the tables' rows while streaming")
        }
    }

    struct Teardown: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Drop the pipeline's slot (and publication) and forget its checkpoint.",
            discussion: "A slot nobody reads keeps WAL forever: tear down pipelines you retire. Refuses while a process streams from the slot.")

        @Argument(help: "The postgres_cdc pipeline.") var pipeline: String
        @Option(name: [.short, .long], help: "The pipeline file.") var config: String
        @Flag(name: .long, help: "Leave the publication (other pipelines use it).") var keepPublication = false
        @Flag(name: .long, help: "Do it without asking.") var yes = false

        func run() async throws {
            let (source, state) = try await CDCCommand.cdcSource(pipeline, config: config)
            guard yes else {
                print(
                    "This drops \(source.objectsDropped(keepPublication: keepPublication)) and forgets the checkpoint of '\(pipeline)'. Re-run with --yes to confirm."
                )
                throw ExitCode(1)
            }
            let done = try await ConfigLoading.reportingErrors { try await source.tearDown(keepPublication: keepPublication) }
            for line in done { print(line) }
            let store = try await ConfigLoading.reportingErrors { try await BuiltinComponents.openState(state) }
            try await store.reset(pipeline: pipeline)
            print("forgot the checkpoint of \(pipeline)")
        }
    }

    struct Resnapshot: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Start a CDC pipeline over: drop its slot and checkpoint; the next run snapshots all tables again.",
            discussion: """
                For a slot that lost WAL (wal_status = lost), or a checkpoint that no longer matches the slot.
                Changes made while the slot was lost are not in the stream: the new snapshot brings every
                row's current version, but rows deleted meanwhile stay in current-state tables (truncate
                them before the next run for an exact copy) and audit trails miss those changes.
                """)

        @Argument(help: "The postgres_cdc pipeline.") var pipeline: String
        @Option(name: [.short, .long], help: "The pipeline file.") var config: String
        @Flag(name: .long, help: "Do it without asking.") var yes = false

        func run() async throws {
            let (source, state) = try await CDCCommand.cdcSource(pipeline, config: config)
            guard yes else {
                print(
                    "This drops \(source.objectsDropped(keepPublication: true)) and the checkpoint of '\(pipeline)'; the next run reads every row again. Re-run with --yes to confirm."
                )
                throw ExitCode(1)
            }
            let done = try await ConfigLoading.reportingErrors { try await source.tearDown(keepPublication: true) }
            for line in done { print(line) }
            let store = try await ConfigLoading.reportingErrors { try await BuiltinComponents.openState(state) }
            try await store.reset(pipeline: pipeline)
            print("forgot the checkpoint of \(pipeline); the next run creates the slot and snapshots the tables")
        }
    }
}

extension CDCCommand {
    struct InstallTriggers: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "install-triggers",
            abstract: "Trigger-based CDC: create a change table and triggers that record every change of the tables.",
            discussion: """
                For databases where logical decoding is not available (SQLite, PostgreSQL without
                wal_level = logical or without the REPLICATION privilege). Every insert, update and
                delete (and, on PostgreSQL, TRUNCATE) is written by the writing transaction itself into
                the change table, as a change event: op, table, key, before, after, tx_id, changed_at.
                Read it with a changelog pull (printed below); its events feed `mode: apply` sinks.
                Triggers cost the writers an extra insert per row change.

                Examples:
                  sluice cdc install-triggers --database "$PG_URL" --tables public.orders,public.items
                  sluice cdc install-triggers --database data/app.db --tables orders
                """)

        @Option(name: .long, help: "A postgres:// URL, or the path of a SQLite database file.") var database: String
        @Option(name: .long, help: "The tables to capture, comma-separated (schema.table on PostgreSQL).") var tables: String
        @Option(name: .long, help: "The change table (default: sluice_changes, in the first table's schema on PostgreSQL).") var changeTable: String?

        func run() async throws {
            let names = tables.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
            guard !names.isEmpty else { throw ValidationError("--tables names no table") }
            let statements: [String]
            let snippet: String
            if database.hasPrefix("postgres://") || database.hasPrefix("postgresql://") {
                let url = try await ConfigLoading.reportingErrors { try PostgresURL(database) }
                let qualified = try names.map { n -> QualifiedName in
                    guard let q = QualifiedName(parsing: n) else { throw ValidationError("'\(n)' is not a table name") }
                    return q
                }
                guard let changes = QualifiedName(parsing: changeTable ?? ((qualified[0].schema.map { "\($0)." } ?? "") + "sluice_changes")) else {
                    throw ValidationError("--change-table is not a table name")
                }
                let connection = try await ConfigLoading.reportingErrors { try await PostgresConnection.connect(url) }
                statements = try await ConfigLoading.reportingErrors {
                    try await connection.run { try TriggerCDC.install(tables: qualified, changeTable: changes, session: $0) }
                }
                snippet = """
                    source:
                      postgres: { url: "${PG_URL}", table: \(changes), mode: changelog, change_id: change_id,
                                  processed_column: processed, tx_column: tx_id, poll: { min: 1s, max: 30s } }
                    """
            } else {
                let path = database.hasPrefix("sqlite:") ? String(database.dropFirst("sqlite:".count)) : database
                statements = try await ConfigLoading.reportingErrors {
                    try SQLiteTriggerCDC.install(path: path, tables: names, changeTable: changeTable ?? "sluice_changes")
                }
                snippet = """
                    source:
                      sqlite: { path: \(path), table: \(changeTable ?? "sluice_changes"), mode: changelog, change_id: change_id,
                                processed_column: processed, poll: { min: 1s, max: 30s } }
                    """
            }
            for statement in statements { print(statement + ";") }
            print("\n-- capture installed for \(names.joined(separator: ", ")). Read the changes with:\n\(snippet)")
        }
    }
}
