import SluiceCore

/// How a JetStream sink numbers records that have no identity of their own, and groups them
/// into messages, so that a replay after a crash publishes what the stream already holds under
/// the same `Nats-Msg-Id`s, wherever the replay's commits fall.
///
/// Records are numbered by an ordinal that runs on across commits within a *lineage* (named
/// by a hash of the checkpoint the pipeline first published from). The lineage and the next
/// ordinal are committed with each checkpoint, in the same state transaction
/// (``checkpointValue``), so the records after a checkpoint always get the same ordinals.
///
/// A message holds consecutive records `[first, first + count)` of one subject and is named
/// `<pipeline>:<lineage>:<first>`. Its end is decided by the record sequence alone (record
/// count, bytes, a subject change, a record too large to send) except at a commit, which
/// closes the open message early. So a replay's messages match the first attempt's, except
/// where one attempt committed and the other did not. The writer finds those from the
/// stream (``JetStreamSinkWriter``): a replayed message that the stream already holds with
/// *fewer* records is sent again from its first missing record; one the stream holds with
/// *more* records moves ``skipThrough`` past them, committed too, so they are not sent twice.
struct PositionalMessageIDs: Equatable {
    /// Names the numbering: a hash of the checkpoint its first record followed.
    var lineage: String
    /// The ordinal of the next record written.
    var next: Int
    /// Records before this ordinal are in the stream already (found by a replay).
    var skipThrough: Int

    /// The checkpoint partition that holds the numbering of the sink publishing to `stream`.
    static func partition(stream: String) -> String { Checkpoint.sinkPartitionPrefix + "jetstream:" + stream }

    /// The numbering stored with `checkpoint`, or a new lineage named after it (a pipeline that
    /// never committed, or one committed before numberings were stored: its first records
    /// were numbered from 0 after that checkpoint, as here).
    init(checkpoint: Checkpoint, stream: String) {
        if let value = checkpoint[Self.partition(stream: stream)], let parsed = Self(value) {
            self = parsed
        } else {
            self.init(lineage: Self.hash(checkpoint.sourcePartitions), next: 0, skipThrough: 0)
        }
    }

    init(lineage: String, next: Int, skipThrough: Int) {
        self.lineage = lineage
        self.next = next
        self.skipThrough = skipThrough
    }

    /// Parses ``checkpointValue``.
    init?(_ text: String) {
        let parts = text.split(separator: ":")
        guard parts.count == 3, let next = Int(parts[1]), let skip = Int(parts[2]), next >= 0, skip >= 0 else { return nil }
        self.init(lineage: String(parts[0]), next: next, skipThrough: skip)
    }

    var checkpointValue: String { "\(lineage):\(next):\(skipThrough)" }

    /// FNV-1a over the sorted checkpoint, base 36.
    static func hash(_ partitions: [String: String]) -> String {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for (k, v) in partitions.sorted(by: { $0.key < $1.key }) {
            for b in k.utf8 { h = (h ^ UInt64(b)) &* 0x100_0000_01b3 }
            h = (h ^ 0x3d) &* 0x100_0000_01b3
            for b in v.utf8 { h = (h ^ UInt64(b)) &* 0x100_0000_01b3 }
            h = (h ^ 0x3b) &* 0x100_0000_01b3
        }
        return String(h, radix: 36)
    }
}

/// Records `[first, first + count)` of one subject, as NDJSON lines (each ending in `\n`).
/// Records with ids of their own (change events) also carry them: the first one's, which names
/// the message, and each one's token (``RecordIDs``).
struct RecordGroup: Equatable {
    var subject: String
    var first: Int
    var count = 0
    var payload: [UInt8] = []
    var firstID: String?
    var ids: [DedupeHash] = []

    init(subject: String, first: Int) {
        self.subject = subject
        self.first = first
    }

    var end: Int { first + count }

    mutating func append(_ line: ArraySlice<UInt8>, id: (bytes: [UInt8], hash: DedupeHash)? = nil) {
        payload += line
        payload.append(10)
        count += 1
        if let id {
            if firstID == nil { firstID = String(decoding: id.bytes, as: UTF8.self) }
            ids.append(id.hash)
        }
    }

