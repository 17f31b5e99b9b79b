import Foundation
import SluiceCore
import Synchronization

/// A ``StateStore`` in memory, for tests of the runtime and of connectors.
public final class MemoryStateStore: StateStore {
    private let claims = Mutex<Set<String>>([])
    /// None: the runtime's tests need neither.
    public var pushQueue: (any PushQueueStore)? { nil }
    public var schemaRegistry: (any SchemaRegistryStore)? { nil }
    struct State {
        var checkpoints: [String: [String: String]] = [:]
        var history: [String: [CheckpointEntry]] = [:]
        var intents: [(id: Int64, pipeline: String, intent: FileIntent, resolved: Bool)] = []
        var dedupe: [String: (seed: DedupeSeed, lastRun: Int64, rows: [DedupeRunRow])] = [:]
        var dedupeFilters: [String: DedupeFilterSnapshot] = [:]
        var letters: [StoredDeadLetter] = []
        var runs: [RunRecord] = []
        var nextID: Int64 = 1
        var commits = 0
    }

    private let state = Mutex(State())
    let alertHistory = MemoryAlertHistory()
    let usageRecord = MemoryUsage()
    /// When set, the next `commit` throws this error once.
    public let failNextCommit = Mutex<(any Error)?>(nil)
    /// When set, this commit is applied just before the next one, as another worker sharing
    /// the store would commit in between.
    public let interleaveBeforeNextCommit = Mutex<StateCommit?>(nil)

    public init() {}

    public var commitCount: Int { state.withLock { $0.commits } }

    public func checkpoint(pipeline: String) async throws -> Checkpoint {
        state.withLock { Checkpoint($0.checkpoints[pipeline] ?? [:]) }
    }

    public func commit(_ commit: StateCommit) async throws {
        if let error = failNextCommit.withLock({ $0.take() }) { throw error }
        if let other = interleaveBeforeNextCommit.withLock({ $0.take() }) { try await self.commit(other) }
        try state.withLock { s in
            let hashes = DedupeRows.hashes(of: commit, seed: Self.seed(&s, commit.owner))
            if let since = commit.dedupeSince {
                // As the SQL stores: after a run looked up through, other writers' runs only;
                // without one, every run but this very commit's earlier attempt.
                let through = commit.dedupeCheckedThrough
                let rows = s.dedupe[commit.owner]!.rows.filter {
                    through == nil || ($0.run > through! && $0.writer != (commit.dedupeWriter ?? -1))
                }
                let refused = DedupeRows.found(
                    hashes, in: rows, since: since.timeIntervalSince1970, excludingSeenAt: through == nil ? commit.now.timeIntervalSince1970 : nil)
                if !refused.isEmpty { throw commit.conflict(keys: refused.sorted()) }
            }
            // Checked before anything changes: the commit is all or nothing.
            if let resolved = commit.resolvedDeadLetters {
                let ids = Set(resolved)
                let owner = commit.owner
                let present = s.letters.filter { $0.pipeline == owner && ids.contains($0.id) }.count
                if present != ids.count { throw StateCommit.replayConflict(ids.count - present) }
            }
            s.commits += 1
            for (p, v) in commit.checkpoint {
                s.checkpoints[commit.pipeline, default: [:]][p] = v
                s.history[commit.pipeline, default: []].insert(CheckpointEntry(partition: p, value: v, committedAt: commit.now), at: 0)
            }
            let owner = commit.owner
            if let resolved = commit.resolvedDeadLetters {
                let ids = Set(resolved)
                s.letters.removeAll { $0.pipeline == owner && ids.contains($0.id) }
            }
            for l in commit.deadLetters {
                if let i = s.letters.firstIndex(where: { $0.pipeline == owner && $0.letter.location == l.location }) {
                    let attempts = s.letters[i].letter.attempts + l.attempts
                    s.letters[i].letter = l
                    s.letters[i].letter.attempts = attempts
                    s.letters[i].lastSeen = commit.now
                } else {
                    s.letters.append(StoredDeadLetter(id: s.nextID, pipeline: owner, letter: l, firstSeen: commit.now, lastSeen: commit.now))
                    s.nextID += 1
                }
            }
            if !hashes.isEmpty {
                s.dedupe[commit.owner]!.lastRun += 1
                s.dedupe[commit.owner]!.rows += DedupeRunRow.rows(
                    run: s.dedupe[commit.owner]!.lastRun, seenAt: commit.now.timeIntervalSince1970, hashes: hashes, writer: commit.dedupeWriter ?? 0)
            }
            for i in commit.fileIntents {
                s.intents.append((s.nextID, commit.pipeline, i, false))
                s.nextID += 1
            }
        }
    }

    public func checkpointHistory(pipeline: String, limit: Int) async throws -> [CheckpointEntry] {
        state.withLock { Array(($0.history[pipeline] ?? []).prefix(limit)) }
    }

    public func pendingFileIntents(pipeline: String) async throws -> [StoredFileIntent] {
        state.withLock { $0.intents.filter { $0.pipeline == pipeline && !$0.resolved }.map { StoredFileIntent(id: $0.id, intent: $0.intent) } }
    }

    public func resolveFileIntents(pipeline: String, finalPaths: [String]) async throws {
        state.withLock { s in
            for i in s.intents.indices where s.intents[i].pipeline == pipeline && finalPaths.contains(s.intents[i].intent.finalPath) {
                s.intents[i].resolved = true
            }
        }
    }

    static func seed(_ s: inout State, _ pipeline: String) -> DedupeSeed {
        if let entry = s.dedupe[pipeline] { return entry.seed }
        let seed = DedupeSeed.random()
        s.dedupe[pipeline] = (seed, 0, [])
        return seed
    }

