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
    /// How many keys each source batch accepted (in `pendingKeys`, in batch order), by the
    /// batch's sequence number, with the last run the filter had read when they were looked up.
    private var pending: [(sequence: UInt64, count: Int, checkedThrough: Int64)] = []
    /// Keys accepted and not yet committed.
    private var pendingKeys = PendingDedupeKeys()
    /// This deduplicator's ``StateCommit/dedupeWriter``.
    let writer = Int64.random(in: 1...Int64.max)
    /// Keys looked up in the store because the filter answered maybe, and how many of them
    /// were stored (for tests and the log).
    private(set) var storeLookups = 0
    private(set) var storeHits = 0
    /// Times the filter was built (read from the store whole), taken from the store as saved,
    /// and saved.
    private(set) var filterBuilds = 0
    private(set) var filterLoads = 0
    private(set) var filterSaves = 0
    /// The pipeline's hashing seed (nil until the first batch).
    private var seed: DedupeSeed?
    /// Keys the filter held when it was last saved or loaded (nil: not since it was built).
    private var addedAtSave: Int?

    /// The filter's memory bound (tests make it small to see the store answer maybes).
    let filterLimit: Int

    /// The stored runs in groups with a filter each, read once lookups are many
    /// (``groupingLookups``), so a lookup reads only the groups that may hold its keys.
    private var runGroups: DedupeRunGroups?
    /// Keys a group's filter is sized for (tests make it small to see several groups).
    let runGroupKeys: Int
    /// Whether the store held more keys than the groups' bound the first time they were due.
    private var groupingRefused = false
    /// Keys accepted or read from other writers' runs since the groups last read the store:
    /// the runs after the groups hold at most these (plus keys that expired).
    private var ungroupedKeys = 0
    /// The latest TTL cutoff a batch used.
    private var latestSince = Date.distantPast
    /// Times the store's runs were read into groups (first and later readings).
    private(set) var groupReadings = 0
    /// The groups of runs held, and the bytes of their filters (at most 32 MiB).
    var runGroupCount: Int { runGroups?.groups.count ?? 0 }
    var runGroupBytes: Int { runGroups?.byteSize ?? 0 }

    init(
        settings: DedupeSettings, pipeline: String, store: any DedupeKeyStore, filterLimit: Int = DedupeFilter.maxBytes,
        runGroupKeys: Int = DedupeRunGroups.defaultGroupKeys
    ) {
        self.settings = settings
        self.pipeline = pipeline
        self.store = store
        self.filterLimit = filterLimit
        self.runGroupKeys = runGroupKeys
    }

    /// Bytes the filter holds (its memory bound is ``DedupeFilter/maxBytes``).
    var filterBytes: Int { filter.byteSize }
    /// Keys accepted and not yet committed (the runtime commits before they pass
    /// ``maxPendingKeys``, which bounds their memory).
    var pendingCount: Int { pendingKeys.count }
    /// The fewest keys a filter is sized for.
    static let minimumFilterCapacity = 1 << 22
    /// About a million keys (and a batch): 16 MB of keys and a 2 MiB Bloom filter of them (a
    /// hash set of them only when a batch has maybes to check against them). Every commit
    /// writes a row per bucket however few its keys: fewer, larger commits cost less per key.
    static let maxPendingKeys = 1_000_000
    /// Store lookups of one batch (or duplicates found in the store over the run) that make the
    /// deduplicator read the store's runs into groups (``DedupeRunGroups``): one reading of every
    /// stored key, which lookups of this many keys cost anyway (they fall in nearly every
    /// bucket). The groups stay for the rest of the run.
    static let groupingLookups = 4096

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
        // Never earlier than a batch before: a key once expired stays expired if the clock
        // steps back (groups of runs leave out keys expired when they were read).
        let since = max(now.addingTimeInterval(-Double(settings.ttl.components.seconds)), latestSince)
        latestSince = since
        if hasher == nil {
            let seed = try await store.dedupeSeed(pipeline: pipeline)
            hasher = DedupeKeyHasher(seed: seed)
            self.seed = seed
            if try await !loadSavedFilter(seed: seed, since: since) {
                // Room for twice the keys stored, so the filter rarely has to grow (and at
                // least 4M keys, 12 MiB: growing means reading every stored key again).
                let stored = try await store.dedupeKeyCount(pipeline: pipeline, since: since)
                try await rebuildFilter(capacity: max(Self.minimumFilterCapacity, stored * 2), since: since)
            }
        } else {
            try await readNewRuns(since: since)
        }
        let checkedThrough = cursor.run
        let columns = indices.map { batch.columns[$0!] }
        let count = batch.count
        let keys = try hashKeys(columns, count: count)
        // First pass: a key the filter calls absent is new (and is added to it at once, so a
        // later row with the same key is a maybe); the rows of maybes wait for the store.
        // A key absent from the filter is absent from it at every earlier row of the batch too
        // (a filter only gains bits), so deciding maybes in a second pass keeps row order.
        let keep: UInt8 = 1, drop: UInt8 = 2, asPrevious: UInt8 = 3
        var decisions = [UInt8](repeating: 0, count: count)
        var maybeRows: [Int] = []
        var maybe: [DedupeHash] = []
        var asked = DedupeHashSet()
        var accepted = 0
        let prefetchDistance = 8
        for row in 0..<min(prefetchDistance, count) {
            filter.prefetch(keys[row])
            pendingKeys.prefetch(keys[row])
        }
        for row in 0..<count {
            if row + prefetchDistance < count {
                filter.prefetch(keys[row + prefetchDistance])
                pendingKeys.prefetch(keys[row + prefetchDistance])
            }
            let key = keys[row]
            if keyRuns, row > 0, keys[row - 1] == key, !unitBreaks.contains(row) {
                decisions[row] = asPrevious
                continue
            }
            if !filter.mayContain(key) {
                filter.insert(key)
                pendingKeys.insert(key)
                accepted += 1
                decisions[row] = keep
                continue
            }
            maybeRows.append(row)
            // The filter's maybes (and only those) not accepted since the last commit are
            // looked up in the store.
            if !pendingKeys.contains(key) && asked.insert(key) { maybe.append(key) }
        }
        let firstPass = accepted
        ungroupedKeys += firstPass
        let seen: DedupeHashSet
        do {
            seen = try await lookUp(maybe, since: since)
        } catch {
            // This batch's keys leave the pending ones (in the filter they only cost a lookup):
            // the batch is read again, and its keys must not be taken for duplicates then.
            pendingKeys.keepFirst(pending.reduce(0) { $0 + $1.count })
            throw error
        }
        storeLookups += maybe.count
        storeHits += seen.count
        // Second pass, in row order: a maybe accepted since the last commit (this batch
        // included) or held by the store is a duplicate; anything else was a false maybe.
        for row in maybeRows {
            let key = keys[row]
            guard !pendingKeys.contains(key) && !seen.contains(key) else {
                decisions[row] = drop
                continue
            }
            filter.insert(key)
            pendingKeys.insert(key)
            accepted += 1
            decisions[row] = keep
        }
        var kept: [Int] = []
        kept.reserveCapacity(count)
        var previous = drop
        for row in 0..<count {
            if decisions[row] != asPrevious { previous = decisions[row] }
            if previous == keep { kept.append(row) }
        }
        if accepted > 0 { pending.append((sequence, accepted, checkedThrough)) }
        ungroupedKeys += accepted - firstPass
        if filter.needsRebuild {
            let stored = try await store.dedupeKeyCount(pipeline: pipeline, since: since)
            try await rebuildFilter(capacity: max(Self.minimumFilterCapacity, 2 * (stored + pendingKeys.count)), since: since)
        }
        return (kept, [])
    }

    /// Rows a lane hashes at a time; a batch of fewer is hashed on the caller's thread.
    static let hashingChunk = 8192

    /// The key hash of each row. A batch of more than ``hashingChunk`` rows is hashed in
    /// chunks on several threads (``ParallelLanes``, up to the processors the process may use,
    /// or `lanes`): hashing is the one part of a key's way that depends on nothing before it,
    /// and the consumer otherwise does it alone while the reader's threads wait.
    mutating func hashKeys(_ columns: [Column], count: Int, lanes: Int = ParallelLanes.defaultThreads) throws -> [DedupeHash] {
        let chunks = (count + Self.hashingChunk - 1) / Self.hashingChunk
        let lanes = min(chunks, lanes)
        guard lanes > 1, let seed else {
            // Moved out of the optional while hashing, so its scratch buffer is not copied.
            var keyHasher = hasher!
            hasher = nil
            defer { hasher = keyHasher }
            return [DedupeHash](unsafeUninitializedCapacity: count) { out, written in
                keyHasher.hash(columns, rows: 0..<count, into: out.baseAddress!)
                written = count
            }
        }
        return try [DedupeHash](unsafeUninitializedCapacity: count) { out, written in
            let base = out.baseAddress!
            // Each chunk writes only its own rows of `out`.
            try ParallelLanes.run(Array(0..<chunks), lanes: lanes) { chunk, _ in
                var keyHasher = DedupeKeyHasher(seed: seed)
                let rows = chunk * Self.hashingChunk..<min(count, (chunk + 1) * Self.hashingChunk)
                keyHasher.hash(columns, rows: rows, into: base + rows.lowerBound)
            }
            written = count
        }
    }

    /// Hands over the keys of batches up to and including `sequence` (those the commit covers),
    /// with the run through which they were all looked up.
    mutating func takePending(through sequence: UInt64) -> (keys: [DedupeHash], checkedThrough: Int64?) {
        var checkedThrough: Int64?
        let covered = pending.prefix { $0.sequence <= sequence }
        for entry in covered {
            checkedThrough = min(checkedThrough ?? entry.checkedThrough, entry.checkedThrough)
        }
        let taken = pendingKeys.removeFirst(covered.reduce(0) { $0 + $1.count })
        pending.removeFirst(covered.count)
        return (taken, checkedThrough)
    }

    /// Takes the filter a deduplicator of this pipeline saved (``saveFilterIfDue(final:)``) and
    /// adds the runs committed after it; false when there is none, it does not fit this
    /// deduplicator (seed, format, memory bound) or it is due to be built again anyway.
    private mutating func loadSavedFilter(seed: DedupeSeed, since: Date) async throws -> Bool {
        guard let snapshot = try await store.dedupeFilter(pipeline: pipeline),
            snapshot.run <= (try await store.dedupeLastRun(pipeline: pipeline)),
            let saved = DedupeFilter(snapshot: snapshot, seed: seed, limit: filterLimit),
            // Keys it left out as expired may be live under a longer TTL.
            since.timeIntervalSince1970 >= saved.coveredSince
        else { return false }
        filter = saved
        cursor = DedupeRunCursor(run: snapshot.run)
        // The runs read next count as added since the save: a pipeline adding a few keys a
        // run saves again once they add up, instead of reading ever more runs at each start.
        addedAtSave = filter.added
        try await readNewRuns(since: since)
        guard !filter.needsRebuild else {
            addedAtSave = nil
            return false
        }
        filterLoads += 1
        return true
    }

    /// Saves the filter in the store, so the pipeline's next start reads only the runs
    /// committed after this moment instead of every stored key. Due at the end of a run once
    /// 65,536 keys were added since the filter was loaded or saved (fewer are quicker to read
    /// again than a filter of at least 12 MiB is to write), and in between once a million and a
    /// quarter of the filter's keys were. Keys accepted and not committed yet may be in it:
    /// they cost a lookup, never a wrong answer.
    mutating func saveFilterIfDue(final: Bool, now: Date = Date()) async throws {
        guard let seed, filter.added > 0 else { return }
        let added = addedAtSave.map { filter.added - $0 } ?? filter.added
        guard added >= (final ? 65_536 : max(1 << 20, filter.added / 4)) else { return }
        // Up to the last run committed (this deduplicator's own are in the filter already), so
        // the next start reads only what is committed after this.
        try await readNewRuns(since: now.addingTimeInterval(-Double(settings.ttl.components.seconds)))
        try await store.saveDedupeFilter(pipeline: pipeline, filter.snapshot(run: cursor.run, seed: seed))
        addedAtSave = filter.added
        filterSaves += 1
    }

    /// Adds the rows committed since the filter last read the store.
    /// Runs this deduplicator committed are skipped (their keys are in the filter), except
    /// when `rebuilding` the filter, which also stops early when the filter fills up (it is
    /// started again larger).
    private mutating func readNewRuns(since: Date, rebuilding: Bool = false) async throws {
        // Runs up to the last committed now; later ones are read next time (runs are numbered
        // in commit order, so none is missed). Usually there is none: one small read.
        let through = try await store.dedupeLastRun(pipeline: pipeline)
        filter.coveredSince = max(filter.coveredSince, since.timeIntervalSince1970)
        guard through > cursor.run else { return }
        while true {
            if rebuilding && filter.isOverloaded { return }
            let rows = try await store.dedupeRuns(
                pipeline: pipeline, after: cursor, through: through, since: since, excludingWriter: rebuilding ? nil : writer, limit: 2048)
            for row in rows {
                for index in 0..<row.count { filter.insert(row.hash(at: index)) }
                if !rebuilding { ungroupedKeys += row.count }
            }
            if let last = rows.last { cursor = DedupeRunCursor(run: last.run, bucket: last.bucket) }
            if rows.count < 2048 { break }
        }
        cursor = DedupeRunCursor(run: through)
    }

    /// Which of `keys` the store holds inside the TTL: in the groups whose filter may hold
    /// them, then in the runs after the groups (or in every run, without groups).
    private mutating func lookUp(_ keys: [DedupeHash], since: Date) async throws -> DedupeHashSet {
        guard !keys.isEmpty else { return DedupeHashSet() }
        try await updateRunGroups(lookups: keys.count, since: since)
        var seen = DedupeHashSet(minimumCapacity: keys.count)
        var ungrouped = keys
        if let runGroups {
            // Each key is looked up in the newest group whose filter may hold it; one not there
            // (a false maybe) in the next older group that may, and so on. A file sent again
            // asks one group per key, mostly the first tried.
            ungrouped = []
            var waiting = keys.map { (key: $0, before: runGroups.groups.count) }
            while !waiting.isEmpty {
                var byGroup = [[DedupeHash]](repeating: [], count: runGroups.groups.count)
                for (key, before) in waiting {
                    if let group = runGroups.group(mayHolding: key, before: before) { byGroup[group].append(key) } else { ungrouped.append(key) }
                }
                waiting = []
                for (group, candidates) in byGroup.enumerated().reversed() where !candidates.isEmpty {
                    let found = try await seenHashes(candidates, since: since, runs: runGroups.groups[group].runs, into: &seen)
                    if found < candidates.count {
                        for key in candidates where !seen.contains(key) { waiting.append((key, group)) }
                    }
                }
            }
        }
        _ = try await seenHashes(ungrouped, since: since, runs: ((runGroups?.through ?? -1) + 1)...Int64.max, into: &seen)
        return seen
    }

    /// Adds to `seen` which of `keys` the store holds in `runs`; returns how many.
    private func seenHashes(_ keys: [DedupeHash], since: Date, runs: ClosedRange<Int64>, into seen: inout DedupeHashSet) async throws -> Int {
        var found = 0
        for chunk in stride(from: 0, to: keys.count, by: 20_000) {
            let part = Array(keys[chunk..<min(chunk + 20_000, keys.count)])
            for key in try await store.seenHashes(pipeline: pipeline, hashes: part, since: since, runs: runs) {
                if seen.insert(key) { found += 1 }
            }
        }
        return found
    }

    /// Reads the store's runs into groups when a batch asks the store about many keys, and
    /// the runs committed since into new groups once they hold a group's worth of keys.
    private mutating func updateRunGroups(lookups: Int, since: Date) async throws {
        if var groups = runGroups {
            groups.dropExpired(cutoff: since.timeIntervalSince1970)
            runGroups = groups
            guard ungroupedKeys >= groups.groupKeys else { return }
        } else {
            // Or duplicates found over the run, so small batches of them get groups too (the
            // rare false maybes of new keys do not count).
            guard lookups >= Self.groupingLookups || storeHits >= Self.groupingLookups, !groupingRefused else { return }
            let stored = try await store.dedupeKeyCount(pipeline: pipeline, since: since)
            guard stored <= runGroupKeys * DedupeRunGroups.defaultMaxGroups else {
                groupingRefused = true
                return
            }
        }
        var groups = runGroups ?? DedupeRunGroups(groupKeys: runGroupKeys)
        let through = try await store.dedupeLastRun(pipeline: pipeline)
        // Keys accepted and not committed yet go to runs after `through`.
        let ungrouped = pendingKeys.count
        var cursor = DedupeRunCursor(run: groups.through)
        while true {
            // 512 rows at a time: 8 MB of keys when runs hold a million.
            let rows = try await store.dedupeRuns(pipeline: pipeline, after: cursor, through: through, since: since, excludingWriter: nil, limit: 512)
            for row in rows { groups.add(row) }
            if let last = rows.last { cursor = DedupeRunCursor(run: last.run, bucket: last.bucket) }
            if rows.count < 512 { break }
        }
        groups.finish(through: through)
        runGroups = groups
        ungroupedKeys = ungrouped
        groupReadings += 1
    }

    /// A new filter for `capacity` keys, filled from the store (live keys only) and the keys
    /// not yet committed; started again larger when the store holds more than it fits.
    private mutating func rebuildFilter(capacity: Int, since: Date) async throws {
        var capacity = capacity
        while true {
            filter = DedupeFilter(capacity: capacity, limit: filterLimit)
            cursor = .start
            try await readNewRuns(since: since, rebuilding: true)
            for key in pendingKeys.keys { filter.insert(key) }
            if !filter.isOverloaded {
                filter.markBuilt()
                filterBuilds += 1
                addedAtSave = nil
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
