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
            """,
        subcommands: [Show.self, Reset.self]
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
}