    public func dedupeSeed(pipeline: String) async throws -> DedupeSeed {
        state.withLock { Self.seed(&$0, pipeline) }
    }

    public func dedupeKeyCount(pipeline: String, since: Date) async throws -> Int {
        state.withLock { s in (s.dedupe[pipeline]?.rows ?? []).filter { $0.seenAt >= since.timeIntervalSince1970 }.reduce(0) { $0 + $1.count } }
    }

    public func dedupeLastRun(pipeline: String) async throws -> Int64 {
        state.withLock { $0.dedupe[pipeline]?.lastRun ?? 0 }
    }

    public func dedupeFilter(pipeline: String) async throws -> DedupeFilterSnapshot? {
        state.withLock { $0.dedupeFilters[pipeline] }
    }

    public func saveDedupeFilter(pipeline: String, _ snapshot: DedupeFilterSnapshot) async throws {
        state.withLock { $0.dedupeFilters[pipeline] = snapshot }
    }

    public func dedupeRuns(
        pipeline: String, after cursor: DedupeRunCursor, through: Int64, since: Date, excludingWriter: Int64?, limit: Int
    ) async throws -> [DedupeRunRow] {
        state.withLock { s in
            let rows = (s.dedupe[pipeline]?.rows ?? []).filter {
                DedupeRunCursor(run: $0.run, bucket: $0.bucket) > cursor && $0.run <= through && $0.seenAt >= since.timeIntervalSince1970
                    && (excludingWriter == nil || $0.writer != excludingWriter)
            }
            return Array(rows.sorted { ($0.run, $0.bucket) < ($1.run, $1.bucket) }.prefix(limit))
        }
    }

    public func seenHashes(pipeline: String, hashes: [DedupeHash], since: Date, runs: ClosedRange<Int64>) async throws -> Set<DedupeHash> {
        state.withLock { s in
            DedupeRows.found(hashes, in: (s.dedupe[pipeline]?.rows ?? []).filter { runs.contains($0.run) }, since: since.timeIntervalSince1970)
        }
    }

    public func sweepKeys(pipeline: String, before: Date) async throws -> Int {
        state.withLock { s in
            guard let rows = s.dedupe[pipeline]?.rows else { return 0 }
            let old = rows.filter { $0.seenAt < before.timeIntervalSince1970 }
            s.dedupe[pipeline]!.rows = rows.filter { $0.seenAt >= before.timeIntervalSince1970 }
            return old.reduce(0) { $0 + $1.count }
        }
    }

    public func deadLetters(pipeline: String?, limit: Int) async throws -> [StoredDeadLetter] {
        state.withLock { Array($0.letters.filter { pipeline == nil || $0.pipeline == pipeline }.prefix(limit)) }
    }

    public func deadLetter(id: Int64) async throws -> StoredDeadLetter? {
        state.withLock { $0.letters.first { $0.id == id } }
    }

    public func deadLetterCount(pipeline: String?) async throws -> Int {
        state.withLock { $0.letters.filter { pipeline == nil || $0.pipeline == pipeline }.count }
    }

    /// Removes the dead letters `matching` says; returns how many.
    func removeDeadLetters(_ matching: (StoredDeadLetter) -> Bool) -> Int {
        state.withLock { s in
            let before = s.letters.count
            s.letters.removeAll(where: matching)
            return before - s.letters.count
        }
    }

    public func deadLetterSummary(pipeline: String) async throws -> (count: Int, oldest: Date?) {
        state.withLock { s in
            let mine = s.letters.filter { $0.pipeline == pipeline }
            return (mine.count, mine.map(\.firstSeen).min())
        }
    }

    public func startRun(pipeline: String, at: Date) async throws -> Int64 {
        state.withLock { s in
            let id = s.nextID
            s.nextID += 1
            s.runs.append(
                RunRecord(
                    id: id, pipeline: pipeline, startedAt: at, endedAt: nil, status: .running,
                    recordsIn: 0, recordsOut: 0, deadLettered: 0, duplicates: 0, message: nil))
            return id
        }
    }

    public func finishRun(id: Int64, status: RunRecord.Status, totals: RunTotals, message: String?, at: Date) async throws {
        state.withLock { s in
            guard let i = s.runs.firstIndex(where: { $0.id == id }) else { return }
            s.runs[i].endedAt = at
            s.runs[i].status = status
            s.runs[i].recordsIn = totals.recordsIn
            s.runs[i].recordsOut = totals.recordsOut
            s.runs[i].deadLettered = totals.deadLettered
            s.runs[i].duplicates = totals.duplicates
            s.runs[i].message = message
        }
    }

    public func runs(pipeline: String?, limit: Int) async throws -> [RunRecord] {
        state.withLock { Array($0.runs.filter { pipeline == nil || $0.pipeline == pipeline }.reversed().prefix(limit)) }
    }

    public func reset(pipeline: String) async throws {
        state.withLock { s in
            s.checkpoints[pipeline] = nil
            s.history[pipeline] = nil
            s.dedupe[pipeline]?.rows = []  // the seed and the run numbers stay
            s.dedupeFilters[pipeline] = nil
            s.intents.removeAll { $0.pipeline == pipeline }
        }
    }

    public func claimScheduledRun(pipeline: String, slot: Date, lease: TimeInterval) async throws -> Bool {
        claims.withLock { $0.insert("\(pipeline)@\(slot.timeIntervalSince1970)").inserted }
    }

    public func renewScheduledRun(pipeline: String, slot: Date) async throws {}
    public func finishScheduledRun(pipeline: String, slot: Date) async throws {}
}
