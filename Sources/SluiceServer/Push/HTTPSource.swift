import Foundation
import Logging
import SluiceCore
import SluiceFormats

/// The source of a push stream: reads the requests `sluice serve` made durable, in order.
///
/// The endpoint appends each accepted request to the state store's push queue before it
/// answers 2xx; this source reads the queue after the pipeline's checkpoint (a queue sequence)
/// in the partition `queue:<stream>`. The state store deletes the queued requests up to that
/// sequence in the same transaction that commits it, so a committed request cannot be read
/// again (by this pipeline or one that takes the stream over). It never ends by itself.
public struct HTTPSource: Source {
    /// Records refused at the door or when decoded: decoded again with the current `columns`.
    public func deadLetterDecoder() -> (any DeadLetterDecoder)? { PushDeadLetterDecoder(options: options) }

    public var options: HTTPStreamOptions
    /// How long to wait between polls of an empty queue, at most.
    public var maxPollInterval: Duration = .milliseconds(50)

    public var isContinuous: Bool { true }

    public init(options: HTTPStreamOptions) { self.options = options }

    /// The fields of `rate_limit` and `key_rate_limit`.
    static let rateLimitOptions = [
        OptionSpec(
            "requests_per_second", .number, required: true, example: "500",
            "The sustained rate, a positive number (fractions allowed, at most 10000000)."),
        OptionSpec(
            "burst", .integer(1...100_000_000), example: "1000",
            "Requests allowed at once above the rate (the bucket's size). Default: `requests_per_second` rounded up."),
    ]

