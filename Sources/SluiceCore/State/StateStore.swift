import Foundation

/// A pending file intent as stored, with its id.
public struct StoredFileIntent: Sendable, Hashable {
    public var id: Int64
    public var intent: FileIntent

    public init(id: Int64, intent: FileIntent) {
        self.id = id
        self.intent = intent
    }
}

/// One saved checkpoint position, for history.
public struct CheckpointEntry: Sendable, Hashable {
    public var partition: String
    public var value: String
    public var committedAt: Date

    public init(partition: String, value: String, committedAt: Date) {
        self.partition = partition
        self.value = value
        self.committedAt = committedAt
    }
}

/// One run of one pipeline.
public struct RunRecord: Sendable, Hashable {
    public enum Status: String, Sendable { case running, succeeded, failed, stopped }
    public var id: Int64
    public var pipeline: String
    public var startedAt: Date
    public var endedAt: Date?
    public var status: Status
    public var recordsIn: Int
    public var recordsOut: Int
    public var deadLettered: Int
    public var duplicates: Int
    public var message: String?

    public init(
        id: Int64, pipeline: String, startedAt: Date, endedAt: Date?, status: Status,
        recordsIn: Int, recordsOut: Int, deadLettered: Int, duplicates: Int, message: String?
    ) {
        self.id = id
        self.pipeline = pipeline
        self.startedAt = startedAt
        self.endedAt = endedAt
        self.status = status
        self.recordsIn = recordsIn
        self.recordsOut = recordsOut
        self.deadLettered = deadLettered
        self.duplicates = duplicates
        self.message = message
    }
}

/// Totals of a finished run.
public struct RunTotals: Sendable, Hashable {
    public var recordsIn = 0
    public var recordsOut = 0
    public var deadLettered = 0
    public var duplicates = 0

    public init() {}
}

/// The commit protocol's state: checkpoints, and the file intents published after a commit.
///
/// Every method is safe to call from any task. ``commit(_:)`` is atomic: all of it or none.
public protocol CheckpointStore: Sendable {
    /// True when several workers (processes or machines) may share this store and run the
    /// same pipeline at once: recovery must then leave other workers' work in progress alone.
    var isShared: Bool { get }
    /// For a store that is not shared: takes, without waiting, a lock that only one process on
    /// this machine holds for `writer` at a time and that the kernel releases when the process
    /// ends (a `kill -9` too); nil when another holds it. The store keeps it until ``release``.
    /// A store that is shared, or has no such lock, returns a token that locks nothing.
    func lockWriter(_ writer: String) throws -> WriterLock?
    /// The committed source positions of `pipeline`.
    func checkpoint(pipeline: String) async throws -> Checkpoint
    /// Applies checkpoint, dead letters, dedupe keys and file intents in one transaction.
    func commit(_ commit: StateCommit) async throws
    /// Recent checkpoint positions, newest first.
    func checkpointHistory(pipeline: String, limit: Int) async throws -> [CheckpointEntry]

    /// File intents committed but not yet published (see ``SinkWriter``).
    func pendingFileIntents(pipeline: String) async throws -> [StoredFileIntent]
    /// Marks the intents of these final paths published.
    func resolveFileIntents(pipeline: String, finalPaths: [String]) async throws

    /// Forgets a pipeline's checkpoint, keys and intents (dead letters and run history stay).
    func reset(pipeline: String) async throws
}

/// Dedupe keys with the time they were accepted (written by ``CheckpointStore/commit(_:)``).
///
/// A store keeps each pipeline's keys as ``DedupeHash``es in rows of one bucket and one commit
/// (a run, numbered in commit order per pipeline), so a commit appends its keys in a few
/// rows and looking keys up reads only their buckets.
public protocol DedupeKeyStore: Sendable {
    /// The pipeline's key-hashing seed, made on its first use. Keys stored as text by a version
    /// before hashing are converted then, in the same transaction.
    func dedupeSeed(pipeline: String) async throws -> DedupeSeed
    /// How many keys of `pipeline` accepted at or after `since` are stored (to size a filter).
    func dedupeKeyCount(pipeline: String, since: Date) async throws -> Int
    /// The number of the pipeline's last committed run (0: none). Every run up to it is
    /// committed: runs are numbered in commit order.
    func dedupeLastRun(pipeline: String) async throws -> Int64
    /// Up to `limit` rows of `pipeline`'s keys after `cursor` and in runs up to `through`, in
    /// (run, bucket) order, skipping rows accepted before `since` and rows of commits by
    /// `excludingWriter` (``StateCommit/dedupeWriter``).
    func dedupeRuns(
        pipeline: String, after cursor: DedupeRunCursor, through: Int64, since: Date, excludingWriter: Int64?, limit: Int
    ) async throws -> [DedupeRunRow]
    /// Which of `hashes` were accepted for `pipeline` at or after `since`, in the runs `runs`
    /// (only their rows are read).
    func seenHashes(pipeline: String, hashes: [DedupeHash], since: Date, runs: ClosedRange<Int64>) async throws -> Set<DedupeHash>
    /// Deletes keys accepted before `before`; returns how many (a key two commits stored, as a
    /// retried commit does, counts twice).
    func sweepKeys(pipeline: String, before: Date) async throws -> Int
    /// The filter a deduplicator of `pipeline` saved last (nil: none), so a restart need not
    /// read every stored key.
    func dedupeFilter(pipeline: String) async throws -> DedupeFilterSnapshot?
    /// Saves a deduplicator's filter in place of the one saved before.
    func saveDedupeFilter(pipeline: String, _ snapshot: DedupeFilterSnapshot) async throws
}

