import ArgumentParser
import Foundation
import Logging
import Metrics
import Prometheus
import ServiceLifecycle
import SluiceConnectors
import SluiceCore
import SluiceServer

struct RunCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Run the pipelines of one or more files.",
        discussion: """
            Every pipeline starts from its last checkpoint, so running again continues where the
            previous run stopped (after a crash too): nothing is lost or written twice.

            The command exits 0 once every finite source is exhausted and committed. It keeps
            running while any source is continuous (a watched directory), until SIGINT or SIGTERM:
            then it stops reading, writes and commits what it has read, and exits 0. Stopping is
            bounded: past `shutdown_timeout` (default 30s; a dependency that does not answer) or
            at a second signal it exits at once (status 1, or 128+signal), and what was not
            committed is read again on the next start.

            Exit status: 0 success, 1 a pipeline failed, 2 the configuration is invalid.

            Examples:
              sluice run examples/quickstart.yaml
              sluice run pipelines.yaml --pipeline events --metrics-port 9464
              sluice run pipelines.yaml --log-format json --no-progress
            """
    )

    @Argument(help: "Pipeline files (YAML).")
    var files: [String]

    @Option(name: .long, help: "Run only these pipelines (repeatable).")
    var pipeline: [String] = []

    @Option(name: .long, help: "Serve Prometheus metrics on http://127.0.0.1:PORT/metrics while running.")
    var metricsPort: Int?

    @Flag(name: .long, help: "Never draw the progress bar (it is drawn only when stderr is a terminal).")
    var noProgress = false

    @OptionGroup var logging: LoggingOptions

    /// For `Benchmarks/metrics_overhead_bench.py`: no metrics (swift-metrics' no-op handler) and
    /// no alert evaluation, to measure what they cost.
    @Flag(name: .customLong("benchmark-no-telemetry"), help: .hidden)
    var noTelemetry = false

    @Flag(name: .customLong("dashboard-writes"), help: "Let the dashboard (at / of --metrics-port) replay and drop dead letters; it is read-only otherwise.")
    var dashboardWrites = false

    func run() async throws {
        MemoryTuning.apply()
        let terminal = Terminal()
        let logger = logging.bootstrap(terminal: terminal)
        let registry = PrometheusCollectorRegistry()
        var factory = PrometheusMetricsFactory(registry: registry)
        factory.durationHistogramBuckets[PipelineMetrics.endToEndLatencyName] = PipelineMetrics.endToEndLatencyBuckets
        if noTelemetry {
            MetricsSystem.bootstrap(NOOPMetricsHandler.instance)
        } else {
            MetricsSystem.bootstrap(factory)
        }

        let (stateLocation, allPlans) = try await ConfigLoading.reportingErrors { try ConfigLoading.load(files) }
        let plans = try await ConfigLoading.reportingErrors { () throws -> [PipelinePlan] in
            guard !pipeline.isEmpty else { return allPlans }
            for name in pipeline where !allPlans.contains(where: { $0.name == name }) {
                throw ConfigFailure(errors: [
                    ConfigError(
                        file: files.joined(separator: ", "), line: nil, column: nil, keyPath: "",
                        message: "no pipeline named '\(name)' (defined: \(allPlans.map(\.name).joined(separator: ", ")))")
                ])
            }
            return allPlans.filter { pipeline.contains($0.name) }
        }
        try await ConfigLoading.reportingErrors {
            let pushed = plans.filter { $0.capabilities.contains(.servedByServe) }.map(\.name)
            if !pushed.isEmpty {
                throw ConfigFailure(errors: [
                    ConfigError(
                        file: files.joined(separator: ", "), line: nil, column: nil, keyPath: "pipelines",
                        message:
                            "pipeline(s) \(pushed.joined(separator: ", ")) have an `http` source, which only `sluice serve` feeds; run `sluice serve FILE` (or select other pipelines with --pipeline)"
                    )
                ])
            }
        }
        let store = try await ConfigLoading.reportingErrors { try await BuiltinComponents.openState(stateLocation) }

        let tap = TapHub()
        let runners = plans.map { plan in
            var runner = PipelineRunner(plan: plan, store: store, logger: logger, hooks: .fromProcessEnvironment)
            runner.tap = metricsPort == nil ? nil : tap
            return runner
        }
        let showProgress =
            terminal.isInteractive && !noProgress && logging.logFormat == .text
            && !plans.contains { $0.source.isContinuous }
        var supervisor = PipelineSupervisor(runners: runners, store: store, logger: logger, progress: showProgress ? terminal : nil)
        if noTelemetry { supervisor.alerts = nil }
        let history = metricsPort.map { _ in StatusHistory(statuses: runners.map(\.status)) }
        supervisor.history = history

        var services: [ServiceGroupConfiguration.ServiceConfiguration] = [
            .init(
                service: supervisor, successTerminationBehavior: .gracefullyShutdownGroup,
                failureTerminationBehavior: .gracefullyShutdownGroup)
        ]
        if let metricsPort {
            var server = MetricsServer(registry: registry, port: metricsPort, logger: logger, history: history)
            server.tap = tap
            server.sinks = plans.map { ($0.name, $0.sink) }
            server.backend = DashboardBackend(plans: plans, store: store, logger: logger, writes: dashboardWrites)
            services.append(.init(service: server))
            logger.info(
                "serving metrics and the dashboard",
                metadata: ["metrics": "http://127.0.0.1:\(metricsPort)/metrics", "dashboard": "http://127.0.0.1:\(metricsPort)/"])
        }
        var config = ServiceGroupConfiguration(services: services, gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)
        config.cancellationSignals = [.sigquit]
        let stop = BoundedStop(timeout: plans.map(\.settings.shutdownTimeout).max() ?? .seconds(30), logger: logger)
        try await ServiceGroup(configuration: config).run()
        _ = stop  // lives as long as the process (its signal sources hold it)
        if supervisor.failures.value > 0 {
            throw ExitCode(1)
        }
    }
}

