import Foundation
import Logging
import Metrics
import SluiceCore
import SluiceFormats
import SluiceNATS

/// Writes one pipeline's records to JetStream. See ``JetStreamSink``.
final class JetStreamSinkWriter: SinkWriter {
    let options: JetStreamSinkOptions
    let connection: NATSConnection
    let publisher: JetStreamPublisher
    let pipeline: String
    let logger: Logger
    /// The numbering of records without an identity of their own (committed with the checkpoint).
    var ids: PositionalMessageIDs
    /// The numbering as last committed: a commit stores it only when it changed.
    var committedIDs: PositionalMessageIDs?
    var grouper: RecordGrouper
    /// Packs change events (records with ids of their own), one open message per subject.
    var identifiedGrouper: SubjectGrouper
    /// The stream sequence stored with the last commit (see ``sequencePartition``).
    var committedSequence: UInt64?
    /// Tokens stored with the last commit of change events the stream holds that a replay had
    /// not met yet (see ``heldPartition``), and that value as stored.
    var carried: [DedupeHash]
    var carriedValue: String
    /// Tokens of change events the stream holds but no commit covers (read at the first write of
    /// a run: those after the stored sequence, and the carried ones): a replay skips them. Nil
    /// until read. Those a replay met leave it at a commit.
    var held: Set<DedupeHash>?
    /// Tokens of `held` met in batches written since the last commit.
    var matched: Set<DedupeHash> = []
    /// `held` less `matched`, as the commit being made stores it.
    var unmatched: Set<DedupeHash>?
    /// Change events skipped since the last commit because the stream holds them.
    var skippedHeld = 0
    /// True when packed change events were published since the last commit.
    var identifiedSinceCommit = false
    /// True until the stream takes a message as new: until then, each message is published on
    /// its own and its PubAck read, so a replay finds where the previous attempt stopped.
    var recovering = true
    let published: Counter
    let duplicates: Counter
    var reportedDuplicates: Int64 = 0
    var replayedMessages = 0

    init(options: JetStreamSinkOptions, connection: NATSConnection, pipeline: String, checkpoint: Checkpoint, logger: Logger) {
        self.options = options
        self.connection = connection
        self.pipeline = pipeline
        self.logger = logger
        ids = PositionalMessageIDs(checkpoint: checkpoint, stream: options.stream.stream)
        committedIDs = checkpoint[PositionalMessageIDs.partition(stream: options.stream.stream)].flatMap(PositionalMessageIDs.init)
        let maxPayload = connection.serverInfo?.maxPayload ?? 1 << 20
        grouper = RecordGrouper(maxRecords: options.recordsPerMessage, maxBytes: min(options.maxMessageBytes, maxPayload - 256))
        // The ids of packed change events take 23 bytes a record in the headers.
        identifiedGrouper = SubjectGrouper(
            maxRecords: min(options.recordsPerMessage, RecordIDs.maxPerMessage), maxBytes: min(options.maxMessageBytes, maxPayload - 256),
            overheadPerRecord: 23)
        committedSequence = checkpoint[Self.sequencePartition(stream: options.stream.stream)].flatMap { UInt64($0) }
        carriedValue = checkpoint[Self.heldPartition(stream: options.stream.stream)] ?? ""
        carried = RecordIDs.parse(carriedValue) ?? []
        let latency = Metrics.Timer(label: "sluice_queue_publish_latency_seconds", dimensions: [("pipeline", pipeline)], preferredDisplayUnit: .seconds)
        publisher = JetStreamPublisher(connection: connection, window: options.maxInFlight) { latency.record(duration: $0) }
        published = Counter(label: "sluice_queue_published_total", dimensions: [("pipeline", pipeline)])
        duplicates = Counter(label: "sluice_queue_publish_duplicates_total", dimensions: [("pipeline", pipeline)])
    }

    var commitInterval: Duration { options.commitInterval }
    var maxPayload: Int { connection.serverInfo?.maxPayload ?? 1 << 20 }

