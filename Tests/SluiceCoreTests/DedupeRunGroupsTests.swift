import Foundation
import SluiceCore
import SluiceTesting
import Testing

@testable import SluiceCore

/// The groups of runs that let a lookup of many keys read only the runs that may hold them.
@Suite struct DedupeRunGroupsTests {
    func hashes(_ range: Range<UInt64>) -> [DedupeHash] {
        range.map { DedupeHash(high: $0 &* 0x9E37_79B9_7F4A_7C15, low: ($0 + 1) &* 0xC2B2_AE3D_27D4_EB4F) }
    }

    /// Rows of one run, by bucket, in the order a store hands them over.
    func rows(run: Int64, _ keys: [DedupeHash], seenAt: Double = 100) -> [DedupeRunRow] {
        DedupeRunRow.rows(run: run, seenAt: seenAt, hashes: keys)
    }

    /// Runs of 1,000 keys with groups of 3,000: a group ends with the run that brings it to
    /// 1,500 keys, each key is a candidate of its own group, and other groups rarely answer maybe.
    @Test func eachKeyIsACandidateOfItsGroup() {
        var groups = DedupeRunGroups(groupKeys: 3000)
        let runs = (0..<5).map { hashes(UInt64($0) * 1000..<UInt64($0 + 1) * 1000) }
        for (index, keys) in runs.enumerated() {
            for row in rows(run: Int64(index + 1) * 2, keys) { groups.add(row) }
        }
        groups.finish(through: 12)
        #expect(groups.through == 12)
        #expect(groups.groups.map(\.runs) == [1...4, 5...8, 9...12], "runs 2+4, 6+8, 10 (through 12)")
        for (index, keys) in runs.enumerated() {
            let run = Int64(index + 1) * 2
            let maybes = keys.map { groups.all(mayHolding: $0) }
            #expect(maybes.allSatisfy { $0.contains { $0.contains(run) } }, "run \(run): every key a maybe of its group")
            let strays = maybes.reduce(0) { $0 + $1.count } - keys.count
            #expect(strays < keys.count / 50, "run \(run): \(strays) maybes in other groups")
        }
        #expect(hashes(50_000..<50_100).reduce(0) { $0 + groups.all(mayHolding: $1).count } < 10, "keys never stored")
    }

    /// At the bound the last group takes the runs read after it; groups whose keys all expired
    /// are dropped; a reading that finds no row covers its runs all the same.
    @Test func theBoundAndExpiry() {
        var groups = DedupeRunGroups(groupKeys: 1000, maxGroups: 2)
        for row in rows(run: 1, hashes(0..<1000), seenAt: 10) { groups.add(row) }
        for row in rows(run: 2, hashes(1000..<2000), seenAt: 20) { groups.add(row) }
        groups.finish(through: 2)
        #expect(groups.groups.map(\.runs) == [1...1, 2...2])
        for row in rows(run: 5, hashes(2000..<3000), seenAt: 30) { groups.add(row) }
        groups.finish(through: 6)
        #expect(groups.groups.map(\.runs) == [1...1, 2...6], "the last group took runs 3 to 6")
        #expect(hashes(1000..<3000).allSatisfy { groups.group(mayHolding: $0, before: 2) == 1 }, "the last group holds runs 2 to 6")
        groups.finish(through: 9)
        #expect(groups.groups.last?.runs == 2...9 && groups.through == 9)
        groups.dropExpired(cutoff: 25)
        #expect(groups.groups.map(\.runs) == [2...9], "run 1's keys expired at 25; the last group's newest key (30) is live")
        #expect(groups.byteSize == 1984, "2 bytes a key, in whole 64-byte blocks")
    }
}

/// The deduplicator with groups: exact whatever run, group or writer holds a key.
@Suite struct DeduplicatorRunGroupTests: DedupeTestRecords {
    let position = SourcePosition(partition: "", value: "x")
    let settings = DedupeSettings(key: ["id"], ttl: .seconds(60))


    func kept(_ result: (RecordBatch, duplicates: Int, rejects: [DeadLetter])) -> [Int64] {
        let column = result.0.column(named: "id")
        return (0..<result.0.count).compactMap { if case let .int64(v) = column?.value(at: $0) { v } else { nil } }
    }

