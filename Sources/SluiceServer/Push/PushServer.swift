import Foundation
import Hummingbird
import HummingbirdCore
import HummingbirdTLS
import Logging
import Prometheus
import ServiceLifecycle
import SluiceCore

/// The HTTP server of `sluice serve`: the push endpoint, `/healthz`, `/readyz` and `/metrics`.
///
/// It runs the group-commit writer and the idempotency-key sweeper as child tasks, and stops
/// them only after the HTTP server has drained, so every request in flight gets its answer.
///
/// Once its ``intake`` drains (``PushDrain``, on SIGTERM), new pushes and `/readyz` get 503
/// with `Connection: close`; the server keeps listening until its own graceful shutdown.
public struct PushServer: Service {
    public struct Settings: Sendable {
        public var host = "127.0.0.1"
        public var port = 8080
        public var tlsCertificate: String?
        public var tlsPrivateKey: String?
        /// Bytes of request bodies held at once. Bodies from senders not known yet (signed
        /// webhooks before their signature is checked, open streams) may hold a quarter of it,
        /// or all of it when no stream authenticates its senders (see ``InflightBudget``).
        public var maxInflightBytes = 64 << 20
        /// Write endpoints of the schema registry API need an API key with the scope `registry:write`.
        public var registryRequiresKey = false
        /// Adds `POST /bench/noop` (answers 204 without reading anything): the HTTP stack's ceiling, for benchmarks.
        public var noopRoute = false
        /// The longest a request body may take to arrive (then 408 `body-timeout`).
        public var bodyTimeout: Duration = .seconds(30)
        /// A connection with nothing sent or received for this long is closed (a body that
        /// stalls included).
        public var idleTimeout: Duration = .seconds(60)

        public init() {}
    }

    public var settings: Settings
    public var streams: [PushStream]
    /// The durable queue accepted records go to (a state store's ``StateStore/pushQueue``).
    public var store: any PushQueueStore
    /// The state store `/readyz` checks.
    public var state: any CheckpointStore
    public var registry: PrometheusCollectorRegistry
    public var logger: Logger
    /// Names of pipelines that have failed (they make `/readyz` answer 503).
    public var failedPipelines: @Sendable () -> [String]
    /// Called once the server listens, with the bound port (useful with port 0).
    public var onListening: @Sendable (Int) -> Void
    /// The group-commit writer (made by the server unless given, e.g. by a test that counts appends).
    public var groupCommitQueue: GroupCommitQueue?
    /// Serves the Confluent-compatible schema registry API when set.
    public var schemaRegistry: SchemaRegistry?
    /// The pipelines' sinks, checked by `/readyz` (``Sink/checkReachable()``).
    public var sinks: [(pipeline: String, sink: any Sink)] = []
    /// The pipelines' recent history, for the dashboard (`/` and `/api/v1/status`).
    public var history: StatusHistory?
    /// Live samples for `sluice tap` (`/api/v1/tap`).
    public var tap: TapHub?
    /// The dashboard's page per pipeline (runs, checkpoint, dead letters; replay and drop).
    public var backend: DashboardBackend?
    /// Admits push requests until it drains (shared with ``PushDrain``).
    public var intake = PushIntake()
    /// The memory budget of request bodies (made from the settings unless given, e.g. by a test
    /// that watches what the bodies in flight hold).
    public var inflightBudget: InflightBudget?

    public init(
        settings: Settings, streams: [PushStream], store: any PushQueueStore, state: any CheckpointStore,
        registry: PrometheusCollectorRegistry,
        logger: Logger, failedPipelines: @escaping @Sendable () -> [String] = { [] },
        onListening: @escaping @Sendable (Int) -> Void = { _ in }
    ) {
        self.settings = settings
        self.streams = streams
        self.store = store
        self.state = state
        self.registry = registry
        self.logger = logger
        self.failedPipelines = failedPipelines
        self.onListening = onListening
    }

