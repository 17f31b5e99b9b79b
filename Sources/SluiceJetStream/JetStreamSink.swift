import Foundation
import Logging
import Metrics
import SluiceCore
import SluiceFormats
import SluiceNATS

/// Options of `sink: {jetstream: {...}}`.
///
/// ```yaml
/// sink:
///   jetstream:
///     url: nats://127.0.0.1:4222
///     stream: EVENTS
///     subject: events.clicks          # or cdc.{table}: change events go to cdc.public.orders, …
///                                     # or cdc.{table}.{partition}: and to one of `partitions` by key
///     partitions: 4                   # with {partition}: hash of partition_by (default: the `key` column) mod 4
///     partition_by: [customer_id]
///     message_id: [event_id]          # columns that identify a record (default: see JetStreamSink)
///     max_in_flight: 4096             # publishes awaiting their PubAck
///     ack_timeout: 60s                # a commit fails (and is retried) when acks take longer
/// ```
public struct JetStreamSinkOptions: Decodable, Sendable {
    public var stream: JetStreamStreamOptions
    public var messageID: [String]?
    public var maxInFlight = 4096
    public var ackTimeout: Duration = .seconds(60)
    public var commitInterval: Duration = .seconds(1)
    public var partitions = 1
    public var partitionBy: [String]?

    enum CodingKeys: String, CodingKey {
        case messageID = "message_id", maxInFlight = "max_in_flight", ackTimeout = "ack_timeout", commitInterval = "commit_interval"
        case partitions, partitionBy = "partition_by"
    }

    public init(stream: JetStreamStreamOptions) { self.stream = stream }

    public init(from decoder: any Decoder) throws {
        stream = try JetStreamStreamOptions(from: decoder)
        let c = try decoder.container(keyedBy: CodingKeys.self)
        guard stream.subject != nil else {
            throw try decoder.container(keyedBy: JetStreamStreamOptions.CodingKeys.self).superDecoder(forKey: .stream)
                .configError("the jetstream sink needs `subject:` (where records are published)")
        }
        messageID = try c.decodeIfPresent([String].self, forKey: .messageID)
        maxInFlight = try c.decodeIfPresent(Int.self, forKey: .maxInFlight, in: 1...1_000_000) ?? maxInFlight
        ackTimeout = try c.decodeIfPresent(ConfigDuration.self, forKey: .ackTimeout)?.duration ?? ackTimeout
        commitInterval = try c.decodeIfPresent(ConfigDuration.self, forKey: .commitInterval)?.duration ?? commitInterval
        partitions = try c.decodeIfPresent(Int.self, forKey: .partitions, in: 1...1024) ?? partitions
        partitionBy = try c.decodeIfPresent([String].self, forKey: .partitionBy)
        let partitioned = stream.subject!.hasSuffix(".{partition}")
        if partitioned != (partitions > 1) {
            throw try c.superDecoder(forKey: .partitions).configError(partitioned
                ? "the subject ends in {partition}: give `partitions:` (2 or more)"
                : "`partitions:` needs a subject ending in .{partition} (e.g. cdc.{table}.{partition})")
        }
    }
}

/// Publishes records to a JetStream stream, one JSON record per message (change events keep
/// their envelope: op, table, key, before, after, source, lsn, …).
///
/// A record counts as written only when its PubAck is in: ``JetStreamSinkWriter`` keeps up to
/// `max_in_flight` publishes in the air and the commit waits for every ack, so the checkpoint
/// never passes a record the stream does not hold. Each message carries a `Nats-Msg-Id` that a
/// replay reproduces, so the stream drops the copies a crash between publish and commit sends
/// again (within `duplicate_window`):
/// - `message_id: [cols]`: the record's own key (`<pipeline>:<values>`);
/// - change events (records with `lsn` and `seq`): `<pipeline>:<commit LSN>:<index>`;
/// - otherwise the position the replay starts from (a hash of the committed checkpoint) and the
///   record's ordinal after it: `<pipeline>:<hash>:<n>`.
public struct JetStreamSink: Sink {
    public var options: JetStreamSinkOptions

    public init(options: JetStreamSinkOptions) { self.options = options }