    func write(_ batch: RecordBatch) async throws -> [RowFailure] {
        guard batch.count > 0 else { return [] }
        var json: [UInt8] = []
        json.reserveCapacity(batch.count * 128)
        NDJSONEncoder().encode(batch, into: &json)
        let subjects = try subjectsOf(batch)
        let ownIDs = try ownMessageIDs(batch)
        // Change events are packed with their ids, unless one record per message is asked for.
        let packsOwn = ownIDs != nil && options.messageID == nil && options.recordsPerMessage > 1
        if packsOwn, held == nil { held = try await storedSinceCommit() }
        let maxRecord = maxPayload - 256 - (packsOwn ? 23 : 0)  // room for the headers
        var failures: [RowFailure] = []
        var messages: [JetStreamPublisher.Message] = []
        // The grouper is changed on a copy: a write that fails is retried with the same batch.
        var grouper = self.grouper
        var identified = self.identifiedGrouper, closed: [RecordGroup] = [], met: [DedupeHash] = []
        var lineStart = 0, row = 0
        var id: [UInt8] = []  // a record's own id, written again for each row
        for i in json.indices where json[i] == 10 {
            let line = json[lineStart..<i]
            lineStart = i + 1
            defer { row += 1 }
            if line.count > maxRecord {
                failures.append(
                    RowFailure(
                        row: row,
                        error: SluiceError(
                            .constraint,
                            "the record is \(line.count) bytes; the NATS server takes at most \(maxRecord) per message (max_payload less headers)",
                            retryable: false)))
                continue
            }
            if let ownIDs {
                id.removeAll(keepingCapacity: true)
                ownIDs(row, &id)
                guard packsOwn else {
                    messages.append(.init(subject: subjects(row), messageID: String(decoding: id, as: UTF8.self), payload: Array(line)))
                    continue
                }
                let hash = id.withUnsafeBytes { SipHash128.hash($0, seed: RecordIDs.seed) }
                if held?.contains(hash) == true {
                    met.append(hash)  // the stream took it before a crash
                    continue
                }
                identified.add(line, subject: subjects(row), id: (id, hash), closed: &closed)
                if !closed.isEmpty {
                    messages += closed.map(message)
                    closed.removeAll(keepingCapacity: true)
                }
                continue
            }
            let ordinal = ids.next + row
            if ordinal < ids.skipThrough { continue }  // the stream holds it (a replay found it)
            if let closed = grouper.add(line, subject: subjects(row), ordinal: ordinal) { messages.append(message(closed)) }
        }
        try await publish(messages)
        self.grouper = grouper
        self.identifiedGrouper = identified
        skippedHeld += met.count
        matched.formUnion(met)
        if packsOwn { identifiedSinceCommit = true }
        if ownIDs == nil { ids.next += batch.count }
        published.increment(by: batch.count - failures.count)
        return failures
    }

    func message(_ group: RecordGroup) -> JetStreamPublisher.Message {
        if let firstID = group.firstID {
            var recordIDs: [UInt8] = []
            recordIDs.reserveCapacity(group.ids.count * 23)
            RecordIDs.encode(group.ids, into: &recordIDs)
            return .init(
                subject: group.subject, messageID: RecordIDs.messageID(first: firstID, tokens: recordIDs), payload: group.payload, records: group.count,
                recordIDs: recordIDs)
        }
        return .init(subject: group.subject, messageID: "\(pipeline):\(ids.lineage):\(group.first)", payload: group.payload, records: group.count)
    }

    /// The checkpoint partition that holds the stream sequence of the last commit of the sink
    /// publishing to `stream` (of packed change events).
    static func sequencePartition(stream: String) -> String { Checkpoint.sinkPartitionPrefix + "jetstream-seq:" + stream }

    /// The checkpoint partition that holds the tokens of change events that the stream holds,
    /// at or before the stored sequence, and that no commit covers: taken before a crash, not
    /// yet met by the replay when the commit was made. A crash then must not lose track of them.
    static func heldPartition(stream: String) -> String { Checkpoint.sinkPartitionPrefix + "jetstream-held:" + stream }