    /// Five runs (groups of 2,500 keys: one group per run), then a file of duplicates from every
    /// run with new keys among them; runs committed after the groups were read, by another
    /// writer and by this one, are found too; the groups are read again once the runs after them
    /// hold a group's worth of keys.
    @Test func aReplayIsExactAcrossGroupsAndLaterRuns() async throws {
        let store = MemoryStateStore()
        let now = Date()
        for run in 0..<5 { try await commitElsewhere(Int64(run * 3000)..<Int64(run * 3000 + 3000), to: store, at: now) }
        var d = Deduplicator(settings: settings, pipeline: "p", store: store, runGroupKeys: 2500)

        // Every other stored key, and a new key after every 10th.
        var replay: [Int64] = []
        for id in stride(from: Int64(0), to: 15_000, by: 2) {
            replay.append(id)
            if id % 20 == 0 { replay.append(100_000 + id) }
        }
        let first = kept(try await d.filter(batch(replay), sequence: 0, position: position, now: now))
        #expect(first == stride(from: Int64(0), to: 15_000, by: 20).map { 100_000 + $0 })
        #expect(d.groupReadings == 1 && d.storeHits == 7500)

        // Another writer's run after the groups; this writer's keys, committed.
        try await commitElsewhere(50_000..<50_100, to: store, at: now)
        var commit = StateCommit(pipeline: "p", now: now)
        let pending = d.takePending(through: 0)
        commit.dedupeHashes = pending.keys
        commit.dedupeCheckedThrough = pending.checkedThrough
        commit.dedupeWriter = d.writer
        try await store.commit(commit)
        let mixed: [Int64] = Array(1..<5000) + Array(50_000..<50_100) + Array(stride(from: 100_000, to: 115_000, by: 20)) + [7_000_000]
        let second = kept(try await d.filter(batch(mixed), sequence: 1, position: position, now: now))
        #expect(second == [7_000_000], "the later runs are looked up too")
        #expect(d.groupReadings == 1)

        // Past a group's worth of keys in later runs, the next large lookup reads them into groups.
        let fresh = kept(try await d.filter(batch(200_000..<203_000), sequence: 2, position: position, now: now))
        #expect(fresh.count == 3000)
        var next = StateCommit(pipeline: "p", now: now)
        next.dedupeHashes = d.takePending(through: 2).keys
        next.dedupeWriter = d.writer
        try await store.commit(next)
        let again: [Int64] = Array(200_000..<205_000) + Array(0..<100)
        let third = kept(try await d.filter(batch(again), sequence: 3, position: position, now: now))
        #expect(third == Array(203_000..<205_000))
        #expect(d.groupReadings == 2)
    }

    /// Small batches of duplicates get groups once they found 4,096 keys in the store.
    @Test func smallBatchesOfDuplicatesGetGroupsToo() async throws {
        let store = MemoryStateStore()
        let now = Date()
        try await commitElsewhere(0..<10_000, to: store, at: now)
        var d = Deduplicator(settings: settings, pipeline: "p", store: store, runGroupKeys: 2500)
        for start in stride(from: Int64(0), to: 7000, by: 1000) {
            let ids: [Int64] = Array(start..<start + 1000) + [50_000 + start]
            #expect(kept(try await d.filter(batch(ids), sequence: 0, position: position, now: now)) == [50_000 + start])
            // Read at the batch after the one that brought the hits past 4,096.
            #expect(d.groupReadings == (start < 5000 ? 0 : 1), "after \(d.storeHits) duplicates")
        }
    }

    /// A clock that steps back does not bring expired keys back to life: the TTL cutoff never
    /// goes back (groups leave out keys expired when they were read).
    @Test func theCutoffNeverGoesBack() async throws {
        let store = MemoryStateStore()
        let t0 = Date()
        try await commitElsewhere([1, 2], to: store, at: t0)
        var d = Deduplicator(settings: settings, pipeline: "p", store: store)
        #expect(kept(try await d.filter(batch([1]), sequence: 0, position: position, now: t0.addingTimeInterval(61))) == [1])
        #expect(kept(try await d.filter(batch([2]), sequence: 1, position: position, now: t0.addingTimeInterval(59))) == [2])
    }

    /// Keys whose TTL ran out are new again through the groups; a store over the groups' bound
    /// is looked up run by run as before, just as exactly.
    @Test func expiredKeysAndLargeStores() async throws {
        let store = MemoryStateStore()
        let t0 = Date()
        try await commitElsewhere(0..<5000, to: store, at: t0)
        try await commitElsewhere(5000..<10_000, to: store, at: t0.addingTimeInterval(30))
        var d = Deduplicator(settings: settings, pipeline: "p", store: store, runGroupKeys: 2500)
        let later = t0.addingTimeInterval(61)
        let result = kept(try await d.filter(batch(0..<10_000), sequence: 0, position: position, now: later))
        #expect(result == Array(0..<5000), "the first run expired, the second is live")
        #expect(d.groupReadings == 1)

        var small = Deduplicator(settings: settings, pipeline: "p", store: store, runGroupKeys: 100)
        let live: [Int64] = Array(5000..<10_000) + [20_000]
        let all = kept(try await small.filter(batch(live), sequence: 0, position: position, now: later))
        #expect(all == [20_000] && small.groupReadings == 0, "5,000 live keys: over 16 groups of 100")
    }
}

extension DedupeRunGroups {
    /// The runs of every group whose filter may hold `key`, newest first.
    func all(mayHolding key: DedupeHash) -> [ClosedRange<Int64>] {
        var runs: [ClosedRange<Int64>] = []
        var before = groups.count
        while let index = group(mayHolding: key, before: before) {
            runs.append(groups[index].runs)
            before = index
        }
        return runs
    }
}
