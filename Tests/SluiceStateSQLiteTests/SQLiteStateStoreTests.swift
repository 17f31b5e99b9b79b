import Foundation
@testable import SluiceCore
@testable import SluiceStateSQLite
import SluiceTesting
import Testing

@Suite struct SQLiteStateStoreTests {
    func open() throws -> (SQLiteStateStore, String) {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("state-\(UUID().uuidString)").path
        return (try SQLiteStateStore(path: "\(dir)/nested/state.db", historyLimit: 3), dir)
    }

    /// Opening a new state database from several connections at once (two processes starting
    /// together) succeeds for all: the switch to WAL and the migrations run one opener at a time.
    @Test func manyOpenersOfANewDatabaseAtOnceAllSucceed() async throws {
        for _ in 0..<5 {
            let dir = FileManager.default.temporaryDirectory.appendingPathComponent("state-\(UUID().uuidString)").path
            defer { try? FileManager.default.removeItem(atPath: dir) }
            let failures = try await withThrowingTaskGroup(of: String?.self) { group in
                for _ in 0..<6 {
                    group.addTask {
                        // Threads of their own: the openers must really run at the same moment.
                        await withCheckedContinuation { continuation in
                            Thread {
                                do {
                                    _ = try SQLiteStateStore(path: "\(dir)/state.db")
                                    continuation.resume(returning: nil)
                                } catch {
                                    continuation.resume(returning: "\(error)")
                                }
                            }.start()
                        }
                    }
                }
                return try await group.reduce(into: [String]()) { if let f = $1 { $0.append(f) } }
            }
            #expect(failures.isEmpty, "\(failures.first ?? "")")
        }
    }

    @Test func commitIsAtomicAndCheckpointsHaveHistory() async throws {
        let (store, dir) = try open()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        for i in 1...5 {
            var c = StateCommit(pipeline: "p")
            c.checkpoint = ["a.csv": "{\"offset\":\(i)}", "b.csv": "x\(i)"]
            try await store.commit(c)
        }
        let cp = try await store.checkpoint(pipeline: "p")
        #expect(cp["a.csv"] == "{\"offset\":5}")
        #expect(cp["b.csv"] == "x5")
        #expect(try await store.checkpoint(pipeline: "other").partitions.isEmpty)
        let history = try await store.checkpointHistory(pipeline: "p", limit: 100)
        #expect(history.count == 3)
        #expect(history.first.map { $0.value == "{\"offset\":5}" || $0.value == "x5" } == true, "newest first")
    }

    @Test func journalModeIsWAL() async throws {
        let (store, dir) = try open()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        _ = store
        #expect(FileManager.default.fileExists(atPath: "\(dir)/nested/state.db-wal"))
    }

    @Test func deadLettersKeepLocationRawBytesAndCountAttempts() async throws {
        let (store, dir) = try open()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var c = StateCommit(pipeline: "p")
        c.deadLetters = [DeadLetter(stage: "decode", errorKind: "malformed_row", message: "bad", location: "f.csv:3", raw: [0xFF, 0x00, 0x41])]
        try await store.commit(c)
        try await store.commit(c)
        let letters = try await store.deadLetters(pipeline: "p", limit: 10)
        #expect(letters.count == 1)
        #expect(letters[0].letter.raw == [0xFF, 0x00, 0x41])
        #expect(letters[0].letter.attempts == 2)
        #expect(try await store.deadLetter(id: letters[0].id)?.letter.location == "f.csv:3")
        #expect(try await store.deadLetterCount(pipeline: nil) == 1)
    }

    @Test func theStoreKeepsTheDedupeContract() async throws {
        let (store, dir) = try open()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try await DedupeStoreConformance(store: store, pipeline: "p").run()
    }