    /// The tokens (``RecordIDs``) of this pipeline's change events that the stream took after
    /// the last commit: the messages after the sequence stored with it, or, with none stored
    /// (no commit yet), those within the stream's duplicate window, the span in which the
    /// server itself would drop a repeated message.
    func storedSinceCommit() async throws -> Set<DedupeHash> {
        let js = JetStream(connection)
        let stream = options.stream.stream
        let info: StreamInfo?
        do {
            info = try await js.streamInfo(stream)
        } catch {
            throw SluiceError(.unavailable, "reading the stream's state failed: \(error)", location: "jetstream \(stream)", retryable: true)
        }
        var held = Set(carried)
        guard let info, info.lastSequence > 0 else { return held }
        var checked = 0
        let prefix = pipeline + ":"
        func take(_ message: [String: Any]) {
            guard let encoded = message["hdrs"] as? String, let headers = Data(base64Encoded: encoded),
                let id = RecordIDs.field("Nats-Msg-Id", in: headers), id.hasPrefix(prefix)
            else { return }
            if let value = RecordIDs.field(RecordIDs.header, in: headers), let tokens = RecordIDs.parse(value) {
                held.formUnion(tokens)
            } else {
                held.insert(RecordIDs.hash(String(id)))  // a change event published on its own
            }
        }
        let first = max(info.firstSequence, 1)
        if let committed = committedSequence, committed <= info.lastSequence {
            var seq = max(committed + 1, first)
            while seq <= info.lastSequence {
                if let m = try await storedMessage(seq) { take(m) }
                checked += 1
                seq += 1
            }
        } else {
            let window = (info.duplicateWindow ?? .seconds(120)).components
            let oldest = Date().addingTimeInterval(-(Double(window.seconds) + Double(window.attoseconds) / 1e18))
            let dates = ISO8601DateFormatter()
            var seq = info.lastSequence
            while seq >= first {
                if let m = try await storedMessage(seq) {
                    if let time = Self.time(m["time"] as? String, dates), time < oldest { break }
                    take(m)
                }
                checked += 1
                seq -= 1
            }
        }
        if !held.isEmpty || checked > 0 {
            logger.info(
                "read what the stream took after the last commit: its change events are not published again",
                metadata: ["messages": "\(checked)", "change_events": "\(held.count)", "since_sequence": "\(committedSequence.map(String.init) ?? "none")"])
        }
        return held
    }

    /// Stored message `sequence` as `STREAM.MSG.GET` returns it, or nil when it is gone.
    func storedMessage(_ sequence: UInt64) async throws -> [String: Any]? {
        do {
            return try await JetStream(connection).request("STREAM.MSG.GET.\(options.stream.stream)", ["seq": sequence])["message"] as? [String: Any]
        } catch let JetStreamError.api(code, errorCode, _) where code == 404 || errorCode == 10037 {
            return nil
        } catch {
            throw SluiceError(
                .unavailable, "reading a stored message from JetStream failed: \(error)", location: "jetstream \(options.stream.stream)", retryable: true)
        }
    }

    /// A stored message's `time` (RFC 3339, nanoseconds), to the second.
    static func time(_ text: String?, _ dates: ISO8601DateFormatter) -> Date? {
        guard let text, text.count >= 19 else { return nil }
        return dates.date(from: text.prefix(19) + "Z")
    }

    func publish(_ messages: [JetStreamPublisher.Message]) async throws {
        guard !messages.isEmpty else { return }
        var rest = messages[...]
        while recovering, let first = rest.first {
            // Records with their own ids need no replay check: the stream drops their copies.
            guard let group = RecordGroup(first, lineagePrefix: "\(pipeline):\(ids.lineage):") else { recovering = false; break }
            rest = rest.dropFirst()
            try await publishReplayed(group)
        }
        guard !rest.isEmpty else { return }
        do {
            try await publisher.publish(Array(rest))
        } catch {
            throw SluiceError(.unavailable, "publishing to JetStream failed: \(error)", location: "jetstream", retryable: true)
        }
    }

    /// Publishes one message of a possible replay and reads its PubAck. A message the stream
    /// already holds (a duplicate) is compared with the stored one: records the stored one
    /// lacks are sent again as a message of their own; records it has beyond this one are
    /// skipped when they come (``PositionalMessageIDs/skipThrough``). The first message stored
    /// as new ends the replay: from then on messages are pipelined.
    func publishReplayed(_ group: RecordGroup) async throws {
        var pending = group
        while true {
            pending.dropFirst(ids.skipThrough - pending.first)
            if pending.count == 0 { return }
            let ack = try await publishAlone(self.message(pending))
            guard ack.duplicate else { recovering = false; return }
            replayedMessages += 1
            // At least 1: a stored message always holds its first record (and the loop must advance).
            let stored = max(1, try await storedRecords(sequence: ack.sequence, expected: pending.count))
            if stored >= pending.count {
                ids.skipThrough = max(ids.skipThrough, pending.first + stored)
                return
            }
            pending.dropFirst(stored)  // the stored message ended earlier (a commit closed it): send the rest
        }
    }

    struct PubAck { var sequence: UInt64; var duplicate: Bool }

