import ArgumentParser
import Foundation
import Logging
import ServiceLifecycle
import SluiceConnectors
import SluiceCore
import SluicePostgres

struct BackfillCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "backfill",
        abstract: "Re-extract a historical range of a pipeline's pull into its sink.",
        discussion: """
            Reads the rows whose first cursor column lies in [--from, --to) from the pipeline's source
            (an incremental postgres pull, or an http_api pull with `incremental`: it sends --from as
            the cursor parameter, --to as `until_param` when the API takes one, and keeps the records
            in the range) and writes them through the pipeline's sink, Parquet rows
            landing in their partitions. The backfill keeps its own checkpoint
            (`PIPELINE.backfill.FROM_TO`), so it never moves the live pipeline's, and it resumes where
            it stopped after a crash or Ctrl-C: run the same command again. A finished backfill is not
            repeated unless --restart is given.

            With --parallel N (postgres) the range is cut into N key ranges of about equal size, pulled at once.

            A backfill adds rows: for an append or Parquet sink, backfill only a range the live pipeline
            has not loaded (or use an upsert sink).

            Examples:
              sluice backfill orders --from 2026-01-01 --to 2026-02-01 -c pipelines.yaml
              sluice backfill orders --from "2026-01-01 00:00:00+00" --to 2026-01-02 --parallel 4 -c pipelines.yaml
            """
    )

    @Argument(help: "The pipeline whose source to backfill.")
    var pipeline: String

    @Option(name: .long, help: "Start of the range (inclusive), in the cursor column's type: 2026-01-01, \"2026-01-01 12:00:00+00\", 1000.")
    var from: String

    @Option(name: .long, help: "End of the range (exclusive).")
    var to: String

    @Option(name: .long, help: "Readers pulling key ranges at once (1-64).")
    var parallel: Int = 1

    @Option(name: [.short, .long], help: "The pipeline file.")
    var config: String

    @Flag(name: .long, help: "Run this range again from the start (its rows are written again).")
    var restart = false

    @Flag(name: .long, help: "Never draw the progress bar.")
    var noProgress = false

    @OptionGroup var logging: LoggingOptions

    func validate() throws {
        guard (1...64).contains(parallel) else { throw ValidationError("--parallel must be between 1 and 64") }
    }

    func run() async throws {
        MemoryTuning.apply()
        let terminal = Terminal()
        let logger = logging.bootstrap(terminal: terminal)
        let (stateLocation, plans) = try await ConfigLoading.reportingErrors { try ConfigLoading.load([config]) }
        let plan = try await ConfigLoading.reportingErrors { () throws -> PipelinePlan in
            guard let live = plans.first(where: { $0.name == pipeline }) else {
                throw ConfigFailure(errors: [
                    ConfigError(
                        file: config, line: nil, column: nil, keyPath: "pipelines",
                        message: "no pipeline named '\(pipeline)' (defined: \(plans.map(\.name).joined(separator: ", ")))")
                ])
            }
            guard let source = live.source as? any BackfillableSource else {
                throw SluiceError(
                    .configuration,
                    "pipeline '\(pipeline)' has a \(type(of: live.source)) source, which cannot backfill; backfills re-read a range of an incremental postgres or http_api pull",
                    location: "pipelines.\(pipeline).source")
            }
            if let option = live.sink.replacesOutputEachPass {
                throw SluiceError(
                    .configuration,
                    "pipeline '\(pipeline)' replaces its table on each extract; a backfill of a range would replace it with that range only. Backfill into an append or upsert sink",
                    location: "pipelines.\(pipeline).sink.\(option)")
            }
            var plan = live
            plan.name = Self.checkpointName(pipeline: pipeline, from: from, to: to)
            plan.source = try source.backfill(from: from, to: to, parallel: parallel)
            return plan
        }
        let store = try await ConfigLoading.reportingErrors { try await BuiltinComponents.openState(stateLocation) }
        let checkpoint = try await store.checkpoint(pipeline: plan.name)
        let slices = checkpoint.sourcePartitions  // a JetStream sink keeps its numbering beside them
        let finished = !slices.isEmpty && slices.values.allSatisfy { $0.contains("\"done\":true") }
        // Slices are checkpoint partitions named `table#i/N`: resuming needs the same N.
        let startedWith = slices.keys.compactMap { key -> Int? in
            guard let hash = key.lastIndex(of: "#") else { return 1 }
            return key[hash...].split(separator: "/").last.flatMap { Int($0) }
        }.max()
        if !restart, !finished, let started = startedWith, started != parallel {
            FileHandle.standardError.write(
                Data("error: this backfill was started with --parallel \(started); resume it with the same value, or pass --restart\n".utf8))
            throw ExitCode(2)
        }
        if restart {
            try await store.reset(pipeline: plan.name)
        } else if finished {
            logger.notice("this backfill already finished; pass --restart to run it again", metadata: ["backfill": "\(plan.name)"])
            return
        } else if !slices.isEmpty {
            logger.info("resuming the backfill where it stopped", metadata: ["backfill": "\(plan.name)"])
        }
        logger.info("backfill starting", metadata: ["backfill": "\(plan.name)", "from": "\(from)", "to": "\(to)", "parallel": "\(parallel)"])
        let runner = PipelineRunner(plan: plan, store: store, logger: logger, hooks: .fromProcessEnvironment)
        let showProgress = terminal.isInteractive && !noProgress && logging.logFormat == .text
        let supervisor = PipelineSupervisor(runners: [runner], store: store, logger: logger, progress: showProgress ? terminal : nil)
        var group = ServiceGroupConfiguration(
            services: [
                .init(service: supervisor, successTerminationBehavior: .gracefullyShutdownGroup, failureTerminationBehavior: .gracefullyShutdownGroup)
            ], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)
        group.cancellationSignals = [.sigquit]
        let stop = BoundedStop(timeout: plan.settings.shutdownTimeout, logger: logger)
        try await ServiceGroup(configuration: group).run()
        _ = stop  // lives as long as the process (its signal sources hold it)
        if supervisor.failures.value > 0 { throw ExitCode(1) }
    }

    /// The backfill's own pipeline name in the state store: readable, and unique per exact range
    /// (a hash of the raw bounds, since `+02` and `-02` read alike once made safe for names).
    static func checkpointName(pipeline: String, from: String, to: String) -> String {
        let safe = { (s: String) in String(s.prefix(19).map { $0.isLetter || $0.isNumber || $0 == "-" ? $0 : "_" }) }
        var hash: UInt32 = 2_166_136_261
        for byte in "\(from)|\(to)".utf8 { hash = (hash ^ UInt32(byte)) &* 16_777_619 }
        return "\(pipeline).backfill.\(safe(from))_\(safe(to)).\(String(hash, radix: 16))"
    }
}
