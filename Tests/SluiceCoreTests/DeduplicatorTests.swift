import Foundation
@testable import SluiceCore
import SluiceTesting
import Testing

@Suite struct DeduplicatorTests: DedupeTestRecords {

    /// A commit in the middle of a flush must not take keys of batches it does not cover.
    @Test func pendingKeysAreHandedOverPerBatch() async throws {
        var d = Deduplicator(settings: DedupeSettings(key: ["id"], ttl: .seconds(60)), pipeline: "p", store: MemoryStateStore())
        let position = SourcePosition(partition: "", value: "x")
        _ = try await d.filter(batch([1, 2]), sequence: 0, position: position, now: Date())
        _ = try await d.filter(batch([3]), sequence: 1, position: position, now: Date())
        let (kept, duplicates, _) = try await d.filter(batch([3, 4]), sequence: 2, position: position, now: Date())
        #expect(kept.count == 1 && duplicates == 1)
        #expect(d.takePending(through: 0).keys.count == 2)
        // Keys of batches the commit did not cover are still pending: still duplicates.
        let (again, repeated, _) = try await d.filter(batch([3, 4, 5]), sequence: 3, position: position, now: Date())
        #expect(again.count == 1 && repeated == 2)
        #expect(d.takePending(through: 1).keys.count == 1)
        #expect(d.takePending(through: 5).keys.count == 2)
    }

    /// A batch of several hashing chunks is hashed on several threads: every row gets the
    /// hash its key has on one thread, and repeats across chunk boundaries are dropped.
    @Test func aLargeBatchHashedOnSeveralThreadsIsExact() async throws {
        let store = MemoryStateStore()
        var d = Deduplicator(settings: DedupeSettings(key: ["id"], ttl: .seconds(60)), pipeline: "p", store: store)
        let position = SourcePosition(partition: "", value: "x")
        let chunk = Deduplicator.hashingChunk
        // Row `chunk` repeats row `chunk - 1`, the last row repeats the first.
        let ids = (0..<Int64(3 * chunk + 5)).map { $0 == Int64(chunk) ? Int64(chunk - 1) : $0 == Int64(3 * chunk + 4) ? 0 : $0 }
        let (kept, duplicates, _) = try await d.filter(batch(ids), sequence: 0, position: position, now: Date())
        #expect(kept.count == ids.count - 2 && duplicates == 2)
        let column = kept.column(named: "id")!
        #expect(column.value(at: chunk - 1) == .int64(Int64(chunk - 1)) && column.value(at: chunk) == .int64(Int64(chunk + 1)))
        var single = DedupeKeyHasher(seed: try await store.dedupeSeed(pipeline: "p"))
        let columns = batch(ids).columns
        let expected = (0..<ids.count).map { single.hash(columns, row: $0) }
        // Three lanes even on one processor (the lanes are threads), and the default.
        #expect(try d.hashKeys(columns, count: ids.count, lanes: 3) == expected)
        #expect(try d.hashKeys(columns, count: ids.count) == expected)
    }

    /// The records of one queue message share its sequence: kept or dropped as one unit.
    @Test func runsOfOneKeyAreKeptOrDroppedTogether() async throws {
        let store = MemoryStateStore()
        var d = Deduplicator(settings: DedupeSettings(key: ["id"], ttl: .seconds(60)), pipeline: "p", store: store)
        let position = SourcePosition(partition: "", value: "x")
        let (first, dropped, _) = try await d.filter(batch([1, 1, 1, 2, 2]), sequence: 0, position: position, now: Date(), keyRuns: true)
        #expect(first.count == 5 && dropped == 0)
        // A redelivered message (key 2) is dropped whole; a new one (3) kept whole; a key seen
        // again after another (1 after 3) is a redelivery too, not part of the run.
        let (second, dropped2, _) = try await d.filter(batch([2, 2, 3, 3, 3, 1]), sequence: 1, position: position, now: Date(), keyRuns: true)
        #expect(second.count == 3 && dropped2 == 3)
        let hasher = DedupeKeyHasher(seed: try await store.dedupeSeed(pipeline: "p"))
        #expect(d.takePending(through: 1).keys == [1, 2, 3].map { hasher.hash(text: DedupeKey.encode([.int64($0)])) })
        // A message delivered twice in one batch, its copies side by side: the break the
        // source marks makes the second copy a unit of its own, a duplicate.
        let (third, dropped3, _) = try await d.filter(
            batch([4, 4, 4, 4]), sequence: 2, position: position, now: Date(), keyRuns: true, unitBreaks: [2])
        #expect(third.count == 2 && dropped3 == 2)
        // Without runs, a repeated key is a duplicate even next to itself.
        var plain = Deduplicator(settings: DedupeSettings(key: ["id"], ttl: .seconds(60)), pipeline: "p", store: MemoryStateStore())
        let (kept, duplicates, _) = try await plain.filter(batch([1, 1, 1]), sequence: 0, position: position, now: Date())
        #expect(kept.count == 1 && duplicates == 2)
    }

