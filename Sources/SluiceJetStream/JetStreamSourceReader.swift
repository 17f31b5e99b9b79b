import Foundation
import Logging
import Metrics
import NIOCore
import SluiceCore
import SluiceFormats
import SluiceNATS

/// Pulls, decodes and hands over one worker's messages. See ``JetStreamSource``.
final class JetStreamSourceReader: SourceReader {
    let source: JetStreamSource
    let connection: NATSConnection
    let consumer: JetStreamPullConsumer
    let context: SourceContext
    let decoder: NDJSONDecoder
    var prepared = false
    var keepAlive: RepeatedTask?
    var buffer: [UInt8] = []
    let lag: Gauge
    let redeliveries: Counter
    var options: JetStreamSourceOptions { source.options }

    init(source: JetStreamSource, connection: NATSConnection, consumer: JetStreamPullConsumer, ackWait: Duration, context: SourceContext) {
        self.source = source
        self.connection = connection
        self.consumer = consumer
        self.context = context
        var decodeOptions = NDJSONOptions()
        decodeOptions.columns = source.options.decodeFields
        decodeOptions.batchRows = Int.max / 2
        decoder = NDJSONDecoder(options: decodeOptions)
        let d = [("pipeline", context.pipeline)]
        lag = Gauge(label: "sluice_queue_consumer_pending", dimensions: d)
        redeliveries = Counter(label: "sluice_queue_redeliveries_total", dimensions: d)
        let previous = source.ledger.start(consumer)
        try? consumer.settle(previous, .nak(delay: .seconds(1)))
        // Keep held messages ours while they are written and committed: every held or buffered
        // message is renewed four times per ack_wait, so only a stall of 3/4 of it loses one.
        let quarter = ackWait / 4
        let period = quarter.components.seconds * 1_000_000_000 + quarter.components.attoseconds / 1_000_000_000
        keepAlive = connection.group.next().scheduleRepeatedTask(initialDelay: .nanoseconds(period), delay: .nanoseconds(period)) {
            [ledger = source.ledger, consumer] _ in
            try? consumer.settle(ledger.held + consumer.bufferedSubjects, .inProgress)
        }
    }

    func next() async throws -> SourceBatch? {
        var outage: ContinuousClock.Instant?
        while !Task.isCancelled {
            let messages: [JetStreamMessage]
            do {
                messages = try await consumer.fetch(max: options.batch)
                outage = nil
            } catch let error as NATSError where error.isRetryable {
                let since = outage ?? .now
                outage = since
                if ContinuousClock.now - since > .seconds(60) {
                    throw SluiceError(.unavailable, "JetStream unreachable for 60 s: \(error)", location: "jetstream", retryable: true)
                }
                try? await connection.waitConnected(timeout: .seconds(5))
                continue
            }
            if let warning = consumer.takeWarning() {
                context.logger.warning("JetStream pull", metadata: ["status": "\(warning)"])
            }
            if messages.isEmpty { continue }
            return decode(messages)
        }
        return nil
    }

