import Foundation
import SluiceCore
@testable import SluicePostgres
import SluiceTesting
import Testing

/// The shared state store on the real server. Tests share the `sluice` schema, so each uses
/// pipeline and subject names of its own.
@Suite struct PostgresStateStoreTests {
    func open() async throws -> (PostgresStateStore, String) {
        (try await PostgresStateStore.open(try testServerURL()), "p-\(UUID().uuidString.prefix(8))")
    }

    @Test func anOpenedStoreKeepsWhatItsKindDeclares() async throws {
        let (store, _) = try await open()
        #expect(store.features == PostgresStateStore.backend.features)
        #expect(PostgresStateStore.backend.handles(try testServerURL()))
    }

    @Test func theStoreKeepsTheDedupeContract() async throws {
        let (store, p) = try await open()
        try await DedupeStoreConformance(store: store, pipeline: p).run()
    }

    /// Keys an earlier version stored as text are hashed into runs when the pipeline first
    /// opens dedupe; a worker opening it at the same moment gets the same seed.
    @Test func textKeysOfAnEarlierVersionAreConverted() async throws {
        let (store, p) = try await open()
        try await store.pool.withSession { s in
            try s.query(
                "INSERT INTO sluice.dedupe_keys(pipeline, key, seen_at) VALUES ($1, 'v1:1', 1000), ($1, 'v1:2', 1000), ($1, 's1:x', 2000)", [p])
        }
        async let a = store.dedupeSeed(pipeline: p)
        async let b = store.dedupeSeed(pipeline: p)
        let (seedA, seedB) = try await (a, b)
        #expect(seedA == seedB)
        #expect(
            try await store.seenKeys(pipeline: p, keys: ["v1:1", "v1:2", "s1:x", "v1:3"], since: Date(timeIntervalSince1970: 0)) == ["v1:1", "v1:2", "s1:x"])
        #expect(try await store.seenKeys(pipeline: p, keys: ["v1:1", "s1:x"], since: Date(timeIntervalSince1970: 1500)) == ["s1:x"])
        #expect(try await store.dedupeLastRun(pipeline: p) == 2)
        let left = try await store.pool.withSession { s in try s.query("SELECT count(*) FROM sluice.dedupe_keys WHERE pipeline = $1", [p]).string(0, 0) }
        #expect(left == "0")
    }

    @Test func commitsAreAtomicWithHistoryLettersKeysAndIntents() async throws {
        let (store, p) = try await open()
        for i in 1...5 {
            var c = StateCommit(pipeline: p)
            c.checkpoint = ["a.csv": "{\"offset\":\(i)}", "b": "x\(i)"]
            try await store.commit(c)
        }
        #expect(try await store.checkpoint(pipeline: p).partitions == ["a.csv": "{\"offset\":5}", "b": "x5"])
        #expect(try await store.checkpointHistory(pipeline: p, limit: 100).count == 10)
        var c = StateCommit(pipeline: p, now: Date(timeIntervalSince1970: 1000))
        c.deadLetters = [DeadLetter(stage: "decode", errorKind: "malformed_row", message: "bad \"quoted\"", location: "f.csv:3", raw: [0xFF, 0x00, 0x41])]
        c.dedupeKeys = ["a", "b", "with \"quote\" and \\ backslash", "a"]
        c.fileIntents = [FileIntent(tempPath: "/t/.a.tmp", finalPath: "/t/a", records: 3, bytes: 10)]
        try await store.commit(c)
        try await store.commit(c)
        let letters = try await store.deadLetters(pipeline: p, limit: 10)
        #expect(letters.count == 1 && letters[0].letter.raw == [0xFF, 0x00, 0x41] && letters[0].letter.attempts == 2)
        #expect(try await store.deadLetter(id: letters[0].id)?.letter.message == "bad \"quoted\"")
        #expect(try await store.deadLetterCount(pipeline: p) == 1)
        #expect(
            try await store.seenKeys(pipeline: p, keys: ["a", "with \"quote\" and \\ backslash", "c"], since: Date(timeIntervalSince1970: 900))
                == ["a", "with \"quote\" and \\ backslash"])
        #expect(try await store.seenKeys(pipeline: p, keys: ["a"], since: Date(timeIntervalSince1970: 1001)).isEmpty)
        // The commit was applied twice: its three keys are stored twice (in two runs).
        #expect(try await store.sweepKeys(pipeline: p, before: Date(timeIntervalSince1970: 1001)) == 6)
        #expect(try await store.pendingFileIntents(pipeline: p).map(\.intent.finalPath) == ["/t/a", "/t/a"])
        try await store.resolveFileIntents(pipeline: p, finalPaths: ["/t/a"])
        #expect(try await store.pendingFileIntents(pipeline: p).isEmpty)
        let run = try await store.startRun(pipeline: p, at: Date())
        var totals = RunTotals()
        totals.recordsIn = 7
        try await store.finishRun(id: run, status: .succeeded, totals: totals, message: "ok", at: Date())
        #expect(try await store.runs(pipeline: p, limit: 5).first?.recordsIn == 7)
        try await store.reset(pipeline: p)
        #expect(try await store.checkpoint(pipeline: p).partitions.isEmpty)
        #expect(try await store.deadLetterCount(pipeline: p) == 1, "dead letters survive a reset")
    }

    /// Workers committing the same dedupe key at once: exactly one commit lands, whole; the
    /// others are refused whole (their checkpoint and other keys are not stored either).
    @Test func aKeyCommittedByAnotherWorkerRefusesTheWholeCommit() async throws {
        let (store, p) = try await open()
        let other = try await PostgresStateStore.open(try testServerURL())
        let now = Date()
        func commit(_ i: Int) -> StateCommit {
            var c = StateCommit(pipeline: p, now: now.addingTimeInterval(Double(i) / 1000))
            c.checkpoint = ["w\(i)": "\(i)"]
            c.dedupeKeys = ["shared-\(i % 2 == 0 ? "a" : "b")", "shared", "own-\(i)"]
            c.dedupeSince = now.addingTimeInterval(-3600)
            return c
        }
        let outcomes = try await withThrowingTaskGroup(of: (Int, SluiceError?).self) { group in
            for i in 0..<10 {
                group.addTask {
                    do {
                        try await (i % 2 == 0 ? store : other).commit(commit(i))
                        return (i, nil)
                    } catch let error as SluiceError {
                        return (i, error)
                    }
                }
            }
            return try await group.reduce(into: [Int: SluiceError?]()) { $0[$1.0] = $1.1 }
        }
        let landed = outcomes.filter { $0.value == nil }.map(\.key)
        #expect(landed.count == 1, "\(outcomes)")
        #expect(outcomes.values.compactMap { $0 }.allSatisfy { $0.code == .conflict && $0.message.contains("another worker") })
        let winner = try #require(landed.first)
        #expect(try await store.checkpoint(pipeline: p).partitions == ["w\(winner)": "\(winner)"])
        let all = ["shared", "shared-a", "shared-b"] + (0..<10).map { "own-\($0)" }
        #expect(
            try await store.seenKeys(pipeline: p, keys: all, since: now.addingTimeInterval(-60))
                == ["shared", "shared-\(winner % 2 == 0 ? "a" : "b")", "own-\(winner)"])
        // The winner's retry (its reply was lost) is not a conflict with itself.
        try await other.commit(commit(winner))
        // A key older than the TTL is taken over; without `dedupeSince` keys are stored as before.
        var later = StateCommit(pipeline: p, now: now.addingTimeInterval(7200))
        later.dedupeKeys = ["shared", "new"]
        later.dedupeSince = now.addingTimeInterval(3600)
        try await store.commit(later)
        var replay = StateCommit(pipeline: p, now: now.addingTimeInterval(7300))
        replay.dedupeKeys = ["shared"]
        try await store.commit(replay)
        #expect(try await store.seenKeys(pipeline: p, keys: ["shared", "new"], since: now.addingTimeInterval(7250)) == ["shared"])
    }

    @Test func aScheduledRunIsClaimedOnceAcrossWorkers() async throws {
        let (store, p) = try await open()
        let other = try await PostgresStateStore.open(try testServerURL())
        let slot = Date(timeIntervalSince1970: 1_800_000_000)
        let claims = try await withThrowingTaskGroup(of: Bool.self) { group in
            for i in 0..<10 { group.addTask { try await (i % 2 == 0 ? store : other).claimScheduledRun(pipeline: p, slot: slot) } }
            return try await group.reduce(into: [Bool]()) { $0.append($1) }
        }
        #expect(claims.filter { $0 }.count == 1)
        // The next slot waits while the first run is unfinished (runs never overlap)…
        #expect(try await other.claimScheduledRun(pipeline: p, slot: slot.addingTimeInterval(300)) == false)
        // …and is free once it finished.
        try await store.finishScheduledRun(pipeline: p, slot: slot)
        #expect(try await other.claimScheduledRun(pipeline: p, slot: slot.addingTimeInterval(600)))
    }

    @Test func registryOnPostgresIsAtomicAcrossWorkers() async throws {
        let (store, subject) = try await open()
        let other = try await PostgresStateStore.open(try testServerURL())
        let base = #"{"type":"sluice","fields":[{"name":"a","type":"int64"}]}"#
        _ = try await SchemaRegistry(store: store).register(subject: subject, text: base, format: .sluice)
        let same = #"{"type":"sluice","fields":[{"name":"a","type":"int64"},{"name":"b","type":"string"}]}"#
        let registries = [SchemaRegistry(store: store), SchemaRegistry(store: other)]
        let ids = try await withThrowingTaskGroup(of: Int64.self) { group in
            for i in 0..<12 { group.addTask { try await registries[i % 2].register(subject: subject, text: same, format: .sluice).id } }
            return try await group.reduce(into: Set<Int64>()) { $0.insert($1) }
        }
        #expect(ids.count == 1)
        #expect(try await store.registryVersions(subject: subject, includeDeleted: false).count == 2)
        try await store.registrySetCompatibility(subject: subject, mode: .full)
        #expect(try await other.registryCompatibility(subject: subject) == .full)
        try await store.recordDrift(
            SchemaDriftEvent(
                pipeline: "x", subject: subject, fromVersion: 1, toVersion: 2, kinds: ["added_column"],
                diff: "+ b: string", action: "registered"))
        #expect(try await other.driftEvents(subject: subject, limit: 5).first?.diff == "+ b: string")
        try await store.registrySoftDelete(subject: subject, version: 1)
        #expect(try await store.registryVersions(subject: subject, includeDeleted: false).map(\.version) == [2])
        try await store.registryPurge(subject: subject, version: nil)
        #expect(try await store.registrySubjects(includeDeleted: true).contains(subject) == false)
    }

    @Test func registryModesAndSchemaReferencesOnPostgres() async throws {
        let (store, subject) = try await open()
        let other = try await PostgresStateStore.open(try testServerURL())
        let registry = SchemaRegistry(store: store)
        // A field of its own: the schema (and its id) is this test's alone on the shared server.
        let field = subject.replacingOccurrences(of: "-", with: "_")
        let text = #"{"type":"sluice","fields":[{"name":"\#(field)","type":"int64"}]}"#
        let id = try await registry.register(subject: subject, text: text, format: .sluice).id
        #expect(try await other.registryVersions(schemaID: id).map(\.subject) == [subject])
        try await store.registrySetMode(subject: subject, mode: .readOnly)
        #expect(try await other.registryMode(subject: subject) == .readOnly)
        let wider = #"{"type":"sluice","fields":[{"name":"\#(field)","type":"int64"},{"name":"b","type":"string"}]}"#
        await #expect(throws: RegistryError.self) { try await SchemaRegistry(store: other).register(subject: subject, text: wider, format: .sluice) }
        #expect(try await registry.deleteMode(subject: subject) == .readOnly)
        #expect(try await store.registryMode(subject: subject) == nil)
        try await store.registrySoftDelete(subject: subject, version: nil)
        #expect(try await registry.schema(id: id).text == text, "a soft-deleted version still refers to the id")
        try await store.registryPurge(subject: subject, version: nil)
        await #expect(throws: RegistryError.self) { try await registry.schema(id: id) }
    }
}

@Suite struct PostgresAlertHistoryTests {
    @Test func alertsAndHourlyVolumeBehaveAsEveryStoreMust() async throws {
        try await AlertHistoryConformance.run(try await PostgresStateStore.open(try testServerURL()), prefix: "p-\(UUID().uuidString.prefix(8))")
        try await UsageConformance.run(try await PostgresStateStore.open(try testServerURL()), prefix: "p-\(UUID().uuidString.prefix(8))")
    }
}

@Suite struct PostgresDeadLetterAdminTests {
    @Test func filtersStatsRetentionAndDropBehaveAsEveryStoreMust() async throws {
        try await DeadLetterAdminConformance.run(try await PostgresStateStore.open(try testServerURL()), prefix: "p-\(UUID().uuidString.prefix(8))")
    }
}