    @discardableResult
    func publishAlone(_ message: JetStreamPublisher.Message) async throws -> PubAck {
        var fields = [(name: "Nats-Msg-Id", value: message.messageID)]
        if message.records > 1 { fields.append((name: "Sluice-Records", value: String(message.records))) }
        let deadline = ContinuousClock.now + options.ackTimeout
        while true {
            do {
                let reply = try await connection.request(
                    message.subject, payload: message.payload, headers: NATSHeaders(fields: fields),
                    timeout: .seconds(5))
                let object = (try? JSONSerialization.jsonObject(with: Data(reply.payload))) as? [String: Any]
                if let seq = (object?["seq"] as? NSNumber)?.uint64Value, object?["error"] == nil {
                    return PubAck(sequence: seq, duplicate: object?["duplicate"] as? Bool ?? false)
                }
                let said = String(decoding: reply.payload.prefix(300), as: UTF8.self)
                if ContinuousClock.now >= deadline {
                    throw SluiceError(.unavailable, "JetStream refused a publish: \(said)", location: "jetstream \(options.stream.stream)", retryable: true)
                }
            } catch let error as SluiceError {
                throw error
            } catch {
                if ContinuousClock.now >= deadline {
                    throw SluiceError(.unavailable, "publishing to JetStream failed: \(error)", location: "jetstream \(options.stream.stream)", retryable: true)
                }
            }
            try await Task.sleep(for: .milliseconds(250))  // a leader election, a reconnect
        }
    }

