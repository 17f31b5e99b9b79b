import Logging
import ServiceLifecycle
import SluiceCore

/// The first step of stopping `sluice serve`: the push endpoint takes no more records, and the
/// pipelines of push streams get time to commit every record already answered 202.
///
/// It does nothing until graceful shutdown (SIGTERM, SIGINT). Then it drains the ``intake``
/// (new pushes and `/readyz` get 503) and returns once no request is in flight and the push
/// queue of every stream whose pipeline has not failed is empty, or when ``timeout`` has passed.
/// `sluice serve` lists it after the pipelines and the server: a service group shuts services
/// down in reverse order, so the pipelines are stopped after the drain, and the server (still
/// answering 503) last.
public struct PushDrain: Service {
    public var intake: PushIntake
    public var streams: [PushStream]
    public var store: any PushQueueStore
    /// How long the pipelines may take; what is left stays queued for the next start.
    public var timeout: Duration
    /// Names of pipelines that have failed: their streams are not waited for.
    public var failedPipelines: @Sendable () -> [String]
    public var logger: Logger
    /// Asked of the push streams' pipelines when the drain starts: commit what they hold now,
    /// not when their sink would (a file sink's `max_file_age` is often longer than the drain).
    public var commitRequests: [CommitRequest]
    /// How often the queue's backlog is looked at (it is held in memory, so this is cheap).
    public var pollInterval: Duration = .milliseconds(20)

    public init(
        intake: PushIntake, streams: [PushStream], store: any PushQueueStore, timeout: Duration,
        failedPipelines: @escaping @Sendable () -> [String], commitRequests: [CommitRequest] = [], logger: Logger
    ) {
        self.commitRequests = commitRequests
        self.intake = intake
        self.streams = streams
        self.store = store
        self.timeout = timeout
        self.failedPipelines = failedPipelines
        self.logger = logger
    }

    public func run() async throws {
        do {
            try await gracefulShutdown()
        } catch {
            return  // cancelled: the process stops at once, without a drain
        }
        await drain()
    }

    /// Refuses new requests, then waits for the pipelines (see ``PushDrain``).
    func drain() async {
        intake.beginDraining()
        for request in commitRequests { request.request() }
        logger.info(
            "draining: refusing new requests until the pipelines have committed every accepted record",
            metadata: ["streams": "\(streams.count)", "drain_timeout": "\(timeout)"])
        let deadline = ContinuousClock.now + timeout
        while true {
            // Requests in flight first: one answered 202 after the backlog was read would be missed.
            let inflight = intake.inflight
            let failed = Set(failedPipelines())
            var waiting: [(stream: String, backlog: PushBacklog)] = []
            for stream in streams where !failed.contains(stream.pipeline) {
                // A backlog that cannot be read counts as not drained.
                let backlog = (try? await store.backlog(stream: stream.options.stream)) ?? PushBacklog(requests: 1)
                if backlog.requests > 0 { waiting.append((stream.options.stream, backlog)) }
            }
            if inflight == 0 && waiting.isEmpty {
                logger.info("drained: every accepted record is committed")
                return
            }
            if ContinuousClock.now >= deadline {
                logger.warning(
                    "drain timed out: stopping the pipelines with records still queued",
                    metadata: [
                        "drain_timeout": "\(timeout)", "requests_in_flight": "\(inflight)",
                        "queued": "\(waiting.map { "\($0.stream): \($0.backlog.records) records" }.joined(separator: ", "))",
                    ])
                return
            }
            do { try await Task.sleep(for: pollInterval) } catch { return }
        }
    }
}

extension PushDrain: CustomStringConvertible {
    public var description: String { "PushDrain(\(streams.map(\.options.stream).joined(separator: ", ")))" }
}
