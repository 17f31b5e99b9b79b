import Foundation
import Logging
import Metrics
import SluiceCore
import SluiceFormats
import SluiceNATS
import Synchronization

/// Options of `source: {jetstream: {...}}`; each one is declared, with its default, in ``JetStreamSource/spec``.
public struct JetStreamSourceOptions: Decodable, Sendable {
    public enum Format: String, Sendable {
        case ndjson
        case changeEvents = "change_events"
    }

    public var stream: JetStreamStreamOptions
    public var consumer: String?
    public var filterSubject: String?
    public var format = Format.ndjson
    public var fields: [Field] = []
    public var batch = 2000
    public var ackWait: Duration = .seconds(30)
    public var maxAckPending = 200_000
    public var maxDeliveries = 10
    public var sequenceColumn: String? = "_nats_seq"

    enum CodingKeys: String, CodingKey {
        case consumer, format, columns, batch
        case filterSubject = "filter_subject"
        case ackWait = "ack_wait"
        case maxAckPending = "max_ack_pending"
        case maxDeliveries = "max_deliveries"
        case sequenceColumn = "sequence_column"
    }

    public init(stream: JetStreamStreamOptions) { self.stream = stream }

    public init(from decoder: any Decoder) throws {
        stream = try JetStreamStreamOptions(from: decoder)
        let c = try decoder.container(keyedBy: CodingKeys.self)
        consumer = try c.decodeIfPresent(String.self, forKey: .consumer)
        if let consumer, consumer.range(of: #"^[A-Za-z0-9_-]{1,64}$"#, options: .regularExpression) == nil {
            throw try c.superDecoder(forKey: .consumer).configError("a consumer name is letters, digits, '_' and '-'")
        }
        filterSubject = try c.decodeIfPresent(String.self, forKey: .filterSubject)
        if let f = try c.decodeIfPresent(String.self, forKey: .format) {
            guard let parsed = Format(rawValue: f) else {
                throw try c.superDecoder(forKey: .format).configError("unknown format '\(f)'; use ndjson or change_events")
            }
            format = parsed
        }
        fields = try c.decodeDeclaredColumns(forKey: .columns) ?? []
        batch = try c.decodeIfPresent(Int.self, forKey: .batch, in: 1...100_000) ?? batch
        ackWait = try c.decodeIfPresent(ConfigDuration.self, forKey: .ackWait)?.duration ?? ackWait
        guard ackWait >= .seconds(1) else { throw try c.superDecoder(forKey: .ackWait).configError("ack_wait must be at least 1s") }
        maxAckPending = try c.decodeIfPresent(Int.self, forKey: .maxAckPending, in: 1...10_000_000) ?? maxAckPending
        maxDeliveries = try c.decodeIfPresent(Int.self, forKey: .maxDeliveries, in: 1...1000) ?? maxDeliveries
        if let s = try c.decodeIfPresent(String.self, forKey: .sequenceColumn) { sequenceColumn = s.isEmpty ? nil : s }
    }

    /// Columns the decoder is given: the change-event envelope, or what `columns:` declares.
    var decodeFields: [Field]? {
        switch format {
        case .changeEvents:
            [
                Field("op", .string), Field("table", .string), Field("key", .json), Field("before", .json), Field("after", .json),
                Field("source", .json), Field("lsn", .string), Field("tx_id", .int64), Field("ts_ms", .int64), Field("seq", .int64),
            ]
        case .ndjson:
            fields.isEmpty ? nil : fields
        }
    }
}

/// Consumes a JetStream stream through a durable pull consumer that any number of Sluice
/// workers share: each pulls its own messages, so the work splits by itself.
///
/// Exactly once, by three rules:
/// 1. A message is acknowledged only after the sink committed it: each batch's acks wait in an
///    ``AckLedger`` until the runtime's commit passes the batch (the contiguous watermark), then
///    go out in one write. Records that were dead-lettered are terminated (`+TERM`) instead.
/// 2. Each record carries its stream sequence (`sequence_column`, default `_nats_seq`), which is
///    the pipeline's implicit dedupe key: a message committed whose ack was lost (a crash between
///    commit and ack) comes back and is dropped, and the key was stored in the same state
///    transaction as the data.
/// 3. Messages held while a batch is being written are kept with `+WPI` every quarter of
///    `ack_wait`, so a live worker never loses its messages to another; a worker that dies
///    stops sending it and its messages go to the others after `ack_wait`. A reader that closes
///    (a failing sink) gives its uncommitted messages back with `-NAK` and a backoff.
///
/// A message delivered more than `max_deliveries` times without a commit (it kills the worker,
/// or its sink keeps failing) is dead-lettered with its payload and terminated, never left
/// pending. Each worker crash counts one delivery for every message the worker held.
public struct JetStreamSource: Source {
    public var options: JetStreamSourceOptions
    let ledger = AckLedger()