    @Test func keysAreUnambiguous() {
        #expect(DedupeKey.encode([.null]) != DedupeKey.encode([.string("null")]))
        #expect(DedupeKey.encode([.binary([0x01, 0x23])]) != DedupeKey.encode([.binary([0x12, 0x03])]))
        #expect(DedupeKey.encode([.string("a\u{1F}b")]) != DedupeKey.encode([.string("a"), .string("b")]))
        #expect(DedupeKey.encode([.int64(7), .string("x")]) == DedupeKey.encode([.int64(7), .string("x")]))
    }

    @Test func aMissingKeyFieldDeadLettersEveryRow() async throws {
        var d = Deduplicator(settings: DedupeSettings(key: ["nope"], ttl: .seconds(60)), pipeline: "p", store: MemoryStateStore())
        let (kept, _, rejects) = try await d.filter(batch([1, 2, 3]), sequence: 0, position: SourcePosition(partition: "f", value: "9"), now: Date())
        #expect(kept.count == 0)
        #expect(rejects.count == 3)
        #expect(Set(rejects.map(\.location)).count == 3)
    }
}

/// The filter in front of the store: never drops a new key, never lets a stored one through.
@Suite struct DeduplicatorFilterTests: DedupeTestRecords {
    let position = SourcePosition(partition: "", value: "x")


    /// A filter far too small for the keys stored (8 KiB for 100,000 keys) answers maybe for
    /// most keys: each maybe is asked of the store, and no new key is dropped.
    @Test func theFilterNeverDropsANewKey() async throws {
        let store = MemoryStateStore()
        let now = Date()
        try await commitElsewhere(0..<100_000, to: store, at: now)
        var d = Deduplicator(settings: DedupeSettings(key: ["id"], ttl: .seconds(60)), pipeline: "p", store: store, filterLimit: 8 << 10)
        var kept = 0
        for start in stride(from: Int64(1_000_000), to: 1_050_000, by: 10_000) {
            kept += try await d.filter(batch(start..<start + 10_000), sequence: 0, position: position, now: now).0.count
        }
        #expect(kept == 50_000, "every new key kept")
        // At its limit with more keys stored than it holds, the filter is not read again from
        // the store for every batch.
        #expect(d.filterBuilds == 1, "\(d.filterBuilds) builds in 5 batches")
        #expect(d.storeLookups > 10_000 && d.storeHits == 0, "\(d.storeLookups) maybes asked of the store, none stored")
        // And the stored ones are found, through the same filter.
        let (again, duplicates, _) = try await d.filter(batch(Array(0..<1000) + [2_000_000]), sequence: 1, position: position, now: now)
        #expect(again.count == 1 && duplicates == 1000)

        // At its normal size the filter answers absent for almost every new key: the store is
        // barely asked.
        var sized = Deduplicator(settings: DedupeSettings(key: ["id"], ttl: .seconds(60)), pipeline: "p", store: store)
        let fresh = try await sized.filter(batch(3_000_000..<3_100_000), sequence: 0, position: position, now: now).0.count
        #expect(fresh == 100_000 && sized.storeLookups < 100, "\(sized.storeLookups) lookups")
    }

    /// A filter at its limit is built again once it has taken twice its keys: keys accepted and
    /// not yet committed are still duplicates after that.
    @Test func keysNotYetCommittedSurviveAFilterRebuild() async throws {
        let store = MemoryStateStore()
        let now = Date()
        var d = Deduplicator(settings: DedupeSettings(key: ["id"], ttl: .seconds(60)), pipeline: "p", store: store, filterLimit: 100_000)
        var kept = 0
        for (sequence, start) in stride(from: Int64(0), to: 200_000, by: 20_000).enumerated() {
            kept += try await d.filter(batch(start..<start + 20_000), sequence: UInt64(sequence), position: position, now: now).0.count
        }
        #expect(kept == 200_000 && d.filterBytes <= 100_000 && d.pendingCount == 200_000)
        let (again, duplicates, _) = try await d.filter(batch(Array(0..<5) + Array(199_995..<200_000) + [300_000]), sequence: 10, position: position, now: now)
        #expect(again.count == 1 && duplicates == 10)
    }

