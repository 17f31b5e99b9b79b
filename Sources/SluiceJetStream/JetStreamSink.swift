import Foundation
import Logging
import Metrics
import SluiceCore
import SluiceFormats
import SluiceNATS

/// Options of `sink: {jetstream: {...}}`; each one is declared, with its default, in ``JetStreamSink/spec``.
public struct JetStreamSinkOptions: Decodable, Sendable {
    public var stream: JetStreamStreamOptions
    public var messageID: [String]?
    public var maxInFlight = 4096
    public var ackTimeout: Duration = .seconds(60)
    public var commitInterval: Duration = .seconds(1)
    public var partitions = 1
    public var partitionBy: [String]?
    public var recordsPerMessage = 500
    public var maxMessageBytes = 256 << 10

    enum CodingKeys: String, CodingKey {
        case messageID = "message_id"
        case maxInFlight = "max_in_flight"
        case ackTimeout = "ack_timeout"
        case commitInterval = "commit_interval"
        case partitions
        case partitionBy = "partition_by"
        case recordsPerMessage = "records_per_message"
        case maxMessageBytes = "max_message_bytes"
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
        recordsPerMessage = try c.decodeIfPresent(Int.self, forKey: .recordsPerMessage, in: 1...100_000) ?? recordsPerMessage
        if let bytes = try c.decodeIfPresent(ConfigByteSize.self, forKey: .maxMessageBytes) {
            guard bytes.bytes >= 1024 else { throw try c.superDecoder(forKey: .maxMessageBytes).configError("max_message_bytes must be at least 1KB") }
            maxMessageBytes = Int(bytes.bytes)
        }
        let partitioned = stream.subject!.hasSuffix(".{partition}")
        if partitioned != (partitions > 1) {
            throw try c.superDecoder(forKey: .partitions).configError(
                partitioned
                    ? "the subject ends in {partition}: give `partitions:` (2 or more)"
                    : "`partitions:` needs a subject ending in .{partition} (e.g. cdc.{table}.{partition})")
        }
    }
}

/// Publishes records to a JetStream stream as NDJSON: up to `records_per_message` records per
/// message (a `Sluice-Records: <n>` header says how many; one message carries records of one
/// subject, in order), or one record per message for records with `message_id`. Change events
/// keep their envelope (op, table, key, before, after, source, lsn, …) and are packed with
/// their ids (a `Sluice-Record-Ids` header, see ``RecordIDs``).
///
/// A record counts as written only when its PubAck is in: ``JetStreamSinkWriter`` keeps up to
/// `max_in_flight` publishes in the air and the commit waits for every ack, so the checkpoint
/// never passes a record the stream does not hold. Each message carries a `Nats-Msg-Id` that a
/// replay reproduces, so the stream drops the copies a crash between publish and commit sends
/// again (within `duplicate_window`):
/// - `message_id: [cols]`: the record's own key (`<pipeline>:<values>`);
/// - change events (records with `lsn` and `seq`): `<pipeline>:<commit LSN>:<index>`, and for
///   snapshot reads `<pipeline>:r:<snapshot_epoch>:<hash of table and key>` (see
///   ``ChangeEventIDs``). A packed message is named by its first change; the writer skips the
///   changes the stream took after the last commit (read from the stream after a crash), so a
///   replay that packs them differently stores none twice;
/// - otherwise the position of the message's first record: `<pipeline>:<lineage>:<ordinal>`
///   (see ``PositionalMessageIDs``), stored with each checkpoint so a replay numbers its
///   records as the first attempt did, wherever its commits fall.
public struct JetStreamSink: Sink {
    public var options: JetStreamSinkOptions

    public init(options: JetStreamSinkOptions) { self.options = options }

    public static let spec = ComponentSpec(
        type: "jetstream",
        summary: "publish records to a NATS JetStream stream, several per message (acked, de-duplicated by Nats-Msg-Id) for workers to consume",
        options: JetStreamStreamOptions.specOptions(
            subject: OptionSpec(
                "subject", .string, required: true, example: "events.clicks",
                "Where records are published (the stream is created with it when missing). It may end in `.{table}` (change events go to `cdc.public.orders`, …) and then in `.{partition}` (see `partitions`)."
            ),
            own: [
                OptionSpec(
                    "message_id", .list(.string), example: "[event_id]",
                    "Columns that identify a record, making its `Nats-Msg-Id` (one record per message). Default: the commit LSN and index for change events (a snapshot read: the slot's snapshot epoch, table and key; packed, each in a `Sluice-Record-Ids` header), else the record's position; required behind a source that redelivers in any order (a queue)."
                ),
                OptionSpec(
                    "records_per_message", .integer(1...100_000), default: "500", example: "1",
                    "Consecutive records of one subject packed as NDJSON into one message (with a `Sluice-Records` header); `1` publishes one JSON record per message. Change events are packed with their ids (a `Sluice-Record-Ids` header, at most 2,700 a message); records with `message_id` always go one per message."
                ),
                OptionSpec(
                    "max_message_bytes", .byteSize, default: "256KB", example: "1MB",
                    "A message closes before it grows past this (and past the server's `max_payload`); at least 1KB."),
                OptionSpec(
                    "max_in_flight", .integer(1...1_000_000), default: "4096", example: "1024",
                    "Publishes awaiting their PubAck at once."),
                OptionSpec(
                    "ack_timeout", .duration, default: "60s", example: "30s",
                    "A commit waits this long for every PubAck; then it fails and is retried."),
                OptionSpec(
                    "commit_interval", .duration, default: "1s", example: "5s",
                    "The longest time between commits while records flow (each commit waits for the acks and moves the checkpoint)."),
                OptionSpec(
                    "partitions", .integer(1...1024), default: "1", example: "4", requires: [#"subject: "events.{partition}""#],
                    "With a `subject` ending in `.{partition}` (and required by it, 2 or more): records go to one of this many subjects by a hash of `partition_by`, so one key's records keep their order."
                ),
                OptionSpec(
                    "partition_by", .list(.string), example: "[customer_id]", requires: ["partitions: 4", #"subject: "events.{partition}""#],
                    "With `partitions`: the columns hashed to choose the partition. Default: `[key]` (the change event's key)."),
            ]),
        example: """
            sink:
              jetstream: { url: "nats://127.0.0.1:4222", stream: EVENTS, subject: events.clicks }
            """,
        capabilities: [.queue],
        exampleFile: "examples/jetstream-fanout.yaml"
    )

    public static let factory = SinkFactory(spec: spec) { config, _ in
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
        return JetStreamSinkWriter(
            options: options, connection: connection, pipeline: context.pipeline,
            checkpoint: checkpoint, logger: context.logger)
    }

    public func checkReachable() async throws {
        try await options.stream.checkReachable()
    }

    /// Records numbered by position need a source that replays them in order: behind a queue
    /// (several workers, redeliveries in any order) two records could get one id, and the
    /// stream would drop one of them.
    public func incompatibility(with source: any Source) -> (key: String, message: String)? {
        guard options.messageID == nil, !source.replaysInOrder else { return nil }
        return (
            "message_id",
            "this source redelivers records in any order (and to any worker), so the sink cannot name them by "
                + "position: give `message_id:` with columns that identify a record (e.g. [event_id], or [lsn, seq] for change events)"
        )
    }
}