    public var isContinuous: Bool { true }

    public init(options: JetStreamSourceOptions) { self.options = options }

    public static let spec = ComponentSpec(
        type: "jetstream",
        summary: "consume a NATS JetStream stream with a durable pull consumer shared by many workers (ack after commit, exactly once)",
        options: JetStreamStreamOptions.specOptions(
            subject: OptionSpec(
                "subject", .string, example: "events.clicks",
                "When given, the stream is created with this subject if it is missing (see `create`); without it, the stream must exist."),
            own: [
                OptionSpec(
                    "consumer", .string, example: "lake-writers",
                    "The durable pull consumer every worker of this pipeline shares (letters, digits, `_` and `-`). Default: the pipeline's name (`.` becomes `_`)."
                ),
                OptionSpec(
                    "filter_subject", .string, example: #""events.clicks""#,
                    "Only messages on this subject (wildcards `*` and `>` allowed). Default: the whole stream."),
                OptionSpec(
                    "format", .choice(["ndjson", "change_events"]), default: "ndjson", example: "change_events",
                    "`ndjson`: a JSON object per message, or NDJSON records when the message has a `Sluice-Records` header; `change_events`: the `postgres_cdc` envelope, typed (`key`, `before`, `after` as json)."
                ),
                OptionSpec(
                    "columns", .map(.string), example: "{ id: int64, ts: timestamp }",
                    "Declared types by column name (bool, int64, float64, decimal(p,s), string, binary, date, timestamp, json); other columns are inferred. Ignored with `format: change_events` (its envelope has fixed types)."
                ),
                OptionSpec(
                    "batch", .integer(1...100_000), default: "2000", example: "500",
                    "Messages per pull request (each pull also brings at most 8 MB)."),
                OptionSpec(
                    "ack_wait", .duration, default: "30s", example: "1m",
                    "A delivered message not acknowledged (nor kept with `+WPI`) this long goes to another worker; at least 1s."),
                OptionSpec(
                    "max_ack_pending", .integer(1...10_000_000), default: "200000", example: "50000",
                    "Delivered and unacknowledged messages, across all workers; a worker commits before it holds a quarter of them."),
                OptionSpec(
                    "max_deliveries", .integer(1...1000), default: "10", example: "5",
                    "A message delivered more often than this without a commit is dead-lettered with its payload and terminated."),
                OptionSpec(
                    "sequence_column", .string, default: "_nats_seq", example: "nats_seq",
                    #"The column holding each record's stream sequence, the implicit dedupe key that drops redeliveries; `""` leaves it out, and with it exactly-once."#
                ),
            ]),
        example: """
            source:
              jetstream: { url: "nats://127.0.0.1:4222", stream: EVENTS, consumer: lake-writers }
            """,
        capabilities: [.queue],
        exampleFile: "examples/jetstream-workers.yaml"
    )

    public static let factory = SourceFactory(spec: spec) { config, context in
        var options = try config.decodeOptions(JetStreamSourceOptions.self)
        if options.consumer == nil {
            options.consumer = String(context.pipeline.map { $0 == "." ? "_" : $0 })
        }
        return JetStreamSource(options: options)
    }

    public var implicitDedupeKey: [String]? { options.sequenceColumn.map { [$0] } }

    /// Redeliveries go to any worker, mixed with new messages.
    public var replaysInOrder: Bool { false }

    /// The durable consumer every worker of this pipeline shares.
    public var consumerName: String { options.consumer ?? "sluice" }
    var partition: String { "jetstream:\(options.stream.stream)/\(consumerName)" }