    /// A filter of the size saved before is written over it in place: the same rows hold the
    /// new bits, another pipeline's filter is untouched, and a filter of another size replaces
    /// the rows.
    @Test func aFilterOfTheSameSizeIsSavedInPlace() async throws {
        let (store, dir) = try open()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let words = (0..<UInt64(DedupeFilterSnapshot.chunkWords + 40)).map { $0 &* 0x9E37_79B9_7F4A_7C15 }
        let other = DedupeFilterSnapshot(run: 1, header: [1], words: words.map { $0 ^ 0x5555 })
        try await store.saveDedupeFilter(pipeline: "other", other)
        try await store.saveDedupeFilter(pipeline: "p", DedupeFilterSnapshot(run: 2, header: [2], words: words))
        func rowIDs(_ pipeline: String) async throws -> [Int64] {
            try await store.pool.read { db in
                try Int64.fetchAll(db, sql: "SELECT rowid FROM dedupe_filter_chunks WHERE pipeline = ? ORDER BY chunk", arguments: [pipeline])
            }
        }
        let before = try await rowIDs("p")
        let next = DedupeFilterSnapshot(run: 3, header: [3, 3], words: words.map { ~$0 })
        try await store.saveDedupeFilter(pipeline: "p", next)
        #expect(try await rowIDs("p") == before && before.count == 2, "written over the same rows")
        let read = try await store.dedupeFilter(pipeline: "p")
        #expect(read?.run == 3 && read?.header == [3, 3] && read?.words == next.words)
        #expect(try await store.dedupeFilter(pipeline: "other")?.words == other.words, "another pipeline's filter is untouched")
        try await store.saveDedupeFilter(pipeline: "p", DedupeFilterSnapshot(run: 4, header: [4], words: Array(words.prefix(100))))
        #expect(try await store.dedupeFilter(pipeline: "p")?.words == Array(words.prefix(100)))
        #expect(try await rowIDs("p").count == 1)
    }

