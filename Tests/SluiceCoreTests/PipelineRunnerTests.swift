import Logging
import SluiceCore
import SluiceTesting
import Synchronization
import Testing

@Suite struct PipelineRunnerTests {
    func plan(_ source: any Source, _ sink: any Sink, settings: PipelineSettings = PipelineSettings()) -> PipelinePlan {
        PipelinePlan(name: "t", source: source, sink: sink, settings: settings)
    }

    var fastRetry: RetryPolicy { RetryPolicy(maxAttempts: 3, baseDelay: .milliseconds(1), maxDelay: .milliseconds(5)) }

    @Test func movesEveryRecordAndCheckpointsTheLastBatch() async throws {
        let store = MemoryStateStore()
        let sink = MemorySink()
        let runner = PipelineRunner(plan: plan(MemorySource(batchCount: 5, rows: 100), sink), store: store, logger: Logger(label: "t"))
        let totals = try await runner.run()
        #expect(totals.recordsIn == 500 && totals.recordsOut == 500)
        #expect(sink.committedIDs == (0..<500).map(Int64.init))
        #expect(try await store.checkpoint(pipeline: "t")[""] == "5")
        #expect(try await store.runs(pipeline: "t", limit: 1).first?.status == .succeeded)
    }

    @Test func resumesAfterTheCheckpoint() async throws {
        let store = MemoryStateStore()
        var commit = StateCommit(pipeline: "t")
        commit.checkpoint = ["": "3"]
        try await store.commit(commit)
        let sink = MemorySink()
        try await PipelineRunner(plan: plan(MemorySource(batchCount: 5, rows: 10), sink), store: store, logger: Logger(label: "t")).run()
        #expect(sink.committedIDs == (30..<50).map(Int64.init))
    }

    @Test func retryableBatchFailuresAreRetriedNotDeadLettered() async throws {
        var behaviour = MemorySink.Behaviour()
        behaviour.failWrites = 2
        let sink = MemorySink(behaviour: behaviour)
        let store = MemoryStateStore()
        var settings = PipelineSettings()
        settings.retry = fastRetry
        try await PipelineRunner(plan: plan(MemorySource(batchCount: 1, rows: 10), sink, settings: settings), store: store, logger: Logger(label: "t")).run()
        #expect(sink.committedIDs.count == 10)
        #expect(try await store.deadLetterCount(pipeline: "t") == 0)
        #expect(sink.writes == 3)
    }

    @Test func nonRetryableBatchFailureStopsWithoutCheckpoint() async throws {
        var behaviour = MemorySink.Behaviour()
        behaviour.failWrites = 1
        behaviour.failure = SluiceError(.authentication, "bad password")
        let store = MemoryStateStore()
        let runner = PipelineRunner(
            plan: plan(MemorySource(batchCount: 2, rows: 10), MemorySink(behaviour: behaviour)), store: store, logger: Logger(label: "t"))
        await #expect(throws: SluiceError.self) { try await runner.run() }
        #expect(try await store.checkpoint(pipeline: "t")[""] == nil)
        #expect(try await store.runs(pipeline: "t", limit: 1).first?.status == .failed)
    }

    @Test func refusedRowsGoToTheDeadLetterQueueAndTheRestFlows() async throws {
        var behaviour = MemorySink.Behaviour()
        behaviour.rejectIDs = [3, 17]
        let sink = MemorySink(behaviour: behaviour)
        let store = MemoryStateStore()
        var settings = PipelineSettings()
        settings.retry = fastRetry
        let totals = try await PipelineRunner(
            plan: plan(MemorySource(batchCount: 2, rows: 10), sink, settings: settings), store: store, logger: Logger(label: "t")
        ).run()
        #expect(sink.committedIDs == (0..<20).filter { $0 != 3 && $0 != 17 }.map(Int64.init))
        #expect(totals.deadLettered == 2)
        let letters = try await store.deadLetters(pipeline: "t", limit: 10)
        #expect(letters.count == 2)
        #expect(letters.allSatisfy { $0.letter.stage == "sink" && $0.letter.errorKind == "constraint" })
        #expect(String(decoding: letters[0].letter.raw, as: UTF8.self) == #"{"id":3}"#)
        #expect(letters.map(\.letter.location) == ["1 row 3", "2 row 7"], "source position and row: unique across runs")
        #expect(try await store.checkpoint(pipeline: "t")[""] == "2")
    }