    public func makeReader(resumingFrom checkpoint: Checkpoint, context: SourceContext) async throws -> any SourceReader {
        let connection = try await options.stream.connect(logger: context.logger, name: "sluice \(context.pipeline) (source)")
        do {
            let js = JetStream(connection)
            let stream = try await options.stream.ensureStream(js, logger: context.logger)
            var config = ConsumerConfig(durable: consumerName)
            config.filterSubject = options.filterSubject
            config.ackWait = options.ackWait
            config.maxAckPending = options.maxAckPending
            let info = try await JetStreamStreamOptions.whileElecting(logger: context.logger) {
                do {
                    return try await js.ensureConsumer(stream: options.stream.stream, config)
                } catch let error as JetStreamError {
                    throw SluiceError.jetStream(error, location: "jetstream.consumer")
                } catch let error as NATSError {
                    throw SluiceError(.unavailable, "\(error)", location: "jetstream.consumer", retryable: error.isRetryable)
                }
            }
            let consumer = try JetStreamPullConsumer(
                connection: connection, stream: options.stream.stream, consumer: consumerName,
                batch: options.batch)
            context.logger.info(
                "consuming JetStream",
                metadata: [
                    "stream": "\(stream.name)", "consumer": "\(info.name)", "pending": "\(info.pending)",
                    "ack_pending": "\(info.ackPending)", "replicas": "\(stream.replicas)",
                ])
            return JetStreamSourceReader(source: self, connection: connection, consumer: consumer, ackWait: info.ackWait, context: context)
        } catch {
            await connection.close()
            throw error
        }
    }

    public func checkReachable() async throws {
        try await options.stream.checkReachable()
    }

    /// Acknowledges the batches the commit covers (`+ACK` for records, `+TERM` for dead letters).
    public func committed(_ positions: [String: String], context: SourceContext) async throws {
        guard let value = positions[partition], let batch = JetStreamPosition(value)?.batch else { return }
        try ledger.settle(through: batch)
    }
}

/// A batch's place in this worker's arrival order, and the last stream sequence in it.
struct JetStreamPosition {
    var batch: Int
    var lastSequence: UInt64

    init(batch: Int, lastSequence: UInt64) {
        self.batch = batch
        self.lastSequence = lastSequence
    }

    init?(_ text: String) {
        guard let object = (try? JSONSerialization.jsonObject(with: Data(text.utf8))) as? [String: Any],
            let batch = object["batch"] as? Int
        else { return nil }
        self.batch = batch
        lastSequence = (object["last_seq"] as? NSNumber)?.uint64Value ?? 0
    }

    var text: String { "{\"batch\":\(batch),\"last_seq\":\(lastSequence)}" }
}

/// The acknowledgements a reader owes, batch by batch, until the commit that covers them.
final class AckLedger: Sendable {
    private struct Entry {
        var batch: Int
        var acks: [String]
        var terms: [String]
    }
    private struct State {
        var entries: [Entry] = []
        var consumer: JetStreamPullConsumer?
        var nextBatch = 1
        var held = 0
    }
    private let state = Mutex(State())

    /// Starts a new reader's ledger; what an old one held is handed back for a `-NAK`.
    func start(_ consumer: JetStreamPullConsumer) -> [String] {
        state.withLock { s in
            defer { s.entries = []; s.consumer = consumer; s.held = 0 }
            return s.entries.flatMap { $0.acks + $0.terms }
        }
    }

    /// Records a batch's acknowledgements; returns its number and how many messages are held.
    func add(acks: [String], terms: [String]) -> (batch: Int, held: Int) {
        state.withLock { s in
            let batch = s.nextBatch
            s.nextBatch += 1
            s.entries.append(Entry(batch: batch, acks: acks, terms: terms))
            s.held += acks.count + terms.count
            return (batch, s.held)
        }
    }

    func settle(through batch: Int) throws {
        let (consumer, acks, terms) = state.withLock { s -> (JetStreamPullConsumer?, [String], [String]) in
            let n = s.entries.prefix { $0.batch <= batch }.count
            defer { s.entries.removeFirst(n) }
            let done = s.entries.prefix(n)
            s.held -= done.reduce(0) { $0 + $1.acks.count + $1.terms.count }
            return (s.consumer, done.flatMap(\.acks), done.flatMap(\.terms))
        }
        guard let consumer else { return }
        try consumer.settle(acks, .ack)
        try consumer.settle(terms, .term)
    }

    /// Every message held and not yet settled.
    var held: [String] { state.withLock { s in s.entries.flatMap { $0.acks + $0.terms } } }

    func stop(_ consumer: JetStreamPullConsumer) -> [String] {
        state.withLock { s in
            guard s.consumer === consumer else { return [] }
            defer { s.entries = []; s.consumer = nil; s.held = 0 }
            return s.entries.flatMap { $0.acks + $0.terms }
        }
    }
}
