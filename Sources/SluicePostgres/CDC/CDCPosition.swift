import Foundation

/// The checkpoint of a `postgres_cdc` source: the end LSN of the last committed transaction and
/// where the snapshots stand. Stored as JSON; a bare LSN (older checkpoints) is read as a
/// position whose tables are all known and snapshotted.
struct CDCPosition: Codable, Sendable, Equatable {
    /// Transactions ending at or below this are committed downstream.
    var lsn: UInt64
    /// Tables whose rows are (being) delivered: snapshotted, or queued in ``pending``. nil for an
    /// old bare-LSN checkpoint (no table is snapshotted again).
    var known: [String]?
    /// Tables still to snapshot, the one in progress first.
    var pending: [String] = []
    /// The key (text forms, in key column order) of the last snapshotted row of `pending[0]`.
    var after: [String?]?
    /// The snapshot exported when the slot was created is being read (`pending` holds what is
    /// left of it). After a crash the rest is read with watermarks instead.
    var exported = false
    /// Names the snapshots read through this slot: its start point (consistent point). A table
    /// is snapshotted once per slot (a new snapshot of it needs a new slot: `sluice cdc
    /// resnapshot`), so the epoch, a table and a key name one snapshot read wherever it is read
    /// again after a crash; snapshot events carry it as `source.snapshot_epoch` and a queue can
    /// recognise the ones it holds already. A run killed before its first commit and the next
    /// one agree on it: the slot's confirmed position stays at its start point until a commit.
    /// 0 for a checkpoint written before epochs were.
    var epoch: UInt64 = 0
    /// A large transaction handed over in parts: the first parts are committed downstream, the
    /// rest is not. ``lsn`` stays at the transaction before it, so the server sends the whole
    /// transaction again after a crash, and the changes delivered already are skipped.
    var partial: Partial?

    /// How much of a transaction that was handed over in parts is committed downstream.
    struct Partial: Sendable, Equatable {
        /// The LSN of its commit record (`final_lsn` of its Begin message): names the transaction
        /// before its commit arrives.
        var commitLSN: UInt64
        /// Its first changes, in the order the server sent them, that are committed.
        var delivered: Int
    }

    init(lsn: UInt64, known: [String]? = nil, pending: [String] = [], after: [String?]? = nil, exported: Bool = false) {
        self.lsn = lsn
        self.known = known
        self.pending = pending
        self.after = after
        self.exported = exported
    }

    enum CodingKeys: String, CodingKey {
        case lsn, known, pending, after, exported, epoch
        case partialLSN = "partial_commit_lsn"
        case partialDelivered = "partial_delivered"
    }

    init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        guard let lsn = LSN.parse(try c.decode(String.self, forKey: .lsn)) else {
            throw DecodingError.dataCorruptedError(forKey: .lsn, in: c, debugDescription: "not an LSN")
        }
        self.lsn = lsn
        known = try c.decodeIfPresent([String].self, forKey: .known)
        pending = try c.decodeIfPresent([String].self, forKey: .pending) ?? []
        after = try c.decodeIfPresent([String?].self, forKey: .after)
        exported = try c.decodeIfPresent(Bool.self, forKey: .exported) ?? false
        if let text = try c.decodeIfPresent(String.self, forKey: .epoch) {
            guard let value = LSN.parse(text) else {
                throw DecodingError.dataCorruptedError(forKey: .epoch, in: c, debugDescription: "not an LSN: \(text)")
            }
            epoch = value
        }
        if let text = try c.decodeIfPresent(String.self, forKey: .partialLSN) {
            guard let value = LSN.parse(text) else {
                throw DecodingError.dataCorruptedError(forKey: .partialLSN, in: c, debugDescription: "not an LSN: \(text)")
            }
            partial = Partial(commitLSN: value, delivered: try c.decode(Int.self, forKey: .partialDelivered))
        }
    }

    func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(LSN.format(lsn), forKey: .lsn)
        try c.encodeIfPresent(known, forKey: .known)
        if !pending.isEmpty { try c.encode(pending, forKey: .pending) }
        try c.encodeIfPresent(after, forKey: .after)
        if exported { try c.encode(true, forKey: .exported) }
        if epoch != 0 { try c.encode(LSN.format(epoch), forKey: .epoch) }
        if let partial {
            try c.encode(LSN.format(partial.commitLSN), forKey: .partialLSN)
            try c.encode(partial.delivered, forKey: .partialDelivered)
        }
    }

    /// Parses a stored checkpoint value (JSON, or a bare LSN).
    static func parse(_ text: String) -> CDCPosition? {
        if let lsn = LSN.parse(text) { return CDCPosition(lsn: lsn) }
        return try? JSONDecoder().decode(CDCPosition.self, from: Data(text.utf8))
    }

    var text: String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        return String(decoding: (try? encoder.encode(self)) ?? Data(), as: UTF8.self)
    }
}

extension CDCPosition {
    /// Moves past a chunk of `pending[0]` that is handed over: after its last row, or on to the
    /// next table after the table's last chunk (then true: the table is snapshotted).
    mutating func advance(past chunk: SnapshotTable.Chunk) -> Bool {
        guard chunk.isLast else {
            after = chunk.last
            return false
        }
        pending.removeFirst()
        after = nil
        return true
    }

    /// Queues `tables` for a snapshot (a table queued already keeps its place).
    mutating func queue(_ tables: [String]) {
        for table in tables where !pending.contains(table) { pending.append(table) }
    }

    /// A table the stream describes (a Relation message). When it is not ``known``, it joined
    /// the publication: it is known from now on and, with `snapshotting` (`snapshot: initial`),
    /// pending. True when it was added to ``pending``.
    mutating func noteTable(_ name: String, snapshotting: Bool) -> Bool {
        guard var known, !known.contains(name) else { return false }
        // A table joined the publication: its existing rows are snapshotted too.
        known.append(name)
        self.known = known
        guard snapshotting && !pending.contains(name) else { return false }
        queue([name])
        return true
    }
}
