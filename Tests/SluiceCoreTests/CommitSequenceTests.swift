import Foundation
@testable import SluiceCore
import Testing

/// The commit protocol's order, decided by ``CommitSequence`` alone: no store, sink or source.
@Suite struct CommitSequenceTests {
    func position(_ value: Int, _ partition: String = "a") -> SourcePosition {
        SourcePosition(partition: partition, value: String(value))
    }

    let letter = DeadLetter(stage: "decode", errorKind: "invalid_input", message: "bad", location: "a row 1", raw: [])

    @Test func nothingPendingIsNoCommitButAnEndingPassIs() throws {
        var commits = CommitSequence()
        #expect(commits.begin(pipeline: "p", extractComplete: false, dedupeTTL: nil, dedupeKeys: []) == nil)
        guard case let .prepare(commit)? = commits.begin(pipeline: "p", extractComplete: true, dedupeTTL: nil, dedupeKeys: []) else {
            Issue.record("an ending pass was not committed")
            return
        }
        #expect(commit.extractComplete && commit.isEmpty)
    }

    @Test func prepareApplyPublishAcknowledgeInThatOrder() throws {
        var commits = CommitSequence()
        let now = Date(timeIntervalSince1970: 1_000_000)
        let first = commits.accepted(position(10))
        _ = commits.accepted(position(20))
        commits.wrote(first, records: 7)
        commits.deadLettered([letter])
        #expect(commits.hasPending && commits.inFlight == 2)

        guard
            case var .prepare(commit)? = commits.begin(
                pipeline: "p", now: now, extractComplete: false,
                dedupeTTL: .seconds(60), dedupeKeys: [DedupeHash(high: 1, low: 2), DedupeHash(high: 3, low: 4)], dedupeCheckedThrough: 7)
        else {
            Issue.record("no prepare")
            return
        }
        #expect(commits.step == .preparing)
        #expect(commit.checkpoint == ["a": "10"])
        #expect(commit.records == 7 && commit.deadLetters.count == 1 && commit.dedupeHashes == [DedupeHash(high: 1, low: 2), DedupeHash(high: 3, low: 4)])
        #expect(commit.dedupeCheckedThrough == 7)
        #expect(commit.dedupeSince == now.addingTimeInterval(-60))

        // The sink adds its file intents; the store gets the commit the sink prepared.
        commit.fileIntents = [FileIntent(tempPath: "/t/x.tmp", finalPath: "/o/x", records: 7, bytes: 70)]
        guard case let .apply(applied) = commits.prepared(commit) else {
            Issue.record("no apply after prepare")
            return
        }
        #expect(applied.fileIntents.count == 1)
        guard case .publish = commits.applied() else {
            Issue.record("no publish after apply")
            return
        }
        guard case let .acknowledge(positions) = commits.published() else {
            Issue.record("no acknowledge after publish")
            return
        }
        #expect(positions == ["a": "10"])
        guard case let .done(done) = commits.acknowledged() else {
            Issue.record("not done after acknowledge")
            return
        }
        #expect(done.records == 7)
        #expect(!commits.hasPending && commits.step == .idle && commits.records == 0)
        #expect(commits.inFlight == 1, "the second batch is still in flight")
    }

    @Test func theCheckpointWaitsForEveryEarlierBatch() throws {
        var commits = CommitSequence()
        let a = commits.accepted(position(10))
        let b = commits.accepted(position(20))
        let c = commits.accepted(position(5, "g"))
        commits.wrote(b, records: 1)
        commits.wrote(c, records: 1)
        #expect(try complete(&commits).checkpoint.isEmpty, "batch a is not written yet")
        commits.wrote(a, records: 1)
        #expect(try complete(&commits).checkpoint == ["a": "20", "g": "5"])
    }

    @Test func aCommitOfDeadLettersOnlyHasNothingToAcknowledge() throws {
        var commits = CommitSequence()
        commits.deadLettered([letter, letter])
        guard case let .prepare(commit)? = commits.begin(pipeline: "p", extractComplete: false, dedupeTTL: .seconds(60), dedupeKeys: []) else {
            Issue.record("no prepare")
            return
        }
        #expect(commit.dedupeSince == nil, "no keys, nothing to check")
        _ = commits.prepared(commit)
        _ = commits.applied()
        guard case .done = commits.published() else {
            Issue.record("acknowledged an empty checkpoint")
            return
        }
    }

    @Test func aRefusedCommitIsAbortedNotPublishedAndDiscardsItsRecords() throws {
        var commits = CommitSequence()
        commits.wrote(commits.accepted(position(1)), records: 40)
        guard case let .prepare(commit)? = commits.begin(pipeline: "p", extractComplete: false, dedupeTTL: nil, dedupeKeys: []) else {
            Issue.record("no prepare")
            return
        }
        _ = commits.prepared(commit)
        guard case let .abort(discarded) = commits.refused() else {
            Issue.record("a refused commit was not aborted")
            return
        }
        #expect(discarded == 40)
        #expect(!commits.hasPending && commits.step == .idle)
    }

    /// Runs one whole commit; returns what was committed.
    func complete(_ commits: inout CommitSequence) throws -> StateCommit {
        guard case let .prepare(commit)? = commits.begin(pipeline: "p", extractComplete: false, dedupeTTL: nil, dedupeKeys: []) else {
            throw SluiceError(.internalError, "nothing to commit")
        }
        _ = commits.prepared(commit)
        _ = commits.applied()
        var action = commits.published()
        if case .acknowledge = action { action = commits.acknowledged() }
        guard case let .done(done) = action else { throw SluiceError(.internalError, "not done") }
        return done
    }
}