    /// Keys an earlier version stored as text are hashed into runs (one per commit time) when
    /// the pipeline first opens dedupe: still duplicates within their TTL, expired after it.
    @Test func textKeysOfAnEarlierVersionAreConverted() async throws {
        let (store, dir) = try open()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try await store.pool.write { db in
            for (key, at) in [("v1:1", 1000.0), ("v1:2", 1000.0), ("s1:x", 2000.0)] {
                try db.execute(sql: "INSERT INTO dedupe_keys(pipeline, key, seen_at) VALUES ('p', ?, ?)", arguments: [key, at])
            }
            try db.execute(sql: "INSERT INTO dedupe_keys(pipeline, key, seen_at) VALUES ('q', 'v1:1', 1000)")
        }
        #expect(
            try await store.seenKeys(pipeline: "p", keys: ["v1:1", "v1:2", "s1:x", "v1:3"], since: Date(timeIntervalSince1970: 0)) == ["v1:1", "v1:2", "s1:x"])
        #expect(try await store.seenKeys(pipeline: "p", keys: ["v1:1", "s1:x"], since: Date(timeIntervalSince1970: 1500)) == ["s1:x"])
        #expect(try await store.dedupeLastRun(pipeline: "p") == 2, "one run per commit time")
        let left = try await store.pool.read { db in try Int.fetchOne(db, sql: "SELECT count(*) FROM dedupe_keys WHERE pipeline = 'p'") }
        #expect(left == 0)
        // Another pipeline's keys wait for that pipeline.
        #expect(try await store.pool.read { db in try Int.fetchOne(db, sql: "SELECT count(*) FROM dedupe_keys WHERE pipeline = 'q'") } == 1)
        // The columns of a record hash to the converted key.
        let seed = try await store.dedupeSeed(pipeline: "p")
        var b = ColumnBuilder(type: .int64)
        b.append(Int64(2))
        var hasher = DedupeKeyHasher(seed: seed)
        let hash = hasher.hash([b.finish()], row: 0)
        #expect(try await store.seenHashes(pipeline: "p", hashes: [hash], since: Date(timeIntervalSince1970: 0)).count == 1)
    }

    @Test func dedupeKeysExpireAndAreSwept() async throws {
        let (store, dir) = try open()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var c = StateCommit(pipeline: "p", now: Date(timeIntervalSince1970: 1000))
        c.dedupeKeys = ["a", "b"]
        try await store.commit(c)
        #expect(try await store.seenKeys(pipeline: "p", keys: ["a", "b", "c"], since: Date(timeIntervalSince1970: 900)) == ["a", "b"])
        #expect(try await store.seenKeys(pipeline: "p", keys: ["a"], since: Date(timeIntervalSince1970: 1001)).isEmpty)
        #expect(try await store.seenKeys(pipeline: "q", keys: ["a"], since: Date(timeIntervalSince1970: 0)).isEmpty)
        #expect(try await store.sweepKeys(pipeline: "p", before: Date(timeIntervalSince1970: 1001)) == 2)
        #expect(try await store.seenKeys(pipeline: "p", keys: ["a"], since: Date(timeIntervalSince1970: 0)).isEmpty)
    }

    /// `dedupeSince`: a key another commit stored inside the TTL refuses the whole commit; a
    /// retry of the commit that stored it, or a key past the TTL, is not a conflict.
    @Test func aCommitWhoseKeyIsStoredIsRefusedWhole() async throws {
        let (store, dir) = try open()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var first = StateCommit(pipeline: "p", now: Date(timeIntervalSince1970: 1000))
        first.dedupeKeys = ["a", "b"]
        first.dedupeSince = Date(timeIntervalSince1970: 500)
        try await store.commit(first)
        try await store.commit(first)
        var second = StateCommit(pipeline: "p", now: Date(timeIntervalSince1970: 1001))
        second.checkpoint = ["f": "2"]
        second.dedupeKeys = ["c", "b"]
        second.dedupeSince = Date(timeIntervalSince1970: 501)
        await #expect { try await store.commit(second) } throws: { ($0 as? SluiceError)?.code == .conflict }
        #expect(try await store.checkpoint(pipeline: "p").partitions.isEmpty)
        #expect(try await store.seenKeys(pipeline: "p", keys: ["a", "b", "c"], since: Date(timeIntervalSince1970: 0)) == ["a", "b"])
        second.dedupeSince = Date(timeIntervalSince1970: 1000.5)  // "b" has expired
        try await store.commit(second)
        #expect(try await store.checkpoint(pipeline: "p").partitions == ["f": "2"])
        #expect(try await store.seenKeys(pipeline: "p", keys: ["a", "b", "c"], since: Date(timeIntervalSince1970: 1001)) == ["b", "c"])
    }

    @Test func fileIntentsArePendingUntilResolved() async throws {
        let (store, dir) = try open()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var c = StateCommit(pipeline: "p")
        c.fileIntents = [FileIntent(tempPath: "/t/.a.tmp", finalPath: "/t/a", records: 3, bytes: 10)]
        try await store.commit(c)
        #expect(try await store.pendingFileIntents(pipeline: "p").map(\.intent.finalPath) == ["/t/a"])
        try await store.resolveFileIntents(pipeline: "p", finalPaths: ["/t/a"])
        #expect(try await store.pendingFileIntents(pipeline: "p").isEmpty)
    }

    @Test func runsAndReset() async throws {
        let (store, dir) = try open()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let id = try await store.startRun(pipeline: "p", at: Date())
        var totals = RunTotals()
        totals.recordsIn = 7
        try await store.finishRun(id: id, status: .succeeded, totals: totals, message: nil, at: Date())
        let runs = try await store.runs(pipeline: "p", limit: 5)
        #expect(runs.first?.status == .succeeded && runs.first?.recordsIn == 7)
        var c = StateCommit(pipeline: "p")
        c.checkpoint = ["": "1"]
        c.dedupeKeys = ["k"]
        try await store.commit(c)
        try await store.reset(pipeline: "p")
        #expect(try await store.checkpoint(pipeline: "p").partitions.isEmpty)
        #expect(try await store.seenKeys(pipeline: "p", keys: ["k"], since: .distantPast).isEmpty)
        #expect(try await store.runs(pipeline: "p", limit: 5).count == 1)
    }

    @Test func reopeningKeepsState() async throws {
        let (store, dir) = try open()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var c = StateCommit(pipeline: "p")
        c.checkpoint = ["": "42"]
        try await store.commit(c)
        let again = try SQLiteStateStore(path: store.path)
        #expect(try await again.checkpoint(pipeline: "p")[""] == "42")
    }
}

@Suite struct SQLiteAlertHistoryTests {
    @Test func alertsAndHourlyVolumeBehaveAsEveryStoreMust() async throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("state-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try await AlertHistoryConformance.run(try SQLiteStateStore(path: "\(dir)/state.db"), prefix: "p")
        try await UsageConformance.run(try SQLiteStateStore(path: "\(dir)/usage.db"), prefix: "p")
    }
}

@Suite struct SQLiteDeadLetterAdminTests {
    @Test func filtersStatsRetentionAndDropBehaveAsEveryStoreMust() async throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("state-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try await DeadLetterAdminConformance.run(try SQLiteStateStore(path: "\(dir)/state.db"), prefix: "p")
    }
}
