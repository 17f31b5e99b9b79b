import Foundation
import Logging

/// What a sink needs from the runtime.
public struct SinkContext: Sendable {
    public var pipeline: String
    public var state: any StateStore
    public var logger: Logger
    /// Where the sink counts its requests to object storage (cost accounting).
    public var requests: RequestTally?
    /// True for a writer that must be the only one committing under ``pipeline`` (a replay): a
    /// sink that commits in its own transaction refuses a commit when another writer committed
    /// under that name since this one last did.
    public var exclusive = false
    /// True for the writer of `sluice dlq replay`. File sinks name its files apart
    /// (`<prefix>_replay-…`): in object storage, the start-up recovery of the pipeline's own
    /// writer aborts the open uploads of files named like its own that it has no intent for,
    /// which would include a replay's committed uploads not yet completed.
    public var replay = false

    public init(pipeline: String, state: any StateStore, logger: Logger, requests: RequestTally? = nil) {
        self.pipeline = pipeline
        self.state = state
        self.logger = logger
        self.requests = requests
    }
}

/// One row a sink could not take; the runtime sends it to the dead-letter queue.
public struct RowFailure: Sendable {
    public var row: Int
    public var error: SluiceError

    public init(row: Int, error: SluiceError) {
        self.row = row
        self.error = error
    }
}

/// A configured sink. Creating one does no I/O; ``makeWriter(context:)`` does.
public protocol Sink: Sendable {
    /// Opens a writer. The writer first finishes or discards whatever a previous run left
    /// half-committed (pending file intents, temporary files), so that output is exactly-once.
    func makeWriter(context: SinkContext) async throws -> any SinkWriter
    /// Checks, cheaply and without writing data, that the sink can be written now (for
    /// `/readyz` and `sluice validate --connect`). Throws a ``SluiceError`` saying what is wrong.
    func checkReachable() async throws
    /// Why this sink cannot take `source`'s records safely as configured, or nil (checked when
    /// the configuration is loaded, before any data moves). `key` names the offending option.
    func incompatibility(with source: any Source) -> (key: String, message: String)?
    /// The option that makes this sink replace its whole output at the end of each extract pass
    /// (a backfill of a range would leave only that range), or nil.
    var replacesOutputEachPass: String? { get }
    /// How `sluice dlq replay` can write to this sink, if at all.
    var deadLetterReplay: DeadLetterReplaySupport { get }
    /// Where this sink's output lasts (`postgres://host:5432/db analytics.orders`, `dir:/lake/orders`),
    /// nil when nowhere (stdout, a blackhole) or when it cannot tell. Two pipelines writing one
    /// output, or one inside the other's directory, are flagged by `sluice cost`.
    var outputIdentity: String? { get }
    /// Whether anyone reads the output, for `sluice cost`'s unused-output finding; nil when the
    /// sink cannot tell.
    func readEvidence() async throws -> ReadEvidence?
    /// Columns of the output that hold no value at all (candidates to drop), nil when the sink
    /// cannot tell.
    func alwaysNullColumns() async throws -> [String]?
    /// False for a sink that takes only some records (change events to apply): it cannot be a
    /// dead-letter sink.
    var takesAnyRecords: Bool { get }
    /// The output's lifecycle (tiering, retention) when the sink keeps a local lake; nil otherwise.
    var lifecycle: LakeLifecycleTarget? { get }
}

extension Sink {
    public func checkReachable() async throws {}
    public func incompatibility(with source: any Source) -> (key: String, message: String)? { nil }
    public var replacesOutputEachPass: String? { nil }
    public var deadLetterReplay: DeadLetterReplaySupport { .unsupported("") }
    public var outputIdentity: String? { nil }
    public func readEvidence() async throws -> ReadEvidence? { nil }
    public func alwaysNullColumns() async throws -> [String]? { nil }
    public var takesAnyRecords: Bool { true }
    public var lifecycle: LakeLifecycleTarget? { nil }
}

