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
    /// Where each table in ``pending`` began to be snapshotted (an LSN): the slot's start point
    /// for the tables of a new slot, the position where a table joined later. A replay after a
    /// crash finds the same value, so its snapshot events carry the same `source.snapshot_lsn`
    /// and a queue can recognise the ones it holds already; a new snapshot (a new slot) differs.
    var epochs: [String: UInt64] = [:]

    init(lsn: UInt64, known: [String]? = nil, pending: [String] = [], after: [String?]? = nil, exported: Bool = false) {
        self.lsn = lsn
        self.known = known
        self.pending = pending
        self.after = after
        self.exported = exported
    }

    enum CodingKeys: String, CodingKey { case lsn, known, pending, after, exported, epochs }

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
        for (table, text) in try c.decodeIfPresent([String: String].self, forKey: .epochs) ?? [:] {
            guard let value = LSN.parse(text) else {
                throw DecodingError.dataCorruptedError(forKey: .epochs, in: c, debugDescription: "not an LSN: \(text)")
            }
            epochs[table] = value
        }
    }

    func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(LSN.format(lsn), forKey: .lsn)
        try c.encodeIfPresent(known, forKey: .known)
        if !pending.isEmpty { try c.encode(pending, forKey: .pending) }
        try c.encodeIfPresent(after, forKey: .after)
        if exported { try c.encode(true, forKey: .exported) }
        if !epochs.isEmpty { try c.encode(epochs.mapValues(LSN.format), forKey: .epochs) }
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
        epochs[pending.removeFirst()] = nil
        after = nil
        return true
    }

    /// Queues `tables` for a snapshot that begins at `epoch` (see ``epochs``); a table queued
    /// already keeps its place and epoch.
    mutating func queue(_ tables: [String], epoch: UInt64) {
        for table in tables where !pending.contains(table) {
            pending.append(table)
            epochs[table] = epoch
        }
    }

    /// The epoch of `table`'s snapshot: recorded when it was queued, or (a checkpoint written
    /// before epochs were) the slot position it resumed from.
    func epoch(of table: String) -> UInt64 { epochs[table] ?? lsn }

    /// A table the stream describes (a Relation message). When it is not ``known``, it joined
    /// the publication: it is known from now on and, with `snapshotting` (`snapshot: initial`),
    /// pending. True when it was added to ``pending``.
    mutating func noteTable(_ name: String, snapshotting: Bool) -> Bool {
        guard var known, !known.contains(name) else { return false }
        // A table joined the publication: its existing rows are snapshotted too.
        known.append(name)
        self.known = known
        guard snapshotting && !pending.contains(name) else { return false }
        // The position here is the end of the transaction before the Relation message: a
        // replay of the stream from an earlier checkpoint meets it at the same place.
        queue([name], epoch: lsn)
        return true
    }
}
