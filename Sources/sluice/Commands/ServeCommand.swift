import ArgumentParser
import Foundation
import Logging
import Metrics
import Prometheus
import ServiceLifecycle
import SluiceConnectors
import SluiceCore
import SluiceServer

struct ServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Serve the HTTP push endpoint and the schema registry API, and run the pipelines of a file.",
        discussion: """
            A file with only a `serve:` section (and `state:`) and no pipelines serves the schema
            registry API (and /healthz, /readyz, /metrics) alone.

            Every pipeline whose source is `http: {stream: NAME}` receives the records POSTed to
            /v1/streams/NAME/records. A request is answered 202 only once its records are durable
            in the push queue (in the state store), so nothing answered 2xx is lost, even by kill -9.
            The other pipelines of the file run as with `sluice run`.

            On SIGTERM or SIGINT the server drains: new pushes and /readyz get 503 (Connection: close)
            while the pipelines commit every record already answered 202, at most serve.drain_timeout
            (default 30s); then it exits. What is left stays queued, is logged per stream, and is
            delivered by the next start. SIGQUIT stops at once.

            Endpoints:
              POST /v1/streams/{stream}/records   JSON object, JSON array or NDJSON (Content-Type decides), gzip optional
              GET  /healthz                       alive
              GET  /readyz                        state store and sinks reachable, no pipeline failed
              GET  /metrics                       Prometheus metrics
              /subjects, /schemas, /config, /mode, /compatibility   the schema registry (Confluent Schema Registry API)

            Request headers: Idempotency-Key (retries are safe: a repeat returns the first answer),
            Authorization: Bearer slk_... (streams with `auth: api_key`; see `sluice keys create`),
            X-Sluice-Timestamp and X-Sluice-Signature (streams with `auth: hmac`).

            Security: the server listens on 127.0.0.1 unless told otherwise, and refuses another
            address while any stream has `auth: none` or registry writes need no key
            (`serve.registry_auth: api_key`), unless --allow-unauthenticated is given. Keys are
            made with `sluice keys create` (`--stream NAME`, `--all-streams`, `--registry write`).

            Examples:
              sluice serve examples/http-push.yaml
              sluice serve pipelines.yaml --host 0.0.0.0 --port 8443
              curl -X POST localhost:8080/v1/streams/clicks/records \\
                   -H 'Content-Type: application/json' -d '{"user_id": 1, "url": "/"}'
            """
    )

    @Argument(help: "The pipeline file (YAML).")
    var file: String

    @Option(name: .long, help: "Address to listen on (default: serve.host, or 127.0.0.1).")
    var host: String?

    @Option(name: .long, help: "Port to listen on (default: serve.port, or 8080; 0 picks a free port).")
    var port: Int?

    @Flag(name: .long, help: "Listen on a non-loopback address even though some stream has no authentication.")
    var allowUnauthenticated = false

    @Flag(
        name: .customLong("dashboard-writes"),
        help: "Let the dashboard (at /) replay and drop dead letters, behind the API key beyond loopback; it is read-only otherwise.")
    var dashboardWrites = false

    @Flag(name: .customLong("benchmark-noop-route"), help: .hidden)
    var noopRoute = false

    @OptionGroup var logging: LoggingOptions

    func run() async throws {
        MemoryTuning.apply()
        let terminal = Terminal()
        let logger = logging.bootstrap(terminal: terminal)
        let registry = PrometheusCollectorRegistry()
        var factory = PrometheusMetricsFactory(registry: registry)
        factory.durationHistogramBuckets[PipelineMetrics.endToEndLatencyName] = PipelineMetrics.endToEndLatencyBuckets
        MetricsSystem.bootstrap(factory)

        let loaded = try await ConfigLoading.reportingErrors { () throws -> LoadedConfig in
            // Pipelines are optional: a file with only `serve:` (and `state:`) serves the registry alone.
            do { return try ConfigLoading.loader().load(file: file, requirePipelines: false) } catch let e as ConfigError {
                throw ConfigFailure(errors: [e])
            }
        }
        var settings = PushServer.Settings()
        settings.host = host ?? loaded.serve?.host ?? "127.0.0.1"
        settings.port = port ?? loaded.serve?.port ?? 8080
        settings.tlsCertificate = loaded.serve?.tls?.certificate
        settings.tlsPrivateKey = loaded.serve?.tls?.privateKey
        settings.maxInflightBytes = loaded.serve?.maxInflightBytes ?? settings.maxInflightBytes
        settings.noopRoute = noopRoute

        // One stream per pipeline is checked when the file loads (as `sluice validate` does).
        let streams = ServeRules.streams(in: loaded.pipelines)
        settings.registryRequiresKey = loaded.serve?.registryAuth == "api_key"
        if let exposure = ServeRules.exposure(of: streams, host: settings.host, registryRequiresKey: settings.registryRequiresKey) {
            if allowUnauthenticated {
                logger.warning(
                    "listening on a non-loopback address with unauthenticated streams", metadata: ["host": "\(settings.host)", "problem": "\(exposure)"])
            } else {
                try await ConfigLoading.reportingErrors {
                    throw ConfigFailure(errors: [ConfigError(file: file, line: nil, column: nil, keyPath: "pipelines", message: exposure)])
                }
            }
        }
        let store = try await ConfigLoading.reportingErrors { try await BuiltinComponents.openState(loaded.state) }
        guard let queue = store.pushQueue else {
            // The file's pipelines were checked against the store's features when loaded; a
            // file without push streams still needs the queue for `serve`.
            FileHandle.standardError.write(Data("error: the state store '\(Redaction.url(loaded.state))' has no push queue; use a SQLite path\n".utf8))
            throw ExitCode(2)
        }

        let tap = TapHub()
        // The drain asks the push streams' pipelines to commit at once (see PushDrain).
        let pushPipelines = Set(streams.map(\.pipeline))
        var commitRequests: [CommitRequest] = []
        let runners = loaded.pipelines.map { plan in
            var runner = PipelineRunner(plan: plan, store: store, logger: logger, hooks: .fromProcessEnvironment)
            runner.tap = tap
            if pushPipelines.contains(plan.name) {
                let request = CommitRequest()
                runner.commitRequest = request
                commitRequests.append(request)
            }
            return runner
        }
        let history = StatusHistory(statuses: runners.map(\.status))
        let supervisor = {
            var s = PipelineSupervisor(runners: runners, store: store, logger: logger, progress: nil)
            s.history = history
            return s
        }()
        var server = PushServer(
            settings: settings, streams: streams, store: queue, state: store, registry: registry, logger: logger,
            failedPipelines: { supervisor.failures.names },
            onListening: { port in
                // For scripts that pass --port 0.
                FileHandle.standardOutput.write(Data("listening on port \(port)\n".utf8))
            })
        server.sinks = loaded.pipelines.map { ($0.name, $0.sink) }
        server.history = history
        server.tap = tap
        server.backend = DashboardBackend(plans: loaded.pipelines, store: store, logger: logger, writes: dashboardWrites)
        if let registryStore = store.schemaRegistry {
            server.schemaRegistry = SchemaRegistry(store: registryStore)
        }
        let drain = PushDrain(
            intake: server.intake, streams: streams, store: queue, timeout: loaded.serve?.drainTimeout ?? .seconds(30),
            failedPipelines: { supervisor.failures.names }, commitRequests: commitRequests, logger: logger)
        var config = ServiceGroupConfiguration(
            services: [
                // The server outlives its pipelines: a failed one makes /readyz answer 503 (and the
                // exit status 1 at shutdown) while accepted records stay durable in the queue.
                // Graceful shutdown goes in reverse order: the drain first (503s, until the
                // pipelines have committed the queue), then the pipelines, then the server.
                .init(service: server, successTerminationBehavior: .gracefullyShutdownGroup, failureTerminationBehavior: .gracefullyShutdownGroup),
                .init(service: supervisor, successTerminationBehavior: .ignore, failureTerminationBehavior: .gracefullyShutdownGroup),
                .init(service: drain),
            ], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)
        config.cancellationSignals = [.sigquit]
        // The drain is part of the graceful stop: the bound is the drain's time plus the pipelines'.
        // Lives as long as the process (its signal sources hold it).
        _ = BoundedStop(timeout: (loaded.serve?.drainTimeout ?? .seconds(30)) + loaded.shutdownTimeout, logger: logger)
        do {
            try await ServiceGroup(configuration: config).run()
        } catch let error as SluiceError {
            FileHandle.standardError.write(Data("error: \(error)\n".utf8))
            throw ExitCode(error.code == .configuration ? 2 : 1)
        }
        await reportLeftQueued(streams, queue: queue, logger: logger)
        if supervisor.failures.value > 0 { throw ExitCode(1) }
    }

    /// After the pipelines stopped: what stays in the push queue (durable, read on the next start).
    func reportLeftQueued(_ streams: [PushStream], queue: any PushQueueStore, logger: Logger) async {
        guard !streams.isEmpty else { return }
        var left: [String] = []
        for stream in streams.sorted(by: { $0.options.stream < $1.options.stream }) {
            guard let backlog = try? await queue.backlog(stream: stream.options.stream), backlog.requests > 0 else { continue }
            left.append("\(stream.options.stream): \(backlog.records) records in \(backlog.requests) requests")
            logger.warning(
                "records left queued; they are durable and delivered on the next start",
                metadata: [
                    "stream": "\(stream.options.stream)", "pipeline": "\(stream.pipeline)",
                    "records": "\(backlog.records)", "requests": "\(backlog.requests)",
                ])
        }
        if left.isEmpty {
            logger.info("stopped with nothing left queued")
        } else {
            logger.warning("stopped with records left queued", metadata: ["left_queued": "\(left.joined(separator: "; "))"])
        }
    }
}