    /// A key committed by another worker after this one read the store (so not in its filter
    /// from the start) is still a duplicate: each batch first reads the runs committed since.
    @Test func aKeyOnlyInTheStoreIsStillADuplicate() async throws {
        let store = MemoryStateStore()
        let now = Date()
        var d = Deduplicator(settings: DedupeSettings(key: ["id"], ttl: .seconds(60)), pipeline: "p", store: store)
        #expect(try await d.filter(batch([1]), sequence: 0, position: position, now: now).0.count == 1)
        try await commitElsewhere([5, 7], to: store, at: now)
        let (kept, duplicates, _) = try await d.filter(batch([5, 6, 7]), sequence: 1, position: position, now: now)
        #expect(kept.column(named: "id")?.value(at: 0) == .int64(6) && kept.count == 1 && duplicates == 2)
        #expect(d.storeHits == 2)
    }

    /// A key whose TTL ran out is new again, in the filter (which still holds it) and in a
    /// fresh start (which does not read expired runs).
    @Test func anExpiredKeyIsNewAgain() async throws {
        let store = MemoryStateStore()
        let t0 = Date()
        var d = Deduplicator(settings: DedupeSettings(key: ["id"], ttl: .seconds(60)), pipeline: "p", store: store)
        #expect(try await d.filter(batch([1, 2]), sequence: 0, position: position, now: t0).0.count == 2)
        var commit = StateCommit(pipeline: "p", now: t0)
        let pending = d.takePending(through: 0)
        commit.dedupeHashes = pending.keys
        commit.dedupeCheckedThrough = pending.checkedThrough
        try await store.commit(commit)
        #expect(try await d.filter(batch([1]), sequence: 1, position: position, now: t0.addingTimeInterval(59)).1 == 1, "inside the TTL")
        let (late, duplicates, _) = try await d.filter(batch([1, 2]), sequence: 2, position: position, now: t0.addingTimeInterval(61))
        #expect(late.count == 2 && duplicates == 0, "expired: new again")
        var fresh = Deduplicator(settings: DedupeSettings(key: ["id"], ttl: .seconds(60)), pipeline: "p", store: store)
        #expect(try await fresh.filter(batch([2]), sequence: 0, position: position, now: t0.addingTimeInterval(61)).0.count == 1)
    }

    /// The keys a commit hands over carry the earliest run their batches were looked up
    /// through: a worker committing one of them in a later run refuses the commit.
    @Test func aCommitIsRefusedForAKeyAnotherWorkerCommittedAfterTheLookup() async throws {
        let store = MemoryStateStore()
        let now = Date()
        var d = Deduplicator(settings: DedupeSettings(key: ["id"], ttl: .seconds(60)), pipeline: "p", store: store)
        _ = try await d.filter(batch([1, 2]), sequence: 0, position: position, now: now)
        try await commitElsewhere([2], to: store, at: now.addingTimeInterval(-1))
        _ = try await d.filter(batch([3]), sequence: 1, position: position, now: now)
        var commit = StateCommit(pipeline: "p", now: now)
        let pending = d.takePending(through: 1)
        commit.dedupeHashes = pending.keys
        commit.dedupeCheckedThrough = pending.checkedThrough
        commit.dedupeSince = now.addingTimeInterval(-60)
        await #expect { try await store.commit(commit) } throws: { ($0 as? SluiceError)?.code == .conflict }
        // The same keys from the writer that accepted them, looked up through the last run,
        // are its own: stored.
        commit.dedupeWriter = d.writer
        commit.dedupeCheckedThrough = try await store.dedupeLastRun(pipeline: "p")
        commit.dedupeHashes = [pending.keys[0]]
        try await store.commit(commit)
    }
}

/// The filter saved in the store, so a start need not read every stored key.
@Suite struct DeduplicatorSavedFilterTests: DedupeTestRecords {
    let position = SourcePosition(partition: "", value: "x")
    let settings = DedupeSettings(key: ["id"], ttl: .seconds(60))


    func commit(_ d: inout Deduplicator, through sequence: UInt64, to store: MemoryStateStore, at now: Date) async throws {
        var commit = StateCommit(pipeline: "p", now: now)
        let pending = d.takePending(through: sequence)
        commit.dedupeHashes = pending.keys
        commit.dedupeCheckedThrough = pending.checkedThrough
        commit.dedupeWriter = d.writer
        try await store.commit(commit)
    }