    public static let spec = ComponentSpec(
        type: "http",
        summary: "records pushed to POST /v1/streams/{stream}/records while `sluice serve` runs (JSON, NDJSON, gzip); durable before 2xx",
        options: [
            OptionSpec(
                "stream", .string, required: true, example: "clicks",
                "The stream name in the URL (`/v1/streams/{stream}/records`): 1–128 letters, digits, `_`, `-` or `.`. One stream feeds one pipeline."),
            OptionSpec(
                "auth", .choice(["none", "api_key", "hmac"]), default: "none", example: "api_key",
                "`api_key`: `Authorization: Bearer slk_…` or `X-API-Key` (keys from `sluice keys create`); `hmac`: signed webhooks, configured under `hmac`. While a stream has `none`, `sluice serve` refuses a non-loopback address (unless `--allow-unauthenticated`)."
            ),
            OptionSpec(
                "hmac",
                .object([
                    OptionSpec(
                        "secret", .string, required: true, example: #""${WEBHOOK_SECRET}""#, secret: true,
                        "The shared HMAC-SHA256 key, at least 16 bytes."),
                    OptionSpec(
                        "tolerance", .duration, default: "5m", example: "2m",
                        "Refuse requests whose timestamp is further than this from the server's clock (replays)."),
                    OptionSpec(
                        "signature_header", .string, default: "X-Sluice-Signature", example: "X-Hub-Signature-256",
                        #"The header holding `sha256=<hex HMAC of "<timestamp>.<raw body>">` (several, comma-separated, during a secret rotation)."#),
                    OptionSpec(
                        "timestamp_header", .string, default: "X-Sluice-Timestamp", example: "X-Webhook-Timestamp",
                        "The header holding the request's time in unix seconds."),
                ]), example: #"{ secret: "${WEBHOOK_SECRET}", tolerance: 5m }"#,
                "With `auth: hmac` (and required by it): how requests are signed."),
            OptionSpec(
                "rate_limit", .object(rateLimitOptions), example: "{ requests_per_second: 500, burst: 1000 }",
                "A token bucket for the whole stream; beyond it, 429 with `Retry-After`."),
            OptionSpec(
                "key_rate_limit", .object(rateLimitOptions), example: "{ requests_per_second: 50, burst: 100 }",
                "The same, per API key."),
            OptionSpec(
                "columns", .map(.string), example: "{ user_id: int64, url: string, ts: timestamp }",
                "Declared types by field name (bool, int64, float64, decimal(p,s), string, binary, date, timestamp, json), checked for every record before the request is accepted; other fields are inferred."
            ),
            OptionSpec(
                "required", .list(.string), example: "[user_id]", requires: ["columns: { user_id: int64 }"],
                "Declared `columns` that must be present and not null in every record."),
            OptionSpec(
                "on_invalid", .choice(["reject", "dead_letter"]), default: "reject", example: "dead_letter",
                "`reject` refuses a request with any invalid record (400/422); `dead_letter` accepts the valid records and dead-letters the rest (the 202 lists them)."
            ),
            OptionSpec(
                "max_body", .byteSize, default: "10MB", example: "1MB",
                "The largest body, after decompression (1KB to 1GB); 413 beyond."),
            OptionSpec(
                "max_records", .integer(1...10_000_000), default: "10000", example: "1000",
                "Records per request; 413 beyond."),
            OptionSpec(
                "max_depth", .integer(1...512), default: "32", example: "16",
                "Nesting depth inside a record (the record itself is level 1); 400 beyond."),
            OptionSpec(
                "max_fields", .integer(1...100_000), default: "1000", example: "200",
                "Top-level fields per record; 400 beyond."),
            OptionSpec(
                "max_new_fields", .integer(1...10_000), default: "100", example: "500",
                "Top-level fields one request may add to the stream (names no earlier record, declared column or `received_at` has); beyond it the whole request gets 422 `too-many-new-fields` naming the first new fields, and nothing is stored. Fields whose names vary by record (ids, timestamps as keys) belong inside one object: declare it as a `json` column."
            ),
            OptionSpec(
                "max_columns", .integer(1...10_000), default: "10000", example: "2000",
                "Top-level fields the stream may have in all: declared columns, `received_at` and every field of the records accepted since `sluice serve` started (or still queued when it started). A request that would pass it gets 422 `too-many-columns` before anything is accepted. 10000 is also the most columns the stream's decoder makes."
            ),
            OptionSpec(
                "max_queue_records", .integer(1...1_000_000_000), default: "1000000", example: "100000",
                "Accepted records the pipeline has not committed yet; beyond it, 503 with `Retry-After`."),
            OptionSpec(
                "max_queue_bytes", .byteSize, default: "256MB", example: "1GB",
                "The same bound in bytes."),
            OptionSpec(
                "idempotency_ttl", .duration, default: "7d", example: "1d",
                "How long an `Idempotency-Key` and its response are remembered."),
            OptionSpec(
                "received_at", .string, default: "received_at", example: "arrived_at",
                #"A `timestamp` field stamped with each record's arrival time (`""` leaves it out; a record's own field of that name wins)."#),
        ],
        example: """
            source:
              http: { stream: clicks, auth: api_key, columns: { user_id: int64, url: string }, required: [user_id] }
            """,
        capabilities: [.servedByServe],
        exampleFile: "examples/http-push.yaml",
        requiredState: [.pushQueue]
    )

    public static let factory = SourceFactory(spec: spec, validatePlans: ServeRules.uniqueStreams) { config, _ in
        HTTPSource(options: try config.decodeOptions(HTTPStreamOptions.self))
    }

    /// A test hook (`SLUICE_TEST_HOLD=http-read=PATH`): the reader holds before reading the
    /// queue, so a test can keep records queued (e.g. past `serve.drain_timeout`).
    public static let holdRead = "http-read"

    /// The checkpoint partition the queue sequence of `stream` is stored under.
    static func partition(_ stream: String) -> String { PushQueuePartition.name(stream: stream) }

    public func makeReader(resumingFrom checkpoint: Checkpoint, context: SourceContext) async throws -> any SourceReader {
        guard let queue = context.state.pushQueue else {
            throw SluiceError(.unsupported, "the state store has no push queue; use a SQLite state store", location: "state")
        }
        let committed = checkpoint[Self.partition(options.stream)].flatMap { Int64($0) } ?? 0
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
    var buffer: [UInt8] = []
    var lastReadWasSmall = false
    var lastTrim = ContinuousClock.now
    /// Bytes per queued request, recently (sizes the trimming chunks).
    var averagePayload = 1024
    /// The decoder's reject kind for a line whose keys would pass its column cap.
    static let tooManyColumns = "too_many_columns"

    init(source: HTTPSource, queue: any PushQueueStore, context: SourceContext, committed: Int64) {
        self.source = source
        self.queue = queue
        self.context = context
        var options = NDJSONOptions()
        options.columns = source.options.decodeFields
        options.batchRows = Int.max / 2
        options.maxRecordBytes = source.options.maxBody + 4096  // a record plus its arrival stamp
        decoder = NDJSONDecoder(options: options)
        position = committed
    }

    func next() async throws -> SourceBatch? {
        var idle: Duration = .milliseconds(1)
        if lastReadWasSmall {
            // Requests trickle in one by one: wait a moment so the next read (and the sink's
            // batch) holds many of them, instead of paying a read per request.
            try? await Task.sleep(for: .milliseconds(10))
        }
        while !Task.isCancelled {
            try await context.hooks.hold(at: HTTPSource.holdRead, logger: context.logger)
            try await trimConsumed()
            let requests = try await queue.queued(stream: source.options.stream, after: position, limit: 2048, maxBytes: 8 << 20)
            if requests.isEmpty {
                try? await Task.sleep(for: idle)
                idle = min(idle * 2, source.maxPollInterval)
                continue
            }
            lastReadWasSmall = requests.count < 256
            return decode(requests)
        }
        return nil
    }

    /// Deletes a chunk of committed requests (about 4 MB), at most every 50 ms.
    func trimConsumed() async throws {
        guard ContinuousClock.now - lastTrim > .milliseconds(50) else { return }
        lastTrim = .now
        let chunk = max(16, min(4096, (4 << 20) / max(averagePayload, 1)))
        _ = try await queue.trimConsumed(stream: source.options.stream, limit: chunk)
    }

    /// Decodes the requests into one batch. Usually all of them; when a line would take the
    /// decoder past its column cap, fewer: see ``decodeWithinColumnCap(_:)``.
    func decode(_ all: [QueuedPush]) -> SourceBatch {
        let (requests, output, firstLines) = decodeWithinColumnCap(all)
        let rejects = output.rejects.map { reject -> DeadLetter in
            // The request holding this line: the last one whose first line is not after it.
            var lo = 0, hi = firstLines.count - 1
            while lo < hi {
                let mid = (lo + hi + 1) / 2
                if firstLines[mid] <= reject.line { lo = mid } else { hi = mid - 1 }
            }
            let request = requests[requests.startIndex + lo]
            return DeadLetter(
                stage: "decode", errorKind: reject.kind, message: reject.message,
                // `:line:` (the line in the queued payload), distinct from the `#index` of records refused at the door.
                location: "http:\(source.options.stream)/\(request.requestID):line:\(reject.line - firstLines[lo] + 1)",
                raw: reject.raw)
        }
        position = requests.last!.sequence
        averagePayload = max(1, buffer.count / requests.count)
        var batch = SourceBatch(
            records: output.batch, rejects: rejects,
            position: SourcePosition(partition: HTTPSource.partition(source.options.stream), value: String(position)),
            inputBytes: buffer.count)
        // The origin of a pushed record is the arrival of its request.
        batch.originTime = requests.map(\.receivedAt).min()
        return batch
    }

    /// The decoder's columns are the fields of every record it read since the reader started.
    /// The endpoint keeps a stream's fields within the cap (it refuses more with 422), but
    /// records queued before a restart can add to what it counted. So when a line would pass
    /// the cap, the reader starts a new schema instead of dead-lettering records answered 202:
    /// it decodes again with a fresh decoder, and hands over only the requests before the first
    /// one that passes the cap even then (the rest are read again next time, from a fresh
    /// schema). Only a request whose own fields pass the cap is still dead-lettered there.
    func decodeWithinColumnCap(_ all: [QueuedPush]) -> (requests: ArraySlice<QueuedPush>, output: DecodeOutput, firstLines: [Int]) {
        var requests = all[...]
        var (output, firstLines) = decodeOnce(requests)
        guard let overflow = firstOverflow(output, firstLines) else { return (requests, output, firstLines) }
        context.logger.notice(
            "push stream: the decoder's columns reached their cap; starting a new schema",
            metadata: ["stream": "\(source.options.stream)", "columns": "\(decoder.schema.count)", "request": "\(all[overflow].requestID)"])
        prepared = false
        (output, firstLines) = decodeOnce(requests)
        if let again = firstOverflow(output, firstLines), again > 0 {
            requests = all[..<again]
            prepared = false
            (output, firstLines) = decodeOnce(requests)
        }
        return (requests, output, firstLines)
    }

    /// The index of the first request with a line the decoder refused for its column cap.
    func firstOverflow(_ output: DecodeOutput, _ firstLines: [Int]) -> Int? {
        guard let line = output.rejects.first(where: { $0.kind == Self.tooManyColumns })?.line else { return nil }
        return firstLines.lastIndex { $0 <= line }
    }

    /// Decodes the requests' payloads as one input (preparing the decoder first if needed);
    /// returns the output and the first line of every request in it.
    func decodeOnce(_ requests: ArraySlice<QueuedPush>) -> (DecodeOutput, [Int]) {
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
        return (output, firstLines)
    }
}
