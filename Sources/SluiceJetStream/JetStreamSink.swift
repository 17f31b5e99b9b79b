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
///     records_per_message: 500        # NDJSON records per message (1: one JSON record per message)
///     max_message_bytes: 256KB        # a message closes before it grows past this (and the server's max_payload)
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
    public var recordsPerMessage = 500
    public var maxMessageBytes = 256 << 10

    enum CodingKeys: String, CodingKey {
        case messageID = "message_id", maxInFlight = "max_in_flight", ackTimeout = "ack_timeout", commitInterval = "commit_interval"
        case partitions, partitionBy = "partition_by", recordsPerMessage = "records_per_message", maxMessageBytes = "max_message_bytes"
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
            throw try c.superDecoder(forKey: .partitions).configError(partitioned
                ? "the subject ends in {partition}: give `partitions:` (2 or more)"
                : "`partitions:` needs a subject ending in .{partition} (e.g. cdc.{table}.{partition})")
        }
    }
}

/// Publishes records to a JetStream stream as NDJSON: up to `records_per_message` records per
/// message (a `Sluice-Records: <n>` header says how many; one message carries records of one
/// subject, in order), or one record per message for change events and records with
/// `message_id` (change events keep their envelope: op, table, key, before, after, source, lsn, …).
///
/// A record counts as written only when its PubAck is in: ``JetStreamSinkWriter`` keeps up to
/// `max_in_flight` publishes in the air and the commit waits for every ack, so the checkpoint
/// never passes a record the stream does not hold. Each message carries a `Nats-Msg-Id` that a
/// replay reproduces, so the stream drops the copies a crash between publish and commit sends
/// again (within `duplicate_window`):
/// - `message_id: [cols]`: the record's own key (`<pipeline>:<values>`);
/// - change events (records with `lsn` and `seq`): `<pipeline>:<commit LSN>:<index>`;
/// - otherwise the position of the message's first record: `<pipeline>:<lineage>:<ordinal>`
///   (see ``PositionalMessageIDs``), stored with each checkpoint so a replay numbers its
///   records as the first attempt did, wherever its commits fall.
public struct JetStreamSink: Sink {
    public var options: JetStreamSinkOptions

    public init(options: JetStreamSinkOptions) { self.options = options }

    public static let factory = SinkFactory(
        type: "jetstream",
        summary: "publish records to a NATS JetStream stream, several per message (acked, de-duplicated by Nats-Msg-Id) for workers to consume",
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
        return ("message_id", "this source redelivers records in any order (and to any worker), so the sink cannot name them by "
                + "position: give `message_id:` with columns that identify a record (e.g. [event_id], or [lsn, seq] for change events)")
    }
}