    /// The next start takes the saved filter and reads only the runs committed after it: keys
    /// of the first run and of a later worker's run are duplicates, new keys are kept.
    @Test func theNextStartTakesTheSavedFilterAndStaysExact() async throws {
        let store = MemoryStateStore()
        let now = Date()
        var first = Deduplicator(settings: settings, pipeline: "p", store: store)
        #expect(try await first.filter(batch(0..<100_000), sequence: 0, position: position, now: now).0.count == 100_000)
        try await commit(&first, through: 0, to: store, at: now)
        try await first.saveFilterIfDue(final: false, now: now)
        #expect(first.filterSaves == 0, "100,000 keys are not due in between")
        try await first.saveFilterIfDue(final: true, now: now)
        #expect(first.filterSaves == 1)
        // Another worker commits after the save.
        var other = StateCommit(pipeline: "p", now: now)
        other.dedupeKeys = (200_000..<200_010).map { DedupeKey.encode([.int64($0)]) }
        try await store.commit(other)

        var second = Deduplicator(settings: settings, pipeline: "p", store: store)
        let (kept, duplicates, _) = try await second.filter(batch([5, 99_999, 200_003, 300_000]), sequence: 0, position: position, now: now)
        #expect(second.filterLoads == 1 && second.filterBuilds == 0)
        #expect(kept.count == 1 && kept.column(named: "id")?.value(at: 0) == .int64(300_000) && duplicates == 3)
        try await second.saveFilterIfDue(final: true, now: now)
        #expect(second.filterSaves == 0, "one key added: reading it again is cheaper than saving")
    }

    /// A saved filter the store could not have made for these runs (its run is past the last
    /// one, as after a copy to another store) is built again from the keys instead.
    @Test func aFilterAheadOfTheStoreIsNotUsed() async throws {
        let store = MemoryStateStore()
        let now = Date()
        var first = Deduplicator(settings: settings, pipeline: "p", store: store)
        _ = try await first.filter(batch(0..<10), sequence: 0, position: position, now: now)
        try await commit(&first, through: 0, to: store, at: now)
        let seed = try await store.dedupeSeed(pipeline: "p")
        try await store.saveDedupeFilter(pipeline: "p", DedupeFilter(capacity: 1000).snapshot(run: 99, seed: seed))
        var second = Deduplicator(settings: settings, pipeline: "p", store: store)
        let (kept, duplicates, _) = try await second.filter(batch([3, 11]), sequence: 0, position: position, now: now)
        #expect(second.filterLoads == 0 && second.filterBuilds == 1)
        #expect(kept.count == 1 && duplicates == 1)
    }

    /// A filter saved under a short TTL left out keys that had expired then; under a longer
    /// TTL they are live again, so that filter is not used: the key is still a duplicate.
    @Test func aFilterSavedUnderAShorterTTLIsNotUsed() async throws {
        let store = MemoryStateStore()
        let t0 = Date()
        var old = StateCommit(pipeline: "p", now: t0)
        old.dedupeKeys = [DedupeKey.encode([.int64(7)])]
        try await store.commit(old)
        var short = Deduplicator(settings: DedupeSettings(key: ["id"], ttl: .seconds(60)), pipeline: "p", store: store)
        let later = t0.addingTimeInterval(100)
        #expect(try await short.filter(batch(100..<70_000), sequence: 0, position: position, now: later).0.count == 69_900)
        try await commit(&short, through: 0, to: store, at: later)
        try await short.saveFilterIfDue(final: true, now: later)
        #expect(short.filterSaves == 1)
        var long = Deduplicator(settings: DedupeSettings(key: ["id"], ttl: .seconds(3600)), pipeline: "p", store: store)
        let (kept, duplicates, _) = try await long.filter(batch([7, 100, 1]), sequence: 0, position: position, now: later)
        #expect(long.filterLoads == 0 && long.filterBuilds == 1)
        #expect(kept.count == 1 && duplicates == 2, "7 (an hour's TTL) and 100 are stored")
    }

    /// A snapshot keeps every bit; one of another seed or format, or over the memory bound, is
    /// refused.
    @Test func aSnapshotIsReadBackOnlyWhereItFits() {
        let seed = DedupeSeed(k0: 1, k1: 2)
        var filter = DedupeFilter(capacity: 1000)
        let keys = (0..<1000).map { DedupeHash(high: UInt64($0) &* 0x9E37_79B9_7F4A_7C15, low: UInt64($0) &* 0xC2B2_AE3D_27D4_EB4F) }
        for key in keys { filter.insert(key) }
        let snapshot = filter.snapshot(run: 3, seed: seed)
        let restored = DedupeFilter(snapshot: snapshot, seed: seed)
        #expect(restored != nil && keys.allSatisfy { restored!.mayContain($0) } && restored!.added == 1000)
        #expect(DedupeFilter(snapshot: snapshot, seed: DedupeSeed(k0: 1, k1: 3)) == nil, "another seed")
        var otherFormat = snapshot
        otherFormat.header[8] = 9
        #expect(DedupeFilter(snapshot: otherFormat, seed: seed) == nil, "another format")
        #expect(DedupeFilter(snapshot: snapshot, seed: seed, limit: 1024) == nil, "over the bound")
    }
}

@Suite struct MemoryDedupeStoreTests {
    @Test func theMemoryStoreKeepsTheDedupeContract() async throws {
        try await DedupeStoreConformance(store: MemoryStateStore(), pipeline: "p").run()
    }
}
