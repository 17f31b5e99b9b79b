/// Which transactions a snapshot sees: PostgreSQL's `txid_current_snapshot()` (`xmin:xmax:xip,…`),
/// reduced to the 32-bit transaction ids that pgoutput's Begin messages carry.
///
/// A watermark chunk needs it because commit order in the WAL and visibility order differ: a
/// transaction whose commit record precedes the low watermark can still be invisible to the
/// chunk's read (its backend had written the record but not yet left the process array when the
/// read took its snapshot). The stream then applies that transaction before the window opens,
/// and the chunk, older than it, would overwrite it. Such a chunk is detected with this and read
/// again.
struct TransactionSnapshot: Sendable, Equatable {
    /// No transaction at or above this id is visible; below it, every committed one is, except...
    var xmax: UInt32
    /// ...the transactions in progress when the snapshot was taken.
    var inProgress: Set<UInt32>

    /// Parses `txid_current_snapshot()`'s text (`10:20:12,15`; ids with their epoch).
    init?(parsing text: String) {
        let parts = text.split(separator: ":", omittingEmptySubsequences: false)
        guard parts.count == 3, UInt64(parts[0]) != nil, let xmax = UInt64(parts[1]) else { return nil }
        var xip: Set<UInt32> = []
        for id in parts[2].split(separator: ",") {
            guard let value = UInt64(id) else { return nil }
            xip.insert(UInt32(truncatingIfNeeded: value))
        }
        self.init(xmax: UInt32(truncatingIfNeeded: xmax), inProgress: xip)
    }

    init(xmax: UInt32, inProgress: Set<UInt32>) {
        self.xmax = xmax
        self.inProgress = inProgress
    }

    /// Whether a transaction that committed (it was streamed) is visible to this snapshot.
    /// Ids compare modulo 2^32, as PostgreSQL's `TransactionIdPrecedes` does.
    func sees(committed xid: UInt32) -> Bool {
        Int32(bitPattern: xid &- xmax) < 0 && !inProgress.contains(xid)
    }
}

/// The ids of the transactions streamed most recently (a ring of fixed size): a watermark chunk
/// checks those before its low watermark against the snapshot it was read in.
struct RecentTransactions: Sendable {
    private var ids: [UInt32]
    private var next = 0
    private var filled = false

    init(capacity: Int = 16_384) { ids = Array(repeating: 0, count: capacity) }

    mutating func append(_ xid: UInt32) {
        ids[next] = xid
        next += 1
        if next == ids.count { next = 0; filled = true }
    }

    /// The first of the remembered transactions that `snapshot` does not see, if any.
    func firstUnseen(by snapshot: TransactionSnapshot) -> UInt32? {
        let count = filled ? ids.count : next
        for i in 0..<count where !snapshot.sees(committed: ids[i]) { return ids[i] }
        return nil
    }
}