    @Test func retryableRowFailuresAreRetriedThenDeadLettered() async throws {
        var behaviour = MemorySink.Behaviour()
        behaviour.rejectIDs = [5]
        behaviour.rejectError = SluiceError(.timeout, "row timed out")
        let sink = MemorySink(behaviour: behaviour)
        let store = MemoryStateStore()
        var settings = PipelineSettings()
        settings.retry = fastRetry
        try await PipelineRunner(plan: plan(MemorySource(batchCount: 1, rows: 10), sink, settings: settings), store: store, logger: Logger(label: "t")).run()
        let letters = try await store.deadLetters(pipeline: "t", limit: 10)
        #expect(letters.count == 1)
        #expect(letters.first?.letter.attempts == 3)
        #expect(sink.writes == 3)
    }

    @Test func dedupeDropsRepeatsWithinTTLAcrossRuns() async throws {
        let store = MemoryStateStore()
        var settings = PipelineSettings()
        settings.dedupe = DedupeSettings(key: ["id"], ttl: .seconds(3600))
        func batch(_ ids: [Int64], _ pos: String) -> SourceBatch {
            var b = ColumnBuilder(type: .int64)
            for id in ids { b.append(id) }
            return SourceBatch(
                records: RecordBatch(schema: Schema([Field("id", .int64)]), columns: [b.finish()]),
                position: SourcePosition(partition: "", value: pos), inputBytes: 0)
        }
        let first = MemorySink()
        let totals = try await PipelineRunner(
            plan: plan(MemorySource(batches: [batch([1, 2, 2, 3], "1"), batch([3, 4], "2")]), first, settings: settings),
            store: store, logger: Logger(label: "t")
        ).run()
        #expect(first.committedIDs == [1, 2, 3, 4])
        #expect(totals.duplicates == 2)
        try await store.reset(pipeline: "t")  // also forgets keys
        let second = MemorySink()
        try await PipelineRunner(plan: plan(MemorySource(batches: [batch([4, 5], "1")]), second, settings: settings), store: store, logger: Logger(label: "t"))
            .run()
        #expect(second.committedIDs == [4, 5])
    }

    /// Another worker sharing the state store commits one of this commit's records first (a
    /// queue handed it to both): the state store refuses the commit, nothing of it is published,
    /// and the run starts over from the checkpoint, now dropping that record as a duplicate.
    @Test func aCommitRefusedForAnotherWorkersKeyIsDiscardedAndReadAgain() async throws {
        let store = MemoryStateStore()
        var settings = PipelineSettings()
        settings.dedupe = DedupeSettings(key: ["id"], ttl: .seconds(3600))
        var other = StateCommit(pipeline: "t")
        other.dedupeKeys = ["v1:2"]  // the key of id 2 (DedupeKey.encode)
        store.interleaveBeforeNextCommit.withLock { $0 = other }
        let sink = MemorySink()
        let totals = try await PipelineRunner(
            plan: plan(MemorySource(batchCount: 2, rows: 3), sink, settings: settings),
            store: store, logger: Logger(label: "t")
        ).run()
        #expect(sink.committedIDs == [0, 1, 3, 4, 5])
        #expect(totals.duplicates == 1 && totals.recordsOut == 5)
        #expect(try await store.checkpoint(pipeline: "t")[""] == "2")
        #expect(try await store.runs(pipeline: "t", limit: 1).first?.status == .succeeded)
    }

    @Test func decodeRejectsAreCommittedWithTheCheckpoint() async throws {
        let store = MemoryStateStore()
        let letter = DeadLetter(stage: "decode", errorKind: "malformed_row", message: "bad", location: "f.csv:3", raw: Array("x,y".utf8))
        let source = MemorySource(batches: [
            SourceBatch(
                records: RecordBatch.empty(Schema([Field("id", .int64)])), rejects: [letter],
                position: SourcePosition(partition: "f.csv", value: "9"), inputBytes: 3)
        ])
        let totals = try await PipelineRunner(plan: plan(source, MemorySink()), store: store, logger: Logger(label: "t")).run()
        #expect(totals.deadLettered == 1)
        #expect(try await store.deadLetters(pipeline: "t", limit: 5).first?.letter.location == "f.csv:3")
    }

    /// A source whose start fails `failures` times with `error`, then opens as `inner` does.
    struct FlakyStartSource: Source {
        let inner: MemorySource
        let failures: Int
        let error: SluiceError
        let attempts = Attempts()
        var isContinuous: Bool { false }

        final class Attempts: Sendable {
            let count = Mutex(0)
            var value: Int { count.withLock { $0 } }
        }

        func makeReader(resumingFrom checkpoint: Checkpoint, context: SourceContext) async throws -> any SourceReader {
            let attempt = attempts.count.withLock {
                $0 += 1; return $0
            }
            if attempt <= failures { throw error }
            return try await inner.makeReader(resumingFrom: checkpoint, context: context)
        }
    }