    func decode(_ messages: [JetStreamMessage]) -> SourceBatch {
        buffer.removeAll(keepingCapacity: true)
        var rejects: [DeadLetter] = []
        var terms: [String] = []
        // Each line fed to the decoder: its message, its index in the message, where it starts.
        var lines: [(message: Int, record: Int, start: Int)] = []
        lines.reserveCapacity(messages.count)
        var redelivered = 0
        for (i, m) in messages.enumerated() {
            if m.delivered > 1 { redelivered += 1 }
            if m.delivered > options.maxDeliveries {
                rejects.append(
                    letter(
                        m, kind: "max_deliveries",
                        "delivered \(m.delivered) times without a commit (max_deliveries: \(options.maxDeliveries)): it crashed or failed every worker; terminated"
                    ))
                terms.append(m.ackSubject)
                continue
            }
            guard m.payload.contains(where: { $0 != 32 && $0 != 9 && $0 != 10 && $0 != 13 }) else {
                rejects.append(letter(m, kind: "malformed_row", "the message is empty; one JSON record per message is expected"))
                terms.append(m.ackSubject)
                continue
            }
            if let header = m.headers?["Sluice-Records"], let count = Int(header), count > 1 {
                // NDJSON, one record per line (what the jetstream sink publishes).
                m.payload.withUnsafeBytes { (payload: UnsafeRawBufferPointer) in
                    guard let base = payload.baseAddress else { return }
                    var record = 0, start = 0
                    while start < payload.count {
                        var end = payload.count
                        if let found = memchr(base + start, 10, payload.count - start) { end = UnsafeRawPointer(found) - base }
                        let line = UnsafeRawBufferPointer(rebasing: payload[start..<end])
                        start = end + 1
                        guard line.contains(where: { $0 != 32 && $0 != 9 && $0 != 13 }) else { continue }
                        lines.append((i, record, buffer.count))
                        Self.appendFlattened(line, to: &buffer)
                        buffer.append(10)
                        record += 1
                    }
                }
            } else {
                // One record per message: line breaks are JSON whitespace (raw ones are invalid inside strings).
                lines.append((i, 0, buffer.count))
                m.payload.withUnsafeBytes { Self.appendFlattened($0, to: &buffer) }
                buffer.append(10)
            }
        }
        if redelivered > 0 { redeliveries.increment(by: redelivered) }
        var output = DecodeOutput(batch: RecordBatch.empty(Schema([])), rejects: [], consumed: 0)
        if !buffer.isEmpty {
            output = buffer.withUnsafeBytes { raw -> DecodeOutput in
                if !prepared {
                    _ = try? decoder.prepare(sample: UnsafeRawBufferPointer(rebasing: raw.prefix(1 << 20)), isWholeInput: raw.count <= 1 << 20)
                    prepared = true
                }
                decoder.seek(offset: 0, line: 1)
                return decoder.decode(raw, isFinal: true)
            }
        }
        var rejectedLines = Set<Int>()
        for r in output.rejects {
            let line = lines[r.line - 1]
            let m = messages[line.message]
            rejectedLines.insert(r.line - 1)
            if m.headers?["Sluice-Records"] != nil {
                let end = r.line < lines.count ? lines[r.line].start - 1 : buffer.count - 1
                rejects.append(
                    DeadLetter(
                        stage: "decode", errorKind: r.kind, message: r.message,
                        location: location(m) + " record \(line.record + 1)", raw: Array(buffer[line.start..<end])))
            } else {
                rejects.append(DeadLetter(stage: "decode", errorKind: r.kind, message: r.message, location: location(m), raw: m.payload))
            }
        }
        // A message is acknowledged when one of its records is kept, terminated when none is.
        var acks: [String] = []
        acks.reserveCapacity(messages.count)
        var sequences = ColumnBuilder(type: .int64)
        var kept = 0
        var lineIndex = 0
        var unitBreaks = Set<Int>()
        var previousSequence: UInt64?
        while lineIndex < lines.count {
            let message = lines[lineIndex].message
            var keptHere = false
            while lineIndex < lines.count, lines[lineIndex].message == message {
                if !rejectedLines.contains(lineIndex) {
                    // A message delivered again right after itself: its records start a unit of
                    // their own (dedupe drops them), not more of the copy before.
                    if !keptHere, previousSequence == messages[message].streamSequence { unitBreaks.insert(kept) }
                    sequences.append(Int64(messages[message].streamSequence))
                    kept += 1
                    keptHere = true
                }
                lineIndex += 1
            }
            if keptHere { previousSequence = messages[message].streamSequence }
            if keptHere { acks.append(messages[message].ackSubject) } else { terms.append(messages[message].ackSubject) }
        }
        var records = output.batch
        if let name = options.sequenceColumn, records.schema.index(of: name) == nil, records.count == kept {
            records = RecordBatch(
                schema: Schema(records.schema.fields + [Field(name, .int64, nullable: false)]),
                columns: records.columns + [sequences.finish()])
        }
        let last = messages.last!
        lag.record(Int64(last.pending))
        context.reportLag(Double(last.pending), "messages")
        let (batch, held) = source.ledger.add(acks: acks, terms: terms)
        var out = SourceBatch(
            records: records, rejects: rejects,
            position: SourcePosition(partition: source.partition, value: JetStreamPosition(batch: batch, lastSequence: last.streamSequence).text),
            inputBytes: buffer.count)
        // The consumer stops delivering at max_ack_pending (shared by all workers): commit well
        // before this worker's share of it is held, whatever the sink's own commit rhythm.
        out.commitSoon = held >= max(options.batch, options.maxAckPending / 4)
        // The records of one message share its stream sequence: they are kept or dropped together.
        out.keyRunsAreUnits = true
        out.unitBreaks = unitBreaks
        // The origin of a queued record is its message's publication (stored in the stream).
        out.originTime = messages.map(\.timestampNanos).min().map { Date(timeIntervalSince1970: Double($0) / 1e9) }
        return out
    }

    /// Appends `bytes` with its line breaks turned into spaces (JSON whitespace), so that it is
    /// one line of the decoder's input.
    static func appendFlattened(_ bytes: UnsafeRawBufferPointer, to buffer: inout [UInt8]) {
        let start = buffer.count
        buffer.append(contentsOf: bytes)
        buffer.withUnsafeMutableBytes { b in
            guard let base = b.baseAddress else { return }
            for lineBreak in [10, 13] as [Int32] {
                var from = start
                while from < b.count, let found = memchr(base + from, lineBreak, b.count - from) {
                    found.storeBytes(of: 32, as: UInt8.self)
                    from = found - base + 1
                }
            }
        }
    }

    func location(_ m: JetStreamMessage) -> String {
        "jetstream:\(m.stream)/\(m.subject) seq \(m.streamSequence)"
    }

    func letter(_ m: JetStreamMessage, kind: String, _ message: String) -> DeadLetter {
        DeadLetter(stage: "queue", errorKind: kind, message: message, location: location(m), raw: m.payload)
    }

    func close() async {
        keepAlive?.cancel()
        // What was pulled and not committed goes back now (with a backoff), not after ack_wait.
        let held = source.ledger.stop(consumer) + consumer.takeBuffered()
        var byDelay: [Int: [String]] = [:]
        for subject in held {
            let delivered = JetStreamMessage.delivered(ackSubject: subject)
            byDelay[min(60, 1 << min(delivered - 1, 6)), default: []].append(subject)
        }
        for (seconds, subjects) in byDelay { try? consumer.settle(subjects, .nak(delay: .seconds(seconds))) }
        try? await connection.flush(timeout: .seconds(2))
        await connection.close()
    }
}