    /// Drops the first `n` records (the stream holds them already).
    mutating func dropFirst(_ n: Int) {
        guard n > 0 else { return }
        guard n < count else { payload = []; first += count; count = 0; return }
        var seen = 0, cut = 0
        for (i, byte) in payload.enumerated() where byte == 10 {
            seen += 1
            if seen == n { cut = i + 1; break }
        }
        payload.removeFirst(cut)
        first += n
        count -= n
    }
}

/// Cuts a sequence of records into ``RecordGroup``s: a group closes when it holds
/// `maxRecords`, when the next record would take it past `maxBytes`, at a change of subject,
/// and around a record that is not sent (too large, or already in the stream). A commit
/// publishes the ``open`` group and clears it (after its publish, so a failed one is retried).
struct RecordGrouper {
    let maxRecords: Int
    let maxBytes: Int
    var open: RecordGroup?

    /// Adds the record numbered `ordinal`; returns the group it closed, if any.
    mutating func add(_ line: ArraySlice<UInt8>, subject: String, ordinal: Int) -> RecordGroup? {
        var closed: RecordGroup?
        if let g = open,
            g.subject != subject || g.count >= maxRecords
                || g.payload.count + line.count + 1 > maxBytes || g.end != ordinal
        {
            closed = g
            open = nil
        }
        if open == nil { open = RecordGroup(subject: subject, first: ordinal) }
        open!.append(line)
        return closed
    }
}

/// Cuts records with ids of their own (change events) into ``RecordGroup``s, one open group per
/// subject: a stream partitioned by key (`cdc.{table}.{partition}`) interleaves subjects row by
/// row, and one open group for all would close at almost every record. Order within a subject
/// is kept (its groups close one after the other); no order across subjects is promised.
/// A group closes at `maxRecords` or before it would pass `maxBytes` (its records' ids
/// counted); every open group closes when together they would hold more than `maxOpenBytes`.
struct SubjectGrouper {
    let maxRecords: Int
    let maxBytes: Int
    let overheadPerRecord: Int
    var maxOpenBytes = 8 << 20
    /// The open groups (one per subject, in the order their subjects came), and where each
    /// subject's is.
    private var groups: [RecordGroup] = []
    private var slots: [String: Int] = [:]
    private var openBytes = 0

    init(maxRecords: Int, maxBytes: Int, overheadPerRecord: Int) {
        self.maxRecords = maxRecords
        self.maxBytes = maxBytes
        self.overheadPerRecord = overheadPerRecord
    }

    var isEmpty: Bool { groups.allSatisfy { $0.count == 0 } }

    /// The open groups by subject.
    var open: [String: RecordGroup] {
        Dictionary(uniqueKeysWithValues: groups.filter { $0.count > 0 }.map { ($0.subject, $0) })
    }

    /// Adds a record; appends the groups it closed to `closed`.
    mutating func add(_ line: ArraySlice<UInt8>, subject: String, id: (bytes: [UInt8], hash: DedupeHash), closed: inout [RecordGroup]) {
        let size = line.count + 1 + overheadPerRecord
        if openBytes + size > maxOpenBytes { closed += takeAll() }
        let i: Int
        if let slot = slots[subject] {
            i = slot
        } else {
            i = groups.count
            slots[subject] = i
            groups.append(RecordGroup(subject: subject, first: 0))
        }
        // Mutated in place: a closed group is handed over and replaced, never copied.
        let held = groups[i].payload.count + overheadPerRecord * groups[i].count
        if groups[i].count >= maxRecords || (groups[i].count > 0 && held + size > maxBytes) {
            closed.append(groups[i])
            groups[i] = RecordGroup(subject: subject, first: 0)
            openBytes -= held
        }
        groups[i].append(line, id: id)
        openBytes += size
    }

    /// Closes every open group (a commit publishes them), in subject order.
    mutating func takeAll() -> [RecordGroup] {
        defer {
            groups = []
            slots = [:]
            openBytes = 0
        }
        return groups.filter { $0.count > 0 }.sorted { $0.subject < $1.subject }
    }
}