    public static let factory = SinkFactory(
        type: "jetstream",
        summary: "publish records to a NATS JetStream stream (acked, de-duplicated by Nats-Msg-Id) for workers to consume",
        example: """
        sink:
          jetstream: { url: "nats://127.0.0.1:4222", stream: EVENTS, subject: events.clicks }
        """
    ) { config, _ in
        JetStreamSink(options: try config.decodeOptions(JetStreamSinkOptions.self))
    }

    public func makeWriter(context: SinkContext) async throws -> any SinkWriter {
        let connection = try await options.stream.connect(logger: context.logger, name: "sluice \(context.pipeline) (sink)")
        do {
            _ = try await options.stream.ensureStream(JetStream(connection), logger: context.logger)
        } catch {
            await connection.close()
            throw error
        }
        let checkpoint = try await context.state.checkpoint(pipeline: context.pipeline)
        return JetStreamSinkWriter(options: options, connection: connection, pipeline: context.pipeline,
                                   committed: checkpoint.partitions, logger: context.logger)
    }

    public func checkReachable() async throws {
        try await options.stream.checkReachable()
    }
}

/// Writes one pipeline's records to JetStream. See ``JetStreamSink``.
final class JetStreamSinkWriter: SinkWriter {
    let options: JetStreamSinkOptions
    let connection: NATSConnection
    let publisher: JetStreamPublisher
    let pipeline: String
    let logger: Logger
    /// The committed checkpoint (all partitions): a replay starts right after it.
    var committed: [String: String]
    var base: String
    var ordinal = 0
    let published: Counter
    let duplicates: Counter
    var reportedDuplicates: Int64 = 0

    init(options: JetStreamSinkOptions, connection: NATSConnection, pipeline: String, committed: [String: String], logger: Logger) {
        self.options = options
        self.connection = connection
        self.pipeline = pipeline
        self.logger = logger
        self.committed = committed
        base = Self.hash(committed)
        let latency = Metrics.Timer(label: "sluice_queue_publish_latency_seconds", dimensions: [("pipeline", pipeline)], preferredDisplayUnit: .seconds)
        publisher = JetStreamPublisher(connection: connection, window: options.maxInFlight) { latency.record(duration: $0) }
        published = Counter(label: "sluice_queue_published_total", dimensions: [("pipeline", pipeline)])
        duplicates = Counter(label: "sluice_queue_publish_duplicates_total", dimensions: [("pipeline", pipeline)])
    }

    var commitInterval: Duration { options.commitInterval }

    func write(_ batch: RecordBatch) async throws -> [RowFailure] {
        guard batch.count > 0 else { return [] }
        var json: [UInt8] = []
        json.reserveCapacity(batch.count * 128)
        NDJSONEncoder().encode(batch, into: &json)
        let subjects = try subjectsOf(batch)
        let ids = try messageIDs(batch)
        let maxPayload = connection.serverInfo?.maxPayload ?? 1 << 20
        var failures: [RowFailure] = []
        var messages: [(subject: String, messageID: String, payload: [UInt8])] = []
        messages.reserveCapacity(batch.count)
        var lineStart = 0, row = 0
        for i in json.indices where json[i] == 10 {
            let payload = Array(json[lineStart..<i])
            lineStart = i + 1
            defer { row += 1 }
            if payload.count > maxPayload {
                failures.append(RowFailure(row: row, error: SluiceError(.constraint,
                    "the record is \(payload.count) bytes; the NATS server takes at most \(maxPayload) per message (max_payload)", retryable: false)))
                continue
            }
            messages.append((subjects(row), ids(row), payload))
        }
        do {
            try await publisher.publish(messages)
        } catch {
            throw SluiceError(.unavailable, "publishing to JetStream failed: \(error)", location: "jetstream", retryable: true)
        }
        ordinal += batch.count
        published.increment(by: batch.count - failures.count)
        return failures
    }