    @Test func aRetryableFailureAtTheSourcesStartIsRetriedWithBackoff() async throws {
        var settings = PipelineSettings()
        settings.retry = fastRetry
        let source = FlakyStartSource(
            inner: MemorySource(batchCount: 2, rows: 10), failures: 2,
            error: SluiceError(.connection, "the connection was lost", retryable: true))
        let sink = MemorySink()
        let totals = try await PipelineRunner(plan: plan(source, sink, settings: settings), store: MemoryStateStore(), logger: Logger(label: "t")).run()
        #expect(source.attempts.value == 3)
        #expect(totals.recordsOut == 20 && sink.committedIDs == (0..<20).map(Int64.init))
    }

    @Test func aFiniteSourceThatCannotStartStopsAfterMaxAttemptsAndANonRetryableOneAtOnce() async throws {
        var settings = PipelineSettings()
        settings.retry = fastRetry
        let down = FlakyStartSource(
            inner: MemorySource(batchCount: 1, rows: 1), failures: 100,
            error: SluiceError(.connection, "cannot reach the server", retryable: true))
        await #expect(throws: SluiceError.self) {
            try await PipelineRunner(plan: plan(down, MemorySink(), settings: settings), store: MemoryStateStore(), logger: Logger(label: "t")).run()
        }
        #expect(down.attempts.value == fastRetry.maxAttempts)
        let refused = FlakyStartSource(
            inner: MemorySource(batchCount: 1, rows: 1), failures: 100,
            error: SluiceError(.authentication, "password authentication failed", retryable: false))
        await #expect(throws: SluiceError.self) {
            try await PipelineRunner(plan: plan(refused, MemorySink(), settings: settings), store: MemoryStateStore(), logger: Logger(label: "t")).run()
        }
        #expect(refused.attempts.value == 1)
    }
}

/// ``CommitRequest``: nothing changes until the request is made (the batch still waits for its
/// `max_latency`, the commit for the sink); once made, what the run holds is committed at once.
@Suite struct CommitRequestTests {
    /// Hands out one batch of ids 0..<10, then waits until cancelled (a quiet continuous source).
    struct OneThenQuietSource: Source {
        var isContinuous: Bool { true }
        func makeReader(resumingFrom checkpoint: Checkpoint, context: SourceContext) async throws -> any SourceReader { Reader() }
        final class Reader: SourceReader {
            var sent = false
            func next() async throws -> SourceBatch? {
                if !sent {
                    sent = true
                    return MemorySource(batchCount: 1, rows: 10).batches[0]
                }
                try? await Task.sleep(for: .seconds(3600))
                return nil
            }
        }
    }

    /// Counts writes and commits; asks for a commit only once an hour.
    final class RareCommitSink: Sink {
        let writes = Mutex(0)
        let commits = Mutex(0)
        func makeWriter(context: SinkContext) async throws -> any SinkWriter { Writer(sink: self) }
        final class Writer: SinkWriter {
            let sink: RareCommitSink
            init(sink: RareCommitSink) { self.sink = sink }
            var commitInterval: Duration { .seconds(3600) }
            func write(_ batch: RecordBatch) async throws -> [RowFailure] {
                sink.writes.withLock { $0 += 1 }
                return []
            }
            func prepareCommit(_ commit: inout StateCommit) async throws {}
            func finishCommit() async throws { sink.commits.withLock { $0 += 1 } }
        }
    }

    @Test func aRequestCommitsAtOnceAndNothingChangesBeforeIt() async throws {
        let store = MemoryStateStore()
        let sink = RareCommitSink()
        var settings = PipelineSettings()
        settings.batch.maxLatency = .seconds(3600)
        let request = CommitRequest()
        let runner = {
            var r = PipelineRunner(
                plan: PipelinePlan(name: "t", source: OneThenQuietSource(), sink: sink, settings: settings), store: store, logger: Logger(label: "t"))
            r.commitRequest = request
            return r
        }()
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await runner.run() }
            // Several of the request's polls pass: the batch is not due, so nothing is written.
            try await Task.sleep(for: .seconds(1))
            #expect(sink.writes.withLock { $0 } == 0, "the batch waits for its max_latency")
            request.request()
            let deadline = ContinuousClock.now + .seconds(60)
            while sink.commits.withLock({ $0 }) == 0, ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(20)) }
            #expect(sink.writes.withLock { $0 } == 1 && sink.commits.withLock { $0 } == 1)
            #expect(try await store.checkpoint(pipeline: "t")[""] == "1")
            group.cancelAll()
        }
    }
}
