import Foundation

/// Idempotent ingestion: drops records whose key was accepted within the TTL.
///
/// Keys are hashed (``DedupeKeyHasher``, 128-bit SipHash under the pipeline's secret seed)
/// from the columns, with no `String` per row. A Bloom filter in memory (``DedupeFilter``,
/// at most 64 MiB) holds every key the store holds for the pipeline, read when the pipeline
/// starts and brought up to date from the store's new runs before each batch; a key the filter
/// calls absent is new without asking the store (that answer is exact), the few it calls maybe
/// are looked up in the store, batched.
///
/// Keys accepted since the last commit are held in memory, per source batch, and written with
/// the commit that covers their batch, in the same transaction as the checkpoint: after a
/// crash, replayed records are never mistaken for duplicates of records that were never
/// committed. A worker sharing the store that committed one of them meanwhile makes the store
/// refuse the commit (``StateCommit/dedupeCheckedThrough``).
struct Deduplicator {
    let settings: DedupeSettings
    let pipeline: String
    let store: any DedupeKeyStore
    private var hasher: DedupeKeyHasher?
    private var filter = DedupeFilter(capacity: 0)
    /// How far the filter has read the store's rows.
    private var cursor = DedupeRunCursor.start
    /// Keys accepted and not yet committed, by the sequence number of their source batch, with
    /// the last run the filter had read when they were looked up.
    private var pending: [(sequence: UInt64, keys: [DedupeHash], checkedThrough: Int64)] = []
    private var pendingSet = DedupeHashSet()
    /// This deduplicator's ``StateCommit/dedupeWriter``.
    let writer = Int64.random(in: 1...Int64.max)
    /// Keys looked up in the store because the filter answered maybe, and how many of them
    /// were stored (for tests and the log).
    private(set) var storeLookups = 0
    private(set) var storeHits = 0
    /// Times the filter was built (read from the store whole).
    private(set) var filterBuilds = 0

    /// The filter's memory bound (tests make it small to see the store answer maybes).
    let filterLimit: Int

    init(settings: DedupeSettings, pipeline: String, store: any DedupeKeyStore, filterLimit: Int = DedupeFilter.maxBytes) {
        self.settings = settings
        self.pipeline = pipeline
        self.store = store
        self.filterLimit = filterLimit
    }

    /// Bytes the filter holds (its memory bound is ``DedupeFilter/maxBytes``).
    var filterBytes: Int { filter.byteSize }
    /// Keys accepted and not yet committed (the runtime commits before they pass
    /// ``maxPendingKeys``, which bounds their memory).
    var pendingCount: Int { pendingSet.count }
    /// About 500,000 keys (and a batch): 8 MB of keys, 16 MB of set.
    static let maxPendingKeys = 500_000

    /// Returns the batch without duplicates, the number dropped, and dead letters (one per row)
    /// when the key cannot be built.
    /// `keyRuns: true` keeps or drops adjacent rows with one key together, as one record (see
    /// ``SourceBatch/keyRunsAreUnits``), except at `unitBreaks` (``SourceBatch/unitBreaks``).
    mutating func filter(
        _ batch: RecordBatch, sequence: UInt64, position: SourcePosition, now: Date, keyRuns: Bool = false, unitBreaks: Set<Int> = []
    )
        async throws -> (RecordBatch, duplicates: Int, rejects: [DeadLetter])
    {
        let (keep, rejects) = try await select(
            batch, sequence: sequence, position: position, now: now, keyRuns: keyRuns, unitBreaks: unitBreaks)
        guard let keep else { return (RecordBatch.empty(batch.schema), 0, rejects) }
        return (keep.count == batch.count ? batch : batch.take(keep), batch.count - keep.count, rejects)
    }