    /// The subject of each row: `subject`, with `{table}` filled from the row's `table` column
    /// and `{partition}` from a hash of its key, so that one key's records always share a subject
    /// (and stay in order for the one worker that reads it).
    func subjectsOf(_ batch: RecordBatch) throws -> (Int) -> String {
        var template = options.stream.subject!
        var partitionOf: ((Int) -> Int)?
        if template.hasSuffix(".{partition}") {
            template = String(template.dropLast(12))
            let names = options.partitionBy ?? ["key"]
            let columns = try names.map { name in
                guard let c = batch.column(named: name) else {
                    throw SluiceError(.configuration, "partition_by column '\(name)' is not in the records (fields: \(batch.schema.fields.map(\.name).joined(separator: ", ")))",
                                      location: "sink.jetstream.partition_by", retryable: false)
                }
                return c
            }
            let count = UInt64(options.partitions)
            partitionOf = { row in
                var h: UInt64 = 0xcbf2_9ce4_8422_2325
                for c in columns {
                    let bytes = Array("\(c.value(at: row))".utf8)
                    for b in bytes { h = (h ^ UInt64(b)) &* 0x100_0000_01b3 }
                    h = (h ^ 0x1f) &* 0x100_0000_01b3
                }
                return Int(h % count)
            }
        }
        var tableOf: ((Int) -> String)?
        if template.hasSuffix(".{table}") {
            template = String(template.dropLast(8))
            let tables = batch.column(named: "table")
            tableOf = { row in
                guard let tables else { return "unknown" }
                let name = tables.withBytes(at: row) { String(decoding: $0, as: UTF8.self) }
                return String(name.map { $0 == " " || $0 == "*" || $0 == ">" ? "_" : $0 })
            }
        }
        guard tableOf != nil || partitionOf != nil else { return { [template] _ in template } }
        return { [template] row in
            var subject = template
            if let tableOf { subject += "." + tableOf(row) }
            if let partitionOf { subject += ".\(partitionOf(row))" }
            return subject
        }
    }

    func messageIDs(_ batch: RecordBatch) throws -> (Int) -> String {
        if let names = options.messageID {
            let columns = try names.map { name in
                guard let c = batch.column(named: name) else {
                    throw SluiceError(.configuration, "message_id column '\(name)' is not in the records (fields: \(batch.schema.fields.map(\.name).joined(separator: ", ")))",
                                      location: "sink.jetstream.message_id", retryable: false)
                }
                return c
            }
            let prefix = pipeline + ":"
            return { row in prefix + columns.map { "\($0.value(at: row))" }.joined(separator: ":") }
        }
        if let lsn = batch.column(named: "lsn"), let seq = batch.column(named: "seq") {
            let prefix = pipeline + ":"
            return { row in prefix + lsn.withBytes(at: row) { String(decoding: $0, as: UTF8.self) } + ":\(seq.value(at: row))" }
        }
        let first = ordinal  // advanced after the batch is published: a retried write reuses the ids
        let prefix = "\(pipeline):\(base):"
        return { row in prefix + String(first + row) }
    }

    func prepareCommit(_ commit: inout StateCommit) async throws {
        do {
            try await publisher.drain(timeout: options.ackTimeout)
        } catch {
            throw SluiceError(.unavailable, "JetStream did not acknowledge every publish: \(error)", location: "jetstream \(options.stream.stream)", retryable: true)
        }
        let (_, dup) = publisher.counts
        if dup > reportedDuplicates {
            duplicates.increment(by: Int(dup - reportedDuplicates))
            logger.info("JetStream dropped repeated publishes (a replay after a crash)", metadata: ["count": "\(dup - reportedDuplicates)"])
            reportedDuplicates = dup
        }
        committed.merge(commit.checkpoint) { _, new in new }
        base = Self.hash(committed)
        ordinal = 0
    }

    func close() async {
        await connection.close()
    }

    /// FNV-1a over the sorted checkpoint: names the position a replay starts from.
    static func hash(_ checkpoint: [String: String]) -> String {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for (k, v) in checkpoint.sorted(by: { $0.key < $1.key }) {
            for b in k.utf8 { h = (h ^ UInt64(b)) &* 0x100_0000_01b3 }
            h = (h ^ 0x3d) &* 0x100_0000_01b3
            for b in v.utf8 { h = (h ^ UInt64(b)) &* 0x100_0000_01b3 }
            h = (h ^ 0x3b) &* 0x100_0000_01b3
        }
        return String(h, radix: 36)
    }
}
