import Foundation
import Logging
import SluiceCore
import SluiceFormats

/// The source of a push stream: reads the requests `sluice serve` made durable, in order.
///
/// The endpoint appends each accepted request to the state store's push queue before it
/// answers 2xx; this source reads the queue after the pipeline's checkpoint (a queue sequence)
/// and deletes what the pipeline has committed. It never ends by itself.
public struct HTTPSource: Source {
    public var options: HTTPStreamOptions
    /// How long to wait between polls of an empty queue, at most.
    public var maxPollInterval: Duration = .milliseconds(50)

    public var isContinuous: Bool { true }

    public init(options: HTTPStreamOptions) { self.options = options }

    public static let factory = SourceFactory(
        type: "http",
        summary: "records pushed to POST /v1/streams/{stream}/records while `sluice serve` runs (JSON, NDJSON, gzip); durable before 2xx",
        example: """
        source:
          http: { stream: clicks, auth: api_key, columns: { user_id: int64, url: string }, required: [user_id] }
        """
    ) { config, _ in
        HTTPSource(options: try config.decodeOptions(HTTPStreamOptions.self))
    }

    /// The checkpoint partition the queue sequence is stored under.
    static let partition = "queue"

    public func makeReader(resumingFrom checkpoint: Checkpoint, context: SourceContext) async throws -> any SourceReader {
        guard let queue = context.state as? any PushQueueStore else {
            throw SluiceError(.unsupported, "the state store cannot hold a push queue; use the SQLite state store", location: "state")
        }
        let committed = checkpoint[Self.partition].flatMap { Int64($0) } ?? 0
        return HTTPSourceReader(source: self, queue: queue, context: context, committed: committed)
    }
}

/// Reads one stream's queue. See ``HTTPSource``.
final class HTTPSourceReader: SourceReader {
    let source: HTTPSource
    let queue: any PushQueueStore
    let context: SourceContext
    let decoder: NDJSONDecoder
    var prepared = false
    /// The last sequence handed to the runtime.
    var position: Int64
    /// The last sequence known committed (and deleted from the queue).
    var deletedThrough: Int64
    var lastTrim = ContinuousClock.now
    var buffer: [UInt8] = []

    init(source: HTTPSource, queue: any PushQueueStore, context: SourceContext, committed: Int64) {
        self.source = source
        self.queue = queue
        self.context = context
        var options = NDJSONOptions()
        options.columns = source.options.decodeFields
        options.batchRows = Int.max / 2
        options.maxRecordBytes = max(source.options.maxBody, 1 << 20)
        decoder = NDJSONDecoder(options: options)
        position = committed
        deletedThrough = 0
    }

    func next() async throws -> SourceBatch? {
        var idle: Duration = .milliseconds(1)
        while !Task.isCancelled {
            try await trimCommitted(force: false)
            let requests = try await queue.queued(stream: source.options.stream, after: position, limit: 2048, maxBytes: 8 << 20)
            if requests.isEmpty {
                try? await Task.sleep(for: idle)
                idle = min(idle * 2, source.maxPollInterval)
                continue
            }
            return decode(requests)
        }
        return nil
    }

    /// Deletes queued requests the pipeline has committed, at most every 200 ms.
    func trimCommitted(force: Bool) async throws {
        guard force || ContinuousClock.now - lastTrim > .milliseconds(200) else { return }
        lastTrim = .now
        let checkpoint = try await context.state.checkpoint(pipeline: context.pipeline)
        let committed = checkpoint[HTTPSource.partition].flatMap { Int64($0) } ?? 0
        if committed > deletedThrough {
            try await queue.deleteQueued(stream: source.options.stream, through: committed)
            deletedThrough = committed
        }
    }

    func decode(_ requests: [QueuedPush]) -> SourceBatch {
        buffer.removeAll(keepingCapacity: true)
        var firstLines: [Int] = []
        firstLines.reserveCapacity(requests.count)
        var line = 1
        for r in requests {
            firstLines.append(line)
            buffer.append(contentsOf: r.payload)
            line += r.records
        }
        let output = buffer.withUnsafeBytes { raw -> DecodeOutput in
            if !prepared {
                _ = try? decoder.prepare(sample: UnsafeRawBufferPointer(rebasing: raw.prefix(1 << 20)), isWholeInput: raw.count <= 1 << 20)
                prepared = true
            }
            decoder.seek(offset: 0, line: 1)
            return decoder.decode(raw, isFinal: true)
        }
        let rejects = output.rejects.map { reject -> DeadLetter in
            // The request holding this line: the last one whose first line is not after it.
            var lo = 0, hi = firstLines.count - 1
            while lo < hi {
                let mid = (lo + hi + 1) / 2
                if firstLines[mid] <= reject.line { lo = mid } else { hi = mid - 1 }
            }
            let request = requests[lo]
            return DeadLetter(stage: "decode", errorKind: reject.kind, message: reject.message,
                              location: "http:\(source.options.stream)/\(request.requestID)#\(reject.line - firstLines[lo])",
                              raw: reject.raw)
        }
        position = requests.last!.sequence
        return SourceBatch(records: output.batch, rejects: rejects,
                           position: SourcePosition(partition: HTTPSource.partition, value: String(position)),
                           inputBytes: buffer.count)
    }

    func close() async {
        try? await trimCommitted(force: true)
    }
}
