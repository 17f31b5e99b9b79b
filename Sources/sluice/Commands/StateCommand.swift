import ArgumentParser
import Foundation
import SluiceConnectors
import SluiceCore

struct StateCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "state",
        abstract: "Show or reset a pipeline's checkpoint.",
        discussion: """
            Examples:
              sluice state show events                 checkpoint, recent runs and DLQ count
              sluice state show events -c pipelines.yaml
              sluice state reset events --yes          forget the checkpoint: the next run starts over
              sluice state migrate -c pipelines.yaml --to postgres://sluice@db/sluice --yes
                                                       move the state to a shared PostgreSQL store
              sluice state export -c pipelines.yaml --output state.ndjson
              sluice state import -c pipelines.yaml --input state.ndjson --yes
            """,
        subcommands: [Show.self, Reset.self, Migrate.self, Export.self, Import.self]
    )

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show a pipeline's checkpoint, recent runs and dead-letter count.")

        @Argument(help: "The pipeline name.") var pipeline: String
        @OptionGroup var stateOptions: StateOptions
        @Option(name: .long, help: "How many recent runs to show.") var runs = 5

        func run() async throws {
            let store = try await ConfigLoading.reportingErrors { try await BuiltinComponents.openState(try stateOptions.location()) }
            let checkpoint = try await store.checkpoint(pipeline: pipeline)
            print("pipeline: \(pipeline)")
            if checkpoint.partitions.isEmpty {
                print("checkpoint: none (the next run starts from the beginning)")
            } else {
                print("checkpoint (\(checkpoint.partitions.count) partition(s)):")
                for key in checkpoint.partitions.keys.sorted() { print("  \(key.isEmpty ? "(default)" : key): \(checkpoint.partitions[key]!)") }
            }
            print("dead letters: \(try await store.deadLetterCount(pipeline: pipeline))")
            let history = try await store.runs(pipeline: pipeline, limit: runs)
            if !history.isEmpty {
                print("recent runs:")
                for r in history {
                    let ended = r.endedAt.map { String(format: "%.1fs", $0.timeIntervalSince(r.startedAt)) } ?? "running"
                    print(
                        "  #\(r.id) \(r.status.rawValue) started \(r.startedAt) (\(ended)) in=\(r.recordsIn) out=\(r.recordsOut) dlq=\(r.deadLettered) dup=\(r.duplicates)"
                            + (r.message.map { " — \($0)" } ?? ""))
                }
            }
        }
    }

    struct Reset: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Forget a pipeline's checkpoint, dedupe keys and pending intents (dead letters and run history stay).")

        @Argument(help: "The pipeline name.") var pipeline: String
        @OptionGroup var stateOptions: StateOptions
        @Flag(name: .long, help: "Do it without asking.") var yes = false

        func run() async throws {
            guard yes else {
                print("This makes the next run of '\(pipeline)' read its source from the beginning. Re-run with --yes to confirm.")
                throw ExitCode(1)
            }
            let store = try await ConfigLoading.reportingErrors { try await BuiltinComponents.openState(try stateOptions.location()) }
            try await store.reset(pipeline: pipeline)
            print("reset \(pipeline)")
        }
    }

    struct Migrate: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Move the state to another store (SQLite to PostgreSQL, or back).",
            discussion: """
                Copies everything the state holds (checkpoints and their history, dedupe keys, dead
                letters, runs, schedule claims, file intents, the schema registry, alerts and usage)
                into an empty store at --to, through an export file kept beside it as a backup, then
                reads the copy back and compares rows and checksums table by table. Refuses while
                another process uses either store. The original is left as it was.

                Afterwards set `state:` in the pipeline files to the new location: the pipelines
                continue exactly where they stopped.
                """)

        @OptionGroup var stateOptions: StateOptions
        @Option(name: .long, help: "Where the state goes: a postgres:// URL or a SQLite file path.") var to: String
        @Option(name: .long, help: "Where the export file goes (default: sluice-state-<time>.ndjson here).") var export: String?
        @Flag(name: .long, help: "Do it without asking.") var yes = false

        func run() async throws {
            let from = try await ConfigLoading.reportingErrors { try stateOptions.location() }
            guard from != to else {
                FileHandle.standardError.write(Data("error: --to is where the state already is\n".utf8))
                throw ExitCode(2)
            }
            guard yes else {
                print("This copies the state at \(Redaction.url(from)) into \(Redaction.url(to)) (which must be empty). Re-run with --yes to confirm.")
                throw ExitCode(1)
            }
            try await ConfigLoading.reportingErrors {
                let source = try await StateTransferRun.open(from)
                try await StateTransferRun.requireAlone(source, from)
                try await StateTransferRun.requireFeatures(of: source, for: to)
                let target = try await StateTransferRun.open(to)
                try await StateTransferRun.requireAlone(target, to)
                try await StateTransferRun.requireEmpty(target, to)
                let file = export ?? StateCommand.defaultExportPath()
                let exported = try await StateTransferRun.export(source, from: from, to: file)
                print("exported \(exported.rows.values.reduce(0, +)) rows from \(Redaction.url(from)) to \(file)")
                let imported = try await StateTransferRun.importFile(file, into: target)
                print("imported them into \(Redaction.url(to)); reading the copy back:")
                try StateTransferRun.verify(expected: imported, actual: try await StateTransferRun.summary(of: target), target: to)
                print("done. Set `state: \(Redaction.url(to))` in the pipeline files; the pipelines continue where they stopped.")
                print("The state at \(Redaction.url(from)) is unchanged; \(file) is a copy of it.")
            }
        }
    }

    struct Export: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Write the whole state to a file (NDJSON, with row counts and checksums).",
            discussion: "A consistent snapshot, also while pipelines run. `sluice state import` reads it into an empty store of either kind.")

        @OptionGroup var stateOptions: StateOptions
        @Option(name: [.short, .long], help: "The file to write (it must not exist).") var output: String

        func run() async throws {
            try await ConfigLoading.reportingErrors {
                let from = try stateOptions.location()
                guard !FileManager.default.fileExists(atPath: output) else {
                    throw SluiceError(.configuration, "\(output) exists; name a new file", location: "--output")
                }
                let store = try await StateTransferRun.open(from)
                let summary = try await StateTransferRun.export(store, from: from, to: output)
                for table in StateTables.all.map(\.name) where summary.rows[table] != nil {
                    print("\(table): \(summary.rows[table]!) rows")
                }
                print("wrote \(output)")
            }
        }
    }

    struct Import: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Read a file of `sluice state export` into an empty state store.",
            discussion:
                "All or nothing, in one transaction; refuses a store that holds anything or that another process uses, and a file whose rows do not match its checksums."
        )

        @OptionGroup var stateOptions: StateOptions
        @Option(name: [.short, .long], help: "The export file.") var input: String
        @Flag(name: .long, help: "Do it without asking.") var yes = false

        func run() async throws {
            let to = try await ConfigLoading.reportingErrors { try stateOptions.location() }
            guard yes else {
                print("This imports \(input) into the state store at \(Redaction.url(to)) (which must be empty). Re-run with --yes to confirm.")
                throw ExitCode(1)
            }
            try await ConfigLoading.reportingErrors {
                let target = try await StateTransferRun.open(to)
                try await StateTransferRun.requireAlone(target, to)
                try await StateTransferRun.requireEmpty(target, to)
                let imported = try await StateTransferRun.importFile(input, into: target)
                print("imported \(input) into \(Redaction.url(to)); reading the copy back:")
                try StateTransferRun.verify(expected: imported, actual: try await StateTransferRun.summary(of: target), target: to)
                print("done")
            }
        }
    }

    /// `sluice-state-<UTC time>.ndjson` in the working directory.
    static func defaultExportPath() -> String {
        let f = DateFormatter()
        f.locale = Locale(identifier: "en_US_POSIX")
        f.timeZone = TimeZone(identifier: "UTC")
        f.dateFormat = "yyyyMMdd'T'HHmmss'Z'"
        let stem = "sluice-state-\(f.string(from: Date()))"
        var path = stem + ".ndjson", n = 1
        while FileManager.default.fileExists(atPath: path) {
            n += 1
            path = "\(stem)-\(n).ndjson"
        }
        return path
    }
}
