import Foundation
import SluiceCore

/// The contract of a state store's dedupe keys (``DedupeKeyStore``), checked alike on every
/// store kind: seeds, runs in commit order, the reading the filter does, lookups, conflicts
/// between writers and the TTL. Throws a ``ConformanceFailure`` for the first broken rule.
public struct DedupeStoreConformance {
    public let store: any StateStore
    /// A pipeline name no other test uses (stores may be shared).
    public let pipeline: String

    public init(store: any StateStore, pipeline: String) {
        self.store = store
        self.pipeline = pipeline
    }

    func fail(_ check: String, _ detail: String) -> ConformanceFailure {
        ConformanceFailure(component: "\(type(of: store))", check: check, detail: detail)
    }

    func hashes(_ seed: DedupeSeed, _ keys: [String]) -> [DedupeHash] {
        keys.map { SipHash128.hash(text: $0, seed: seed) }
    }

    public func run() async throws {
        let seed = try await store.dedupeSeed(pipeline: pipeline)
        guard try await store.dedupeSeed(pipeline: pipeline) == seed else { throw fail("the seed is kept", "a second call made another") }
        guard try await store.dedupeLastRun(pipeline: pipeline) == 0 else { throw fail("runs start at 1", "a run before any commit") }

        // Writer 1 commits 3,000 keys; writer 2 commits 1 key (also one of writer 1's, whose
        // TTL its commit does not check).
        let t0 = Date(timeIntervalSince1970: 1_000_000)
        let first = (0..<3000).map { "k\($0)" }
        var one = StateCommit(pipeline: pipeline, now: t0)
        one.dedupeHashes = hashes(seed, first)
        one.dedupeWriter = 1
        try await store.commit(one)
        var two = StateCommit(pipeline: pipeline, now: t0.addingTimeInterval(10))
        two.dedupeHashes = hashes(seed, ["other", "k7"])
        two.dedupeWriter = 2
        try await store.commit(two)
        guard try await store.dedupeLastRun(pipeline: pipeline) == 2 else { throw fail("runs are numbered in commit order", "last run is not 2") }
        let count = try await store.dedupeKeyCount(pipeline: pipeline, since: t0)
        guard count == 3002 else { throw fail("keys are counted", "\(count) keys, expected 3,002") }

        // Reading, page by page, as the filter does: every key once, in (run, bucket) order.
        var cursor = DedupeRunCursor.start
        var read: [DedupeHash] = []
        var order: [DedupeRunCursor] = []
        while true {
            let rows = try await store.dedupeRuns(pipeline: pipeline, after: cursor, through: 2, since: t0, excludingWriter: nil, limit: 100)
            for row in rows {
                order.append(DedupeRunCursor(run: row.run, bucket: row.bucket))
                for i in 0..<row.count { read.append(row.hash(at: i)) }
            }
            guard let last = rows.last, rows.count == 100 else { break }
            cursor = DedupeRunCursor(run: last.run, bucket: last.bucket)
        }
        guard read.count == 3002, Set(read) == Set(hashes(seed, first + ["other"])), order == order.sorted() else {
            throw fail("the runs are read whole and in order", "\(read.count) keys read in \(order.count) rows")
        }
        let notMine = try await store.dedupeRuns(pipeline: pipeline, after: .start, through: 2, since: t0, excludingWriter: 1, limit: 5000)
        guard !notMine.isEmpty, notMine.allSatisfy({ $0.run == 2 }), notMine.reduce(0, { $0 + $1.count }) == 2 else {
            throw fail("a writer's own runs are skipped", "\(notMine.map(\.run))")
        }
        let upToOne = try await store.dedupeRuns(pipeline: pipeline, after: .start, through: 1, since: t0, excludingWriter: nil, limit: 5000)
        guard upToOne.reduce(0, { $0 + $1.count }) == 3000, upToOne.allSatisfy({ $0.run == 1 }) else {
            throw fail("runs after `through` are not read", "\(upToOne.map(\.run))")
        }
        let expired = try await store.dedupeRuns(
            pipeline: pipeline, after: .start, through: 2, since: t0.addingTimeInterval(5), excludingWriter: nil, limit: 5000)
        guard expired.reduce(0, { $0 + $1.count }) == 2, expired.allSatisfy({ $0.run == 2 }) else {
            throw fail("rows before `since` are not read", "\(expired.map(\.run))")
        }

        // Lookups, with the TTL.
        let asked = hashes(seed, ["k0", "k2999", "other", "new"])
        let seen = try await store.seenHashes(pipeline: pipeline, hashes: asked, since: t0)
        guard seen == Set(asked.prefix(3)) else { throw fail("stored keys are found, others not", "\(seen.count) of 4 found") }
        let late = try await store.seenHashes(pipeline: pipeline, hashes: asked, since: t0.addingTimeInterval(5))
        guard late == [asked[2]] else { throw fail("expired keys are not found", "\(late.count) found") }
        // Lookups in some runs only (``DedupeRunGroups``).
        let inFirst = try await store.seenHashes(pipeline: pipeline, hashes: asked, since: t0, runs: 1...1)
        let inSecond = try await store.seenHashes(pipeline: pipeline, hashes: asked, since: t0, runs: 2...9)
        let inNone = try await store.seenHashes(pipeline: pipeline, hashes: asked, since: t0, runs: 3...9)
        guard inFirst == Set(asked.prefix(2)), inSecond == [asked[2]], inNone.isEmpty else {
            throw fail("a lookup in some runs finds only their keys", "\(inFirst.count) in run 1, \(inSecond.count) in 2...9, \(inNone.count) in 3...9")
        }

        // Conflicts: writer 1, having looked keys up through run 1, commits "other" (stored by
        // writer 2 in run 2): refused whole. Having looked up through run 2, not checked again.
        var clash = StateCommit(pipeline: pipeline, now: t0.addingTimeInterval(20))
        clash.checkpoint = ["p": "x"]
        clash.dedupeHashes = hashes(seed, ["fresh", "other"])
        clash.dedupeWriter = 1
        clash.dedupeCheckedThrough = 1
        clash.dedupeSince = t0
        do {
            try await store.commit(clash)
            throw fail("a key another writer committed after the lookup refuses the commit", "the commit was applied")
        } catch let error as SluiceError where error.code == .conflict {}
        guard try await store.checkpoint(pipeline: pipeline).partitions.isEmpty,
            try await store.seenHashes(pipeline: pipeline, hashes: hashes(seed, ["fresh"]), since: t0).isEmpty
        else { throw fail("a refused commit changes nothing", "its checkpoint or keys are stored") }
        // Writer 2's own run holds "other": for writer 2 that is no conflict (its own keys).
        clash.dedupeWriter = 2
        try await store.commit(clash)
        // Without a run looked up through, every run is checked.
        var unchecked = StateCommit(pipeline: pipeline, now: t0.addingTimeInterval(30))
        unchecked.dedupeHashes = hashes(seed, ["k5"])
        unchecked.dedupeSince = t0
        do {
            try await store.commit(unchecked)
            throw fail("a commit that names no run is checked against all", "the commit was applied")
        } catch let error as SluiceError where error.code == .conflict {}
        // Past the TTL the key is taken over.
        unchecked.dedupeSince = t0.addingTimeInterval(5)
        try await store.commit(unchecked)
        guard try await store.seenHashes(pipeline: pipeline, hashes: hashes(seed, ["k5"]), since: t0.addingTimeInterval(25)).count == 1 else {
            throw fail("an expired key accepted again is stored anew", "not found")
        }

        // The sweep deletes runs past the TTL and says how many keys.
        let swept = try await store.sweepKeys(pipeline: pipeline, before: t0.addingTimeInterval(5))
        guard swept == 3000 else { throw fail("the sweep counts the keys it deletes", "\(swept), expected 3,000") }
        guard try await store.dedupeKeyCount(pipeline: pipeline, since: .distantPast) == 5 else { throw fail("the sweep deletes expired runs", "keys left") }
        guard try await store.dedupeLastRun(pipeline: pipeline) == 4 else { throw fail("run numbers never go back", "after the sweep") }

        try await checkSavedFilters()
    }

