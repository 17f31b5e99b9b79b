import Foundation
import Synchronization

/// Live counters of a running pipeline, read by progress bars, the CLI summary and the alert
/// engine (which samples them; it never reads the metrics registry).
public final class PipelineStatus: Sendable {
    public struct Snapshot: Sendable {
        public var recordsIn = 0
        public var recordsOut = 0
        public var deadLettered = 0
        public var duplicates = 0
        public var bytesDone = 0
        public var bytesTotal: Int?
        public var recordsTotal: Int?
        public var finished = false
        /// The run ended with an error (``finished`` is set too).
        public var failed = false
        /// When the run started, and when its last commit finished.
        public var startedAt: Date?
        public var lastCommit: Date?
        /// Records in the dead-letter queue (nil until first read from the state store).
        public var deadLetterQueue: Int?
        /// Schema drift events recorded.
        public var schemaDrifts = 0
        /// Records the reconciliation found missing (read, but neither written, dead-lettered
        /// nor dropped as duplicates), and gaps in a declared sequence.
        public var missingRecords = 0
        /// Committed end-to-end latencies, cumulative per bucket of
        /// ``PipelineMetrics/endToEndLatencyBuckets`` (one more for +Inf).
        public var latencyBuckets = [Int](repeating: 0, count: PipelineMetrics.endToEndLatencyBuckets.count + 1)
        /// A scheduled source's last pull, and the time between its pulls.
        public var lastPull: Date?
        public var pullInterval: TimeInterval?
        /// Input bytes read, and bytes committed to the sink.
        public var bytesIn = 0
        public var bytesOut = 0
        /// Bytes of the files the sink published (lake storage written).
        public var storageBytes = 0
        /// Alerts firing now (set by the alert engine).
        public var firingAlerts: [String] = []
        /// The dead-letter queue by `stage/reason` (read with the alert evaluation).
        public var deadLetterReasons: [String: Int] = [:]
        /// The schema registry version the records have now.
        public var schemaVersion: Int?
        /// How far behind its source the pipeline is, as the source measures it: a queue's
        /// pending messages, CDC's seconds behind the server's commits.
        public var lag: (value: Double, unit: String)?
        /// Records committed by this run (each commit's records, whatever became of them).
        public var recordsCommitted = 0
        /// Why the source is being retried, while it is (it cannot start, or broke off).
        public var sourceTrouble: String?
        /// Why the sink or the state store is being retried, while it is.
        public var sinkTrouble: String?
        /// Why the pipeline is paused, while it is: its source, sink or state store is failing
        /// and being retried (`/readyz` of `sluice run --metrics-port` answers 503 with it).
        public var waitingFor: String? {
            if let sinkTrouble { return "the sink: \(sinkTrouble)" }
            return sourceTrouble.map { "the source: \($0)" }
        }
    }

    private let state = Mutex(Snapshot())
    public let pipeline: String

    public init(pipeline: String) { self.pipeline = pipeline }

    public var snapshot: Snapshot { state.withLock { $0 } }

    public func update(_ body: (inout Snapshot) -> Void) { state.withLock { body(&$0) } }
}
