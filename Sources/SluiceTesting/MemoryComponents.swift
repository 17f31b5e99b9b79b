import SluiceCore
import Synchronization

/// A finite source that hands out prepared batches, one partition, positions "1", "2", …
/// It resumes after the checkpointed batch number.
public struct MemorySource: Source {
    public let batches: [SourceBatch]
    public var isContinuous: Bool { false }

    public init(batches: [SourceBatch]) { self.batches = batches }

    /// One int64 column `id`, `count` batches of `rows` rows, ids 0, 1, 2, …
    public init(batchCount: Int, rows: Int) {
        var out: [SourceBatch] = []
        for b in 0..<batchCount {
            var builder = ColumnBuilder(type: .int64)
            for r in 0..<rows { builder.append(Int64(b * rows + r)) }
            let batch = RecordBatch(schema: Schema([Field("id", .int64)]), columns: [builder.finish()])
            out.append(SourceBatch(records: batch, position: SourcePosition(partition: "", value: "\(b + 1)"), inputBytes: rows * 8))
        }
        batches = out
    }

    public static let spec = ComponentSpec(
        type: "memory", summary: "prepared batches of ids, for tests",
        options: [
            OptionSpec("rows", .integer(), default: "10", example: "100", "rows per batch"),
            OptionSpec("batches", .integer(), default: "1", example: "3", "how many batches"),
        ],
        example: """
            source:
              memory: { rows: 100, batches: 3 }
            """
    )

    public static let factory = SourceFactory(spec: spec) { config, _ in
        struct Options: Decodable { var rows: Int?; var batches: Int? }
        let o = try config.decodeOptions(Options.self)
        return MemorySource(batchCount: o.batches ?? 1, rows: o.rows ?? 10)
    }

    public func makeReader(resumingFrom checkpoint: Checkpoint, context: SourceContext) async throws -> any SourceReader {
        Reader(batches: batches, next: checkpoint[""].flatMap(Int.init) ?? 0)
    }

    final class Reader: SourceReader {
        let batches: [SourceBatch]
        var index: Int
        init(batches: [SourceBatch], next: Int) {
            self.batches = batches
            index = next
        }

        func next() async throws -> SourceBatch? {
            guard index < batches.count else { return nil }
            defer { index += 1 }
            return batches[index]
        }
    }
}

/// A sink that keeps committed rows in memory. It can be told to fail: whole writes
/// (`failWrites` times, with `failure`) or particular rows (by `id` value, every time).
public final class MemorySink: Sink {
    public struct Behaviour: Sendable {
        public var failWrites = 0
        public var failure = SluiceError(.unavailable, "sink unavailable")
        public var rejectIDs: Set<Int64> = []
        public var rejectError = SluiceError(.constraint, "row rejected")
        public init() {}
    }

    private let committed = Mutex<[RecordBatch]>([])
    private let behaviour: Mutex<Behaviour>
    private let writeCalls = Mutex(0)

    public init(behaviour: Behaviour = Behaviour()) { self.behaviour = Mutex(behaviour) }

    public var committedBatches: [RecordBatch] { committed.withLock { $0 } }
    public var committedIDs: [Int64] {
        committedBatches.flatMap { b in (0..<b.count).compactMap { if case let .int64(v) = b.columns[0].value(at: $0) { v } else { nil } } }
    }
    public var writes: Int { writeCalls.withLock { $0 } }

    public func makeWriter(context: SinkContext) async throws -> any SinkWriter { Writer(sink: self) }

    final class Writer: SinkWriter {
        let sink: MemorySink
        var pending: [RecordBatch] = []
        init(sink: MemorySink) { self.sink = sink }

        func write(_ batch: RecordBatch) async throws -> [RowFailure] {
            sink.writeCalls.withLock { $0 += 1 }
            let b = sink.behaviour.withLock { b -> MemorySink.Behaviour in
                let copy = b
                if b.failWrites > 0 { b.failWrites -= 1 }
                return copy
            }
            if b.failWrites > 0 { throw b.failure }
            var keep: [Int] = [], failures: [RowFailure] = []
            for r in 0..<batch.count {
                if case let .int64(id) = batch.columns[0].value(at: r), b.rejectIDs.contains(id) {
                    failures.append(RowFailure(row: r, error: b.rejectError))
                } else {
                    keep.append(r)
                }
            }
            pending.append(batch.selecting(rows: keep))
            return failures
        }

        func prepareCommit(_ commit: inout StateCommit) async throws {}

        func abortCommit() async { pending.removeAll() }

        func finishCommit() async throws {
            let p = pending
            sink.committed.withLock { $0 += p }
            pending.removeAll()
        }
    }
}