    /// A saved filter comes back bit for bit (across chunks), replaces the one saved before
    /// (of the same size, of as many chunks, or larger: its chunks included), and is gone after
    /// a reset.
    func checkSavedFilters() async throws {
        guard try await store.dedupeFilter(pipeline: pipeline) == nil else { throw fail("no filter before one is saved", "one was read") }
        let large = DedupeFilterSnapshot(
            run: 3, header: [1, 2, 3, 4], words: (0..<UInt64(DedupeFilterSnapshot.chunkWords + 24)).map { $0 &* 0x9E37_79B9_7F4A_7C15 })
        try await store.saveDedupeFilter(pipeline: pipeline, large)
        guard let read = try await store.dedupeFilter(pipeline: pipeline), read.run == 3, read.header == large.header, read.words == large.words
        else { throw fail("a saved filter is read back as saved", "it differs (two chunks)") }
        // One of the same size (a store may write it over the one before, in place), then one
        // with as many chunks but a shorter last one.
        for words in [large.words.map { ~$0 }, Array(large.words.dropLast(8))] {
            let next = DedupeFilterSnapshot(run: 10 + Int64(words.count % 7), header: [9, UInt8(words.count % 251)], words: words)
            try await store.saveDedupeFilter(pipeline: pipeline, next)
            guard let read = try await store.dedupeFilter(pipeline: pipeline), read.run == next.run, read.header == next.header, read.words == words
            else { throw fail("a saved filter replaces the one before (\(words.count) words)", "the one before is read back, or a mix") }
        }
        let small = DedupeFilterSnapshot(run: 4, header: [5], words: [7, 8, 9])
        try await store.saveDedupeFilter(pipeline: pipeline, small)
        guard let again = try await store.dedupeFilter(pipeline: pipeline), again.run == 4, again.header == [5], again.words == [7, 8, 9]
        else { throw fail("a saved filter replaces the one before", "the larger one's chunks are read back") }
        try await store.reset(pipeline: pipeline)
        guard try await store.dedupeFilter(pipeline: pipeline) == nil else { throw fail("a reset deletes the saved filter", "it is still read") }
    }
}