/// Runs every pipeline concurrently and returns when all have finished.
struct PipelineSupervisor: Service {
    let runners: [PipelineRunner]
    let logger: Logger
    let progress: Terminal?
    let failures = FailureCount()
    /// Evaluates the pipelines' alert rules while they run.
    var alerts: AlertEngine?
    /// Samples the pipelines for the dashboard while they run.
    var history: StatusHistory?
    /// Cost accounting: what each pipeline uses, per hour, in the state store.
    let usage: UsageMeter

    init(runners: [PipelineRunner], store: any StateStore, logger: Logger, progress: Terminal?) {
        self.runners = runners
        self.logger = logger
        self.progress = progress
        alerts = AlertSetup.engine(for: runners, store: store, logger: logger)
        usage = UsageMeter(
            pipelines: runners.map {
                UsageMeter.Pipeline(
                    name: $0.plan.name, status: $0.status, requests: $0.plan.requests, pricing: $0.plan.settings.pricing,
                    continuous: $0.plan.source.isContinuous, batchLatency: Double($0.plan.settings.batch.maxLatency.components.seconds))
            }, store: store, logger: logger, clockShift: TestHooks.fromProcessEnvironment.usageClockShift)
    }

    func run() async throws {
        await withTaskGroup(of: Void.self) { outer in
            // The alert engine is stopped, never cancelled: its queued notifications get their
            // drain time after the pipelines end.
            if let alerts { outer.addTask { await alerts.run() } }
            outer.addTask { [usage] in await usage.run() }
            await withTaskGroup(of: Void.self) { group in
                if let progress {
                    group.addTask { [runners] in
                        await ProgressRenderer(terminal: progress, statuses: runners.map(\.status)).run()
                    }
                }
                if let history { group.addTask { await history.run() } }
                await withTaskGroup(of: Void.self) { pipelines in
                    for runner in runners {
                        pipelines.addTask { [logger, failures] in
                            do {
                                try await runner.run()
                            } catch {
                                failures.record(runner.plan.name)
                                logger.error("pipeline failed", metadata: ["pipeline": "\(runner.plan.name)", "error": "\(error)"])
                            }
                        }
                    }
                }
                group.cancelAll()
            }
            usage.stop()
            alerts?.stop()
        }
        for runner in runners {
            let s = runner.status.snapshot
            logger.info(
                "summary",
                metadata: [
                    "pipeline": "\(runner.plan.name)", "records_in": "\(s.recordsIn)", "records_out": "\(s.recordsOut)",
                    "dead_lettered": "\(s.deadLettered)", "duplicates": "\(s.duplicates)",
                ])
        }
    }
}

import Synchronization

/// Counts failed pipelines across tasks, by name.
final class FailureCount: Sendable {
    private let failed = Mutex<[String]>([])
    func record(_ pipeline: String) { failed.withLock { $0.append(pipeline) } }
    var value: Int { failed.withLock { $0.count } }
    var names: [String] { failed.withLock { $0 } }
}

extension PipelineSupervisor: CustomStringConvertible {
    var description: String { "PipelineSupervisor(\(runners.map(\.plan.name).joined(separator: ", ")))" }
}