    /// ``filter(_:sequence:position:now:keyRuns:)`` as the rows to keep (in order; nil with one
    /// dead letter per row when the key cannot be built).
    mutating func select(
        _ batch: RecordBatch, sequence: UInt64, position: SourcePosition, now: Date, keyRuns: Bool = false, unitBreaks: Set<Int> = []
    ) async throws -> (keep: [Int]?, rejects: [DeadLetter]) {
        guard batch.count > 0 else { return ([], []) }
        let indices = settings.key.map { batch.schema.index(of: $0) }
        if let missing = zip(settings.key, indices).first(where: { $0.1 == nil })?.0 {
            let message =
                "dedupe key field '\(missing)' is not in the records (fields: "
                + "\(batch.schema.fields.map(\.name).joined(separator: ", "))); fix `dedupe.key`"
            let types = SluiceSchemaText.render(batch.schema)
            let letters = (0..<batch.count).map { row in
                DeadLetter(
                    stage: "dedupe", errorKind: "missing_key_field", message: message,
                    location: "\(position) row \(row)", raw: Array(RowRendering.json(batch, rows: row..<row + 1).utf8), schema: types)
            }
            return (nil, letters)
        }
        let since = now.addingTimeInterval(-Double(settings.ttl.components.seconds))
        if hasher == nil {
            hasher = DedupeKeyHasher(seed: try await store.dedupeSeed(pipeline: pipeline))
            // Room for twice the keys stored, so the filter rarely has to grow.
            let stored = try await store.dedupeKeyCount(pipeline: pipeline, since: since)
            try await rebuildFilter(capacity: max(1 << 20, stored * 2), since: since)
        } else {
            try await readNewRuns(since: since)
        }
        let checkedThrough = cursor.run
        let columns = indices.map { batch.columns[$0!] }
        var keys: [DedupeHash] = []
        keys.reserveCapacity(batch.count)
        for row in 0..<batch.count { keys.append(hasher!.hash(columns, row: row)) }
        // The filter's maybes (and only those) are looked up in the store.
        var maybe: [DedupeHash] = []
        var asked = Set<DedupeHash>()
        for key in keys where filter.mayContain(key) && !pendingSet.contains(key) && asked.insert(key).inserted {
            maybe.append(key)
        }
        var seen = Set<DedupeHash>()
        for chunk in stride(from: 0, to: maybe.count, by: 20_000) {
            seen.formUnion(try await store.seenHashes(pipeline: pipeline, hashes: Array(maybe[chunk..<min(chunk + 20_000, maybe.count)]), since: since))
        }
        storeLookups += maybe.count
        storeHits += seen.count
        var keep: [Int] = [], accepted: [DedupeHash] = []
        keep.reserveCapacity(batch.count)
        var previous: (key: DedupeHash, kept: Bool)?
        for (row, key) in keys.enumerated() {
            if keyRuns, let p = previous, p.key == key, !unitBreaks.contains(row) {
                if p.kept { keep.append(row) }
                continue
            }
            // Absent from the filter now (which holds the keys accepted so far, this batch's
            // included): new. Otherwise a key accepted and not yet committed, or one the store
            // holds, is a duplicate; anything else was a false maybe.
            let isNew = !filter.mayContain(key) || (!pendingSet.contains(key) && !seen.contains(key))
            previous = (key, isNew)
            guard isNew else { continue }
            pendingSet.insert(key)
            filter.insert(key)
            accepted.append(key)
            keep.append(row)
        }
        if !accepted.isEmpty { pending.append((sequence, accepted, checkedThrough)) }
        if filter.needsRebuild {
            let stored = try await store.dedupeKeyCount(pipeline: pipeline, since: since)
            try await rebuildFilter(capacity: max(1 << 20, 2 * (stored + pendingSet.count)), since: since)
        }
        return (keep, [])
    }

    /// Hands over the keys of batches up to and including `sequence` (those the commit covers),
    /// with the run through which they were all looked up.
    mutating func takePending(through sequence: UInt64) -> (keys: [DedupeHash], checkedThrough: Int64?) {
        var taken: [DedupeHash] = []
        var checkedThrough: Int64?
        let covered = pending.prefix { $0.sequence <= sequence }
        taken.reserveCapacity(covered.reduce(0) { $0 + $1.keys.count })
        for entry in covered {
            taken += entry.keys
            checkedThrough = min(checkedThrough ?? entry.checkedThrough, entry.checkedThrough)
        }
        pending.removeFirst(covered.count)
        // The set is built again from the batches left (usually none).
        pendingSet.removeAll()
        for entry in pending {
            for key in entry.keys { pendingSet.insert(key) }
        }
        return (taken, checkedThrough)
    }

    /// Adds the rows committed since the filter last read the store.
    /// Runs this deduplicator committed are skipped (their keys are in the filter), except
    /// when `rebuilding` the filter, which also stops early when the filter fills up (it is
    /// started again larger).
    private mutating func readNewRuns(since: Date, rebuilding: Bool = false) async throws {
        // Runs up to the last committed now; later ones are read next time (runs are numbered
        // in commit order, so none is missed). Usually there is none: one small read.
        let through = try await store.dedupeLastRun(pipeline: pipeline)
        guard through > cursor.run else { return }
        while true {
            if rebuilding && filter.isOverloaded { return }
            let rows = try await store.dedupeRuns(
                pipeline: pipeline, after: cursor, through: through, since: since, excludingWriter: rebuilding ? nil : writer, limit: 2048)
            for row in rows {
                for index in 0..<row.count { filter.insert(row.hash(at: index)) }
            }
            if let last = rows.last { cursor = DedupeRunCursor(run: last.run, bucket: last.bucket) }
            if rows.count < 2048 { break }
        }
        cursor = DedupeRunCursor(run: through)
    }

    /// A new filter for `capacity` keys, filled from the store (live keys only) and the keys
    /// not yet committed; started again larger when the store holds more than it fits.
    private mutating func rebuildFilter(capacity: Int, since: Date) async throws {
        var capacity = capacity
        while true {
            filter = DedupeFilter(capacity: capacity, limit: filterLimit)
            cursor = .start
            try await readNewRuns(since: since, rebuilding: true)
            for entry in pending {
                for key in entry.keys { filter.insert(key) }
            }
            if !filter.isOverloaded {
                filter.markBuilt()
                filterBuilds += 1
                return
            }
            capacity = filter.added * 4
        }
    }
}

/// An unambiguous text form of a key tuple: each value tagged with its kind and length, so
/// NULL differs from the string "null", and no separator inside a value can merge two tuples.
enum DedupeKey {
    static func encode(_ values: [Value]) -> String {
        var out = ""
        for value in values {
            let (tag, text): (Character, String) =
                switch value {
                case .null: ("n", "")
                case let .binary(bytes): ("x", bytes.map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }.joined())
                case .string, .json: ("s", value.description)
                default: ("v", value.description)
                }
            out.append(tag)
            out += String(text.utf8.count)
            out.append(":")
            out += text
        }
        return out
    }
}
