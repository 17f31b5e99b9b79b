import Foundation
import Synchronization

/// Live samples of the records flowing through running pipelines, for `sluice tap` (like
/// `vector tap`). Free when nobody taps: the runner checks ``isActive`` (one atomic load) per
/// batch. When someone does, at most ``rowsPerBatch`` rows of a batch are rendered, and each
/// subscriber's buffer keeps the newest ``buffered`` lines (older ones are dropped): a slow
/// reader never slows the pipeline.
public final class TapHub: Sendable {
    public enum Stage: String, Sendable, CaseIterable {
        /// Records as the source decoded them.
        case source
        /// Records as the sink accepted them.
        case sink
        /// Records sent to the dead-letter queue.
        case deadLetter = "dead-letter"
    }

    public static let rowsPerBatch = 100
    public static let buffered = 1000

    struct Subscriber {
        var pipeline: String
        var stage: Stage
        var continuation: AsyncStream<String>.Continuation
    }

    private let subscribers = Mutex<[UInt64: Subscriber]>([:])
    private let count = Atomic<Int>(0)
    private let nextID = Atomic<UInt64>(0)

    public init() {}

    /// True while someone taps (any pipeline, any stage).
    public var isActive: Bool { count.load(ordering: .relaxed) > 0 }

    /// A stream of NDJSON lines of `pipeline` at `stage`, until ``unsubscribe(_:)``.
    public func subscribe(pipeline: String, stage: Stage) -> (id: UInt64, lines: AsyncStream<String>) {
        let id = nextID.wrappingAdd(1, ordering: .relaxed).newValue
        let (stream, continuation) = AsyncStream<String>.makeStream(bufferingPolicy: .bufferingNewest(Self.buffered))
        subscribers.withLock { $0[id] = Subscriber(pipeline: pipeline, stage: stage, continuation: continuation) }
        count.add(1, ordering: .relaxed)
        return (id, stream)
    }

    public func unsubscribe(_ id: UInt64) {
        let removed = subscribers.withLock { $0.removeValue(forKey: id) }
        if let removed {
            removed.continuation.finish()
            count.subtract(1, ordering: .relaxed)
        }
    }

    /// Hands lines to the subscribers of `pipeline` at `stage`; `render` runs only when there is one.
    public func offer(pipeline: String, stage: Stage, _ render: () -> [String]) {
        let targets = subscribers.withLock { $0.values.filter { $0.pipeline == pipeline && $0.stage == stage }.map(\.continuation) }
        guard !targets.isEmpty else { return }
        let lines = render()
        for target in targets {
            for line in lines { target.yield(line) }
        }
    }

    /// Up to ``rowsPerBatch`` rows of `batch` as JSON lines.
    public static func lines(_ batch: RecordBatch) -> [String] {
        guard batch.count > 0 else { return [] }
        return RowRendering.json(batch, rows: 0..<min(batch.count, rowsPerBatch)).split(separator: "\n").map(String.init)
    }

    /// Dead letters as JSON lines (stage, kind, reason, location, the raw bytes as text).
    public static func lines(_ letters: [DeadLetter]) -> [String] {
        letters.prefix(rowsPerBatch).map { l in
            "{\"stage\":\(RowRendering.quote(l.stage)),\"kind\":\(RowRendering.quote(l.errorKind)),\"reason\":\(RowRendering.quote(l.message)),"
                + "\"location\":\(RowRendering.quote(l.location)),\"raw\":\(RowRendering.quote(String(decoding: l.raw, as: UTF8.self)))}"
        }
    }
}
