import Synchronization

/// Live counters of a running pipeline, read by progress bars and the CLI summary.
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
    }

    private let state = Mutex(Snapshot())
    public let pipeline: String

    public init(pipeline: String) { self.pipeline = pipeline }

    public var snapshot: Snapshot { state.withLock { $0 } }

    public func update(_ body: (inout Snapshot) -> Void) { state.withLock { body(&$0) } }
}