/// What a sink can tell about the reading of its output.
public enum ReadEvidence: Sendable, Hashable {
    /// A count of reads that only grows (PostgreSQL's scans of the table): unchanged between two
    /// reports means nobody read it meanwhile.
    case readCount(Int)
    /// When the output was last read after it was written (file access times), nil when no file
    /// was read since it was written.
    case lastRead(Date?)
}

/// How a sink takes the records of `sluice dlq replay`, which writes under a name of its own
/// (``DeadLetterReplay/writerName(_:)``) so that it never touches the files or transaction of
/// the pipeline running meanwhile.
public enum DeadLetterReplaySupport: Sendable, Hashable {
    /// Not possible; the text says why (empty: this kind of sink cannot take a replay yet).
    case unsupported(String)
    /// Stages files and publishes them after the state commit (file intents): a commit the state
    /// store refuses (another replay delivered the same letters first) is discarded whole.
    case stagedFiles
    /// Commits in its own transaction before the state store does (a database): what it
    /// committed cannot be taken back, so replays of one pipeline never run at the same time.
    case ownTransaction
}

/// Writes batches and commits them atomically with the checkpoint, in two phases:
///
/// 1. ``prepareCommit(_:)`` makes everything written so far durable under temporary names
///    and adds the sink's intents to the ``StateCommit``;
/// 2. the runtime applies the commit (checkpoint, intents, dead letters, dedupe keys) in one
///    state-store transaction;
/// 3. ``finishCommit()`` publishes the output (renames) and resolves the intents.
///
/// A crash between 2 and 3 is repaired by the next ``Sink/makeWriter(context:)``.
public protocol SinkWriter: AnyObject {
    /// Buffers or writes a batch. Returns the rows the sink refused (non-retryable, per row);
    /// throws for failures of the whole batch (retryable or not: see ``SluiceError/isRetryable``).
    func write(_ batch: RecordBatch) async throws -> [RowFailure]
    /// True when the sink wants a commit now (a file reached its size or age).
    func commitDue(at now: ContinuousClock.Instant) -> Bool
    /// The longest the runtime waits between commits while data flows (default 5 s).
    var commitInterval: Duration { get }
    /// Phase 1: make written data durable and describe it in `commit`.
    func prepareCommit(_ commit: inout StateCommit) async throws
    /// Phase 3: publish what phase 1 prepared, after the state store has committed.
    func finishCommit() async throws
    /// The state store refused the commit phase 1 prepared (another worker committed some of
    /// its records first): discard what it prepared; its records are read again. Sinks whose
    /// phase 1 publishes cannot take it back (a database sink's own transaction) keep the default.
    func abortCommit() async
    /// Releases resources (uncommitted data is discarded and will be replayed).
    func close() async
    /// The Hive partitions (`key=value/…` directories) the sink's output holds now, for the
    /// `sluice_lake_partitions` gauge; nil when the sink does not partition or cannot tell
    /// cheaply. Asked once per writer; the runtime adds the partitions of later commits.
    func lakePartitions() async -> Set<String>?
}

extension SinkWriter {
    public func commitDue(at now: ContinuousClock.Instant) -> Bool { false }
    public var commitInterval: Duration { .seconds(5) }
    public func finishCommit() async throws {}
    public func abortCommit() async {}
    public func close() async {}
    public func lakePartitions() async -> Set<String>? { nil }
}

/// The Hive partitions under a local directory: every relative directory path made of
/// `key=value` segments that holds a visible file. Nil for `s3://` paths (listing a bucket
/// to count is not cheap) and when the directory cannot be read.
public func localLakePartitions(under directory: String) -> Set<String>? {
    guard !directory.contains("://"), let walker = FileManager.default.enumerator(atPath: directory) else { return nil }
    var partitions: Set<String> = []
    while let path = walker.nextObject() as? String {
        let parts = path.split(separator: "/")
        guard parts.count > 1, !(parts.last?.hasPrefix(".") ?? true) else { continue }
        let dirs = parts.dropLast()
        if dirs.allSatisfy({ $0.contains("=") }) { partitions.insert(dirs.joined(separator: "/")) }
    }
    return partitions
}