    /// How many records the stored message `sequence` holds (its `Sluice-Records` header; 1
    /// without one). When the message is gone (a retention limit removed it), `expected` is
    /// assumed, with a warning: the replay can then not be checked record by record.
    func storedRecords(sequence: UInt64, expected: Int) async throws -> Int {
        let js = JetStream(connection)
        do {
            let reply = try await js.request("STREAM.MSG.GET.\(options.stream.stream)", ["seq": sequence])
            guard let message = reply["message"] as? [String: Any] else { return 1 }
            guard let encoded = message["hdrs"] as? String, let headers = Data(base64Encoded: encoded) else { return 1 }
            for line in String(decoding: headers, as: UTF8.self).split(separator: "\r\n") {
                let parts = line.split(separator: ":", maxSplits: 1)
                if parts.count == 2, parts[0].lowercased() == "sluice-records", let n = Int(parts[1].trimmingCharacters(in: .whitespaces)) { return n }
            }
            return 1
        } catch let JetStreamError.api(code, errorCode, description) where code == 404 || errorCode == 10037 {
            logger.warning(
                "a replayed message is a duplicate of one the stream no longer holds; assuming it held the same records",
                metadata: ["sequence": "\(sequence)", "server": "\(description)"])
            return expected
        } catch {
            throw SluiceError(
                .unavailable, "reading a stored message from JetStream failed: \(error)", location: "jetstream \(options.stream.stream)", retryable: true)
        }
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
                    throw SluiceError(
                        .configuration,
                        "partition_by column '\(name)' is not in the records (fields: \(batch.schema.fields.map(\.name).joined(separator: ", ")))",
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
        var tableOf: [String]?
        if template.hasSuffix(".{table}") {
            template = String(template.dropLast(8))
            // Each row's `<template>.<table>`, made once for a run of rows of one table.
            let tables = batch.column(named: "table")
            var names: [String] = []
            names.reserveCapacity(batch.count)
            var last: [UInt8]?, subject = template + ".unknown"
            for row in 0..<batch.count {
                if let tables, !tables.isNull(row) {
                    tables.withBytes(at: row) { bytes in
                        guard last.map({ !$0.elementsEqual(bytes) }) ?? true else { return }
                        last = Array(bytes)
                        let name = String(decoding: bytes.map { $0 == 32 || $0 == 42 || $0 == 62 ? UInt8(ascii: "_") : $0 }, as: UTF8.self)
                        subject = template + "." + name
                    }
                } else {
                    last = nil
                    subject = template + ".unknown"
                }
                names.append(subject)
            }
            tableOf = names
        }
        guard tableOf != nil || partitionOf != nil else { return { [template] _ in template } }
        return { [template] row in
            var subject = tableOf?[row] ?? template
            if let partitionOf { subject += ".\(partitionOf(row))" }
            return subject
        }
    }

    /// Ids of records that carry their own identity, appended to a buffer: `message_id` columns
    /// (one record per message), or a change event's commit LSN and index (packed, see
    /// ``RecordIDs``). Nil for records numbered by position.
    func ownMessageIDs(_ batch: RecordBatch) throws -> ((Int, inout [UInt8]) -> Void)? {
        if let names = options.messageID {
            let columns = try names.map { name in
                guard let c = batch.column(named: name) else {
                    throw SluiceError(
                        .configuration,
                        "message_id column '\(name)' is not in the records (fields: \(batch.schema.fields.map(\.name).joined(separator: ", ")))",
                        location: "sink.jetstream.message_id", retryable: false)
                }
                return c
            }
            let prefix = pipeline + ":"
            return { row, out in out += (prefix + columns.map { "\($0.value(at: row))" }.joined(separator: ":")).utf8 }
        }
        if let lsn = batch.column(named: "lsn"), let seq = batch.column(named: "seq") {
            let prefix = Array((pipeline + ":").utf8)
            let snapshotIDs = ChangeEventIDs.snapshotReads(batch, pipeline: pipeline)
            let seqs: [Int64]? = if case let .int64(values) = seq.storage, seq.type == .int64 { values } else { nil }
            let lsnIsText = if case .bytes = lsn.storage { true } else { false }
            return { row, out in
                if let snapshotIDs, let id = snapshotIDs(row) {
                    out += id.utf8
                    return
                }
                out += prefix
                if lsnIsText, !lsn.isNull(row) { lsn.withBytes(at: row) { out += $0 } } else { out += "\(lsn.value(at: row))".utf8 }
                out.append(UInt8(ascii: ":"))
                if let seqs, !seq.isNull(row), seqs[row] >= 0 {
                    // The digits of a non-negative index, most significant first.
                    let start = out.count
                    var v = seqs[row]
                    repeat {
                        out.append(UInt8(48 + v % 10))
                        v /= 10
                    } while v > 0
                    out[start...].reverse()
                } else {
                    out += "\(seq.value(at: row))".utf8
                }
            }
        }
        return nil
    }

    func prepareCommit(_ commit: inout StateCommit) async throws {
        // A commit closes the open message: every record it covers must be acked first.
        if let open = grouper.open {
            try await publish([message(open)])
            grouper.open = nil
        }
        if !identifiedGrouper.isEmpty {
            // The grouper is emptied after the publish, so a failed one is retried.
            var grouper = identifiedGrouper
            try await publish(grouper.takeAll().map(message))
            identifiedGrouper = grouper
        }
        do {
            try await publisher.drain(timeout: options.ackTimeout)
        } catch {
            throw SluiceError(
                .unavailable, "JetStream did not acknowledge every publish: \(error)", location: "jetstream \(options.stream.stream)", retryable: true)
        }
        let (_, dup) = publisher.counts
        if dup > reportedDuplicates || replayedMessages > 0 {
            let count = Int(dup - reportedDuplicates) + replayedMessages
            duplicates.increment(by: count)
            logger.info("JetStream dropped repeated publishes (a replay after a crash)", metadata: ["messages": "\(count)"])
            reportedDuplicates = dup
            replayedMessages = 0
        }
        if ids != committedIDs, ids.next > 0 || committedIDs != nil {
            commit.checkpoint[PositionalMessageIDs.partition(stream: options.stream.stream)] = ids.checkpointValue
        }
        if skippedHeld > 0 {
            logger.info("change events the stream took before a crash were not published again", metadata: ["records": "\(skippedHeld)"])
            skippedHeld = 0
        }
        // Every message published is acknowledged now: those after this sequence are not committed.
        if identifiedSinceCommit, publisher.lastSequence > 0 {
            commit.checkpoint[Self.sequencePartition(stream: options.stream.stream)] = String(publisher.lastSequence)
        }
        // What the stream took before a crash and the replay has not met yet is at or before that
        // sequence: it is stored too, or a crash now would forget it.
        if let held {
            let rest = held.subtracting(matched)
            unmatched = rest
            let value = RecordIDs.encode(rest.sorted())
            if value != carriedValue { commit.checkpoint[Self.heldPartition(stream: options.stream.stream)] = value }
        }
    }

    func finishCommit() async throws {
        committedIDs = ids
        identifiedSinceCommit = false
        if let unmatched {
            held = unmatched
            carriedValue = RecordIDs.encode(unmatched.sorted())
            matched = []
            self.unmatched = nil
        }
    }

    func close() async {
        await connection.close()
    }
}

extension RecordGroup {
    /// The group a positional message carries (nil for a message with a record's own id).
    init?(_ message: JetStreamPublisher.Message, lineagePrefix: String) {
        guard message.messageID.hasPrefix(lineagePrefix), let first = Int(message.messageID.dropFirst(lineagePrefix.count)) else { return nil }
        self.init(subject: message.subject, first: first)
        payload = message.payload
        count = message.records
    }
}
