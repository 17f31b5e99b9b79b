import Foundation

/// A sink's promise to publish a file: a temporary file that becomes `finalPath` on success.
public struct FileIntent: Sendable, Hashable, Codable {
    public var tempPath: String
    public var finalPath: String
    public var records: Int
    public var bytes: Int

    public init(tempPath: String, finalPath: String, records: Int, bytes: Int) {
        self.tempPath = tempPath
        self.finalPath = finalPath
        self.records = records
        self.bytes = bytes
    }
}

/// Everything one commit changes, applied by the ``StateStore`` in a single transaction.
public struct StateCommit: Sendable, Codable {
    public var pipeline: String
    /// New positions per source partition.
    public var checkpoint: [String: String] = [:]
    /// Dead letters found since the last commit.
    public var deadLetters: [DeadLetter] = []
    /// Idempotency keys accepted since the last commit (dedupe), stamped with `now`, as hashes
    /// (``DedupeHash``). Optional so that commits stored before it existed still decode.
    public var dedupeHashes: [DedupeHash]?
    /// Idempotency keys in their text form, as commits stored before keys were hashed (a
    /// PostgreSQL sink's pending commit) carry them: the store hashes them with the owner's seed.
    public var dedupeKeys: [String] = []
    /// The last run of keys (``DedupeRunRow/run``) the committing worker had read when it
    /// looked up the first of ``dedupeHashes``: with ``dedupeSince`` the store looks for the
    /// keys in later runs only (those of other workers; every earlier key was looked up).
    /// Nil looks in every run.
    public var dedupeCheckedThrough: Int64?
    /// Who accepted the keys (a number the accepting process draws at random): its filter
    /// skips its own runs when it reads the runs committed since (it holds their keys), and
    /// its commits skip them when looking for conflicts.
    public var dedupeWriter: Int64?
    /// When set, the store refuses the whole commit (a ``SluiceError`` with code `conflict`) if
    /// one of ``dedupeKeys`` is already stored by another commit at or after this time: a worker
    /// sharing the state store committed the same records first. Keys older than this (expired,
    /// not yet swept) are taken over, and keys this very commit stored (a retry after a lost
    /// reply: same ``now``) are not a conflict. Nil stores the keys unconditionally (recovery
    /// of a commit whose data already landed).
    public var dedupeSince: Date?
    /// Files the sink will publish once this commit is durable.
    public var fileIntents: [FileIntent] = []
    /// Dead letters (ids) whose records this commit delivers (`sluice dlq replay`): deleted in
    /// the same transaction, before ``deadLetters`` are filed. Optional so that commits stored
    /// before it existed (a PostgreSQL sink's pending commit) still decode.
    public var resolvedDeadLetters: [Int64]?
    /// The pipeline whose dead letters (``deadLetters``, ``resolvedDeadLetters``) and dedupe keys
    /// (``dedupeKeys``) this commit changes, when not ``pipeline``: a replay commits its files and
    /// checkpoint under a name of its own, so that its temporary files and intents never mix with
    /// those of the pipeline running meanwhile, while the keys it accepts are the pipeline's.
    public var ownerPipeline: String?
    /// Records written to the sink by this commit (for run history).
    public var records = 0
    /// The pipeline that owns this commit's dead letters and dedupe keys.
    public var owner: String { ownerPipeline ?? pipeline }
    /// True for the commit that ends a pass of an extract (a finite source ran out, or one
    /// scheduled run of a pull finished), as opposed to a run that was stopped: a `replace` sink
    /// publishes its staged table then.
    public var extractComplete = false
    public var now: Date

    public init(pipeline: String, now: Date = Date()) {
        self.pipeline = pipeline
        self.now = now
    }

    /// The error a store throws when ``dedupeSince`` refuses the commit.
    public func conflict(keys: [DedupeHash]) -> SluiceError {
        SluiceError(
            .conflict,
            "records of this commit were committed first by another worker sharing the state store "
                + "(\(keys.count) key\(keys.count == 1 ? "" : "s"), hash \(keys.prefix(3).map(\.description).joined(separator: ", "))\(keys.count > 3 ? ", …" : "")); the commit is refused and its output "
                + "discarded, so no record is written twice",
            location: "pipelines.\(pipeline)")
    }

    public var isEmpty: Bool {
        checkpoint.isEmpty && deadLetters.isEmpty && dedupeKeys.isEmpty && (dedupeHashes ?? []).isEmpty && fileIntents.isEmpty
    }
}

extension StateCommit {
    /// The error a store throws when some of ``resolvedDeadLetters`` are gone: another replay
    /// delivered them first, and this commit's records would be in the sink twice.
    public static func replayConflict(_ missing: Int) -> SluiceError {
        SluiceError(
            .conflict,
            "\(missing) of the dead letters this replay delivers were delivered by another replay first (is one running?); nothing of this commit is kept")
    }
}