extension DedupeKeyStore {
    /// Which of `hashes` were accepted for `pipeline` at or after `since`, in any run.
    public func seenHashes(pipeline: String, hashes: [DedupeHash], since: Date) async throws -> Set<DedupeHash> {
        try await seenHashes(pipeline: pipeline, hashes: hashes, since: since, runs: 0...Int64.max)
    }

    /// Which of `keys` (in ``StateCommit/dedupeKeys``' text form) were accepted for `pipeline`
    /// at or after `since`: hashed with the pipeline's seed and looked up.
    public func seenKeys(pipeline: String, keys: [String], since: Date) async throws -> Set<String> {
        let seed = try await dedupeSeed(pipeline: pipeline)
        var byHash: [DedupeHash: String] = [:]
        for key in keys { byHash[SipHash128.hash(text: key, seed: seed)] = key }
        let found = try await seenHashes(pipeline: pipeline, hashes: Array(byHash.keys), since: since)
        return Set(found.compactMap { byHash[$0] })
    }
}

/// The dead-letter queue (written by ``CheckpointStore/commit(_:)``), for review.
public protocol DeadLetterStore: Sendable {
    func deadLetters(pipeline: String?, limit: Int) async throws -> [StoredDeadLetter]
    func deadLetter(id: Int64) async throws -> StoredDeadLetter?
    func deadLetterCount(pipeline: String?) async throws -> Int
    /// How many dead letters `pipeline` has, and when the oldest was first seen.
    func deadLetterSummary(pipeline: String) async throws -> (count: Int, oldest: Date?)
}

/// The history of runs and their totals.
public protocol RunHistoryStore: Sendable {
    func startRun(pipeline: String, at: Date) async throws -> Int64
    func finishRun(id: Int64, status: RunRecord.Status, totals: RunTotals, message: String?, at: Date) async throws
    func runs(pipeline: String?, limit: Int) async throws -> [RunRecord]
}

/// Claims of scheduled runs, so workers sharing a store never run one slot twice.
public protocol ScheduleClaimStore: Sendable {
    /// Claims the scheduled run of `pipeline` due at `slot`. False when another worker sharing
    /// this state store claimed that slot first, or is still running an earlier one (its claim
    /// is unfinished and was renewed within `lease`, ``scheduleLease`` by default): the slot is
    /// then skipped, so runs never overlap and none runs twice.
    func claimScheduledRun(pipeline: String, slot: Date, lease: TimeInterval) async throws -> Bool
    /// Keeps a claimed run's lease alive (called while its pass reads).
    func renewScheduledRun(pipeline: String, slot: Date) async throws
    /// Marks a claimed run finished (its pass is committed).
    func finishScheduledRun(pipeline: String, slot: Date) async throws
}

/// What a state store keeps beyond the pipeline state every store keeps. A component that needs
/// one declares it (``ComponentSpec/requiredState``), so a file that pairs it with a store
/// without it is refused when it is loaded, before any data moves.
public enum StateFeature: String, Sendable, Hashable, CaseIterable {
    /// The durable queue of the HTTP push endpoint (``PushQueueStore``).
    case pushQueue = "push queue"
    /// Storage of the schema registry (``SchemaRegistryStore``).
    case schemaRegistry = "schema registry"
}

/// Durable state of every pipeline (DESIGN.md §4). SQLite on one machine, PostgreSQL when shared.
///
/// Every store keeps the pipeline state (the protocols it refines); the push queue and the
/// schema registry are features a store may have, reached through ``pushQueue`` and
/// ``schemaRegistry`` (never by casting the store).
public protocol StateStore: CheckpointStore, DedupeKeyStore, DeadLetterStore, RunHistoryStore, ScheduleClaimStore, AlertHistoryStore, DeadLetterAdminStore,
    UsageStore
{
    /// The push queue this store keeps, or nil when it keeps none.
    var pushQueue: (any PushQueueStore)? { get }
    /// The schema registry's storage in this store, or nil when it keeps none.
    var schemaRegistry: (any SchemaRegistryStore)? { get }
}

/// How long a scheduled run's claim holds without renewal: a worker killed mid-run blocks the
/// pipeline's next runs for at most this long. Renewed while the pass reads (every lease/6); a
/// pass stalled longer than this (a sink down for minutes) can lose its claim.
public let scheduleLease: TimeInterval = 300

extension ScheduleClaimStore {
    public func claimScheduledRun(pipeline: String, slot: Date) async throws -> Bool {
        try await claimScheduledRun(pipeline: pipeline, slot: slot, lease: scheduleLease)
    }
}

extension CheckpointStore {
    public var isShared: Bool { false }
    public func lockWriter(_ writer: String) throws -> WriterLock? { WriterLock {} }
}

/// A lock from ``CheckpointStore/lockWriter(_:)``: released by ``release()`` or when the
/// process ends.
public final class WriterLock: Sendable {
    let releasing: @Sendable () -> Void

    public init(release: @escaping @Sendable () -> Void) { releasing = release }

    public func release() { releasing() }
}

extension StateStore {
    /// The features this store has.
    public var features: Set<StateFeature> {
        var features: Set<StateFeature> = []
        if pushQueue != nil { features.insert(.pushQueue) }
        if schemaRegistry != nil { features.insert(.schemaRegistry) }
        return features
    }
}
