import Hummingbird
import Logging
import Prometheus
import ServiceLifecycle
import SluiceCore

/// Serves `GET /metrics` (Prometheus text format), `GET /healthz`, `GET /readyz` and the
/// dashboard (`GET /`, `GET /api/v1/status`) on a loopback port.
public struct MetricsServer: Service {
    public let registry: PrometheusCollectorRegistry
    public let host: String
    public let port: Int
    public let logger: Logger
    /// The pipelines' recent history, for the dashboard (`/` and `/api/v1/status`).
    public var history: StatusHistory?
    /// Live samples for `sluice tap` (`/api/v1/tap`).
    public var tap: TapHub?
    /// The dashboard's page per pipeline (runs, checkpoint, dead letters; replay and drop).
    public var backend: DashboardBackend?
    /// The sinks of the running pipelines, by pipeline: `/readyz` checks that each can be
    /// reached (``Sink/checkReachable()``), as `sluice serve`'s does.
    public var sinks: [(pipeline: String, sink: any Sink)] = []

    public init(registry: PrometheusCollectorRegistry, host: String = "127.0.0.1", port: Int, logger: Logger, history: StatusHistory? = nil) {
        self.history = history
        self.registry = registry
        self.host = host
        self.port = port
        self.logger = logger
    }

    public func run() async throws {
        let router = Router()
        Self.addMetricsRoute(to: router, registry: registry)
        router.get("/healthz") { _, _ in "ok\n" }
        let statuses = history?.statuses ?? []
        let sinks = self.sinks
        router.get("/readyz") { _, _ -> Response in
            // The sinks are checked at once: a probe waits for the slowest, not for their sum.
            let unreachable = await withTaskGroup(of: String?.self) { group in
                for (pipeline, sink) in sinks where !(statuses.first { $0.pipeline == pipeline }?.snapshot.finished ?? false) {
                    group.addTask {
                        do {
                            try await sink.checkReachable()
                            return nil
                        } catch {
                            return "pipeline '\(pipeline)' cannot reach its sink: \(error)"
                        }
                    }
                }
                var found: [String] = []
                for await problem in group { if let problem { found.append(problem) } }
                return found.sorted()
            }
            return Self.readiness(statuses.map { ($0.pipeline, $0.snapshot) }, unreachable: unreachable)
        }
        // Loopback only: the dashboard's data needs no key here.
        if let history { DashboardRoutes.add(to: router, history: history, tap: tap, backend: backend) }
        let app = Application(router: router, configuration: .init(address: .hostname(host, port: port)), logger: logger)
        // As a service of the command's group, not `runService()`: that one handles SIGTERM itself
        // and returns, which the group took for a failure and cancelled the pipelines mid-commit.
        try await app.run()
    }

    /// `GET /readyz`: 200 while every pipeline runs (or finished) as it should; 503, an RFC 9457
    /// problem naming each pipeline that failed, is paused and why (its source, sink or state
    /// store failing and being retried), or cannot reach its sink, otherwise.
    static func readiness(_ pipelines: [(name: String, status: PipelineStatus.Snapshot)], unreachable: [String] = []) -> Response {
        var problems: [String] = []
        for (name, status) in pipelines {
            if status.failed {
                problems.append("pipeline '\(name)' has failed")
            } else if let reason = status.waitingFor {
                problems.append("pipeline '\(name)' is paused, retrying: \(reason)")
            }
        }
        problems += unreachable
        guard !problems.isEmpty else {
            return Response(status: .ok, headers: [.contentType: "text/plain"], body: .init(byteBuffer: ByteBuffer(string: "ready\n")))
        }
        var p = Problem(.serviceUnavailable, "not-ready", "Not ready", detail: problems.joined(separator: "; "))
        p.extraHeaders[.retryAfter] = "5"
        return p.response()
    }

    /// `GET /metrics`: the registry in Prometheus text format (shared with `sluice serve`).
    static func addMetricsRoute(to router: Router<BasicRequestContext>, registry: PrometheusCollectorRegistry) {
        router.get("/metrics") { _, _ -> Response in
            var bytes: [UInt8] = []
            bytes.reserveCapacity(16 << 10)
            registry.emit(into: &bytes)
            return Response(
                status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                body: .init(byteBuffer: ByteBuffer(bytes: MetricHelp.annotate(bytes))))
        }
    }
}