    public func run() async throws {
        let queue = groupCommitQueue ?? GroupCommitQueue(store: store)
        let endpoint = PushEndpoint(
            streams: streams, store: store, queue: queue, inflight: inflightBudget ?? Self.inflightBudget(settings, streams: streams),
            bodyTimeout: settings.bodyTimeout, intake: intake, logger: logger)
        // Before listening: the fields of records still queued count towards each stream's columns.
        try await endpoint.learnQueuedFields()
        let router = makeRouter(endpoint)
        var configuration = ApplicationConfiguration(address: .hostname(settings.host, port: settings.port), serverName: nil)
        configuration.backlog = 1024
        let onListening = self.onListening
        let logger = self.logger
        let scheme = settings.tlsCertificate == nil ? "http" : "https"
        let server: HTTPServerBuilder
        if let cert = settings.tlsCertificate, let key = settings.tlsPrivateKey {
            server = try .tls(
                .http1(configuration: Self.http1(idleTimeout: settings.idleTimeout)),
                tlsConfiguration: Self.tlsConfiguration(certificate: cert, privateKey: key))
        } else {
            server = .http1(configuration: Self.http1(idleTimeout: settings.idleTimeout))
        }
        let app = Application(
            router: router, server: server, configuration: configuration,
            onServerRunning: { channel in
                let port = channel.localAddress?.port ?? 0
                logger.info("serving", metadata: ["url": "\(scheme)://\(channel.localAddress?.ipAddress ?? "?"):\(port)"])
                onListening(port)
            }, logger: logger)
        // Keys live for the longest idempotency TTL, and signed requests' replay keys for their window.
        let maxTTL =
            streams.map { s in max(s.options.idempotencyTTL, s.options.hmac.map { WebhookSignature.replayWindow(tolerance: $0.tolerance) } ?? .zero) }
            .max() ?? .seconds(7 * 86_400)
        let store = self.store
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { await queue.run() }
            group.addTask {
                // Sweep expired idempotency keys now and then.
                while !Task.isCancelled {
                    let before = Date().addingTimeInterval(-Double(maxTTL.components.seconds))
                    if let n = try? await store.sweepIdempotencyKeys(before: before), n > 0 {
                        logger.info("swept idempotency keys", metadata: ["count": "\(n)"])
                    }
                    try? await Task.sleep(for: .seconds(600))
                }
            }
            do {
                // As a service of the command's group (not `runService()`, which handles SIGTERM
                // itself): it stops listening only when that group shuts it down, after the drain.
                try await app.run()
            } catch {
                group.cancelAll()
                throw error
            }
            group.cancelAll()
            try await group.waitForAll()
        }
    }

    /// The memory budget the settings describe for `streams`: with no stream that authenticates
    /// its senders, there is no one to keep a share for.
    static func inflightBudget(_ settings: Settings, streams: [PushStream]) -> InflightBudget {
        let everyStreamOpen = streams.allSatisfy { $0.options.auth == .none }
        return InflightBudget(limit: settings.maxInflightBytes, anonymousLimit: everyStreamOpen ? settings.maxInflightBytes : nil)
    }

    /// Idle connections are closed after `idleTimeout` (a minute by default); a slow body is cut
    /// off by the endpoint's body timeout. Requests the HTTP parser refuses get a problem
    /// document (``ParserErrorProblems``).
    static func http1(idleTimeout: Duration) -> HTTP1Channel.Configuration {
        let seconds = max(1, idleTimeout.components.seconds)
        return HTTP1Channel.Configuration(additionalChannelHandlers: [ParserErrorProblems()], idleTimeout: .seconds(seconds))
    }

    static func tlsConfiguration(certificate: String, privateKey: String) throws -> TLSConfiguration {
        do {
            let chain = try NIOSSLCertificate.fromPEMFile(certificate)
            let key = try NIOSSLPrivateKey(file: privateKey, format: .pem)
            return TLSConfiguration.makeServerConfiguration(certificateChain: chain.map { .certificate($0) }, privateKey: .privateKey(key))
        } catch {
            throw SluiceError(
                .configuration,
                "cannot load the TLS certificate '\(certificate)' or key '\(privateKey)': \(error). "
                    + "Both must be PEM files (e.g. `openssl req -x509 -newkey rsa:2048 -nodes -keyout server.key -out server.pem`).",
                location: "serve.tls")
        }
    }

    func makeRouter(_ endpoint: PushEndpoint) -> Router<BasicRequestContext> {
        let router = Router()
        router.post("/v1/streams/:stream/records") { request, context -> Response in
            let name = context.parameters.get("stream") ?? ""
            return await endpoint.handle(request, stream: name)
        }
        router.get("/healthz") { _, _ in Response(status: .ok, headers: [.contentType: "text/plain"], body: .init(byteBuffer: ByteBuffer(string: "ok\n"))) }
        let state = self.state
        let failed = self.failedPipelines
        let logger = self.logger
        let sinks = self.sinks
        let intake = self.intake
        router.get("/readyz") { _, _ -> Response in
            if intake.isDraining {
                // Shutting down: a load balancer takes the instance out.
                var p = Problem(.serviceUnavailable, "shutting-down", "Shutting down", detail: "the server is draining before it stops")
                p.extraHeaders[.retryAfter] = "5"
                p.extraHeaders[.connection] = "close"
                return p.response()
            }
            var problems: [String] = []
            do {
                _ = try await state.checkpoint(pipeline: "")
            } catch {
                logger.error("readiness: the state store is unreachable", metadata: ["error": "\(error)"])
                problems.append("the state store is unreachable (see the server log)")
            }
            for name in failed() { problems.append("pipeline '\(name)' has failed") }
            for (pipeline, sink) in sinks {
                do {
                    try await sink.checkReachable()
                } catch {
                    logger.warning("readiness: a sink is not reachable", metadata: ["pipeline": "\(pipeline)", "error": "\(error)"])
                    problems.append("the sink of pipeline '\(pipeline)' is not reachable (see the server log)")
                }
            }
            if problems.isEmpty {
                return Response(status: .ok, headers: [.contentType: "text/plain"], body: .init(byteBuffer: ByteBuffer(string: "ready\n")))
            }
            var p = Problem(.serviceUnavailable, "not-ready", "Not ready", detail: problems.joined(separator: "; "))
            p.extraHeaders[.retryAfter] = "5"
            return p.response()
        }
        MetricsServer.addMetricsRoute(to: router, registry: registry)
        if let history {
            // Beyond loopback the dashboard's data needs an API key, as writes do.
            let open = ServeRules.isLoopback(settings.host)
            DashboardRoutes.add(to: router, history: history, tap: tap, backend: backend) { request in
                guard !open else { return nil }
                do {
                    _ = try await endpoint.authenticateKey(request.headers, stream: "dashboard", forbidden: "this key may not read the dashboard") { _ in true }
                    return nil
                } catch let refused as PushEndpoint.ProblemThrown {
                    return refused.problem.response()
                } catch {
                    return Problem(.internalServerError, "internal", "Internal error", detail: "the API key could not be checked").response()
                }
            }
        }
        if let schemaRegistry {
            let requiresKey = settings.registryRequiresKey
            RegistryRoutes(
                registry: schemaRegistry,
                authorizeWrite: { request in
                    guard requiresKey else { return nil }
                    do {
                        _ = try await endpoint.authenticateRegistryWriter(request.headers)
                        return nil
                    } catch let refused as PushEndpoint.ProblemThrown {
                        let forbidden = refused.problem.status == .forbidden
                        return RegistryRoutes.error(
                            forbidden
                                ? RegistryError(40301, "Forbidden: this key may not write to the schema registry (create one with --registry write)")
                                : RegistryError(40101, "Unauthorized"))
                    } catch {
                        return RegistryRoutes.error(error)
                    }
                }
            ).add(to: router)
        }
        if settings.noopRoute {
            router.post("/bench/noop") { _, _ in Response(status: .noContent) }
        }
        // Last, so it wraps only the not-found responder.
        router.add(middleware: NotFoundProblems(registry: schemaRegistry != nil))
        return router
    }
}

extension PushServer: CustomStringConvertible {
    public var description: String { "PushServer(\(settings.host):\(settings.port))" }
}
