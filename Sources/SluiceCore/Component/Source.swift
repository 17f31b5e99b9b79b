import Foundation
import Logging

/// What a source hands to the runtime: rows, the rows it could not decode, and where it stands.
public struct SourceBatch: Sendable {
    /// Decoded rows (may be empty when every row of the chunk was rejected).
    public var records: RecordBatch
    /// Rows that could not be decoded, already located (file:line) with their raw bytes.
    public var rejects: [DeadLetter]
    /// The position just past the last row of this batch (records and rejects alike).
    public var position: SourcePosition
    /// Bytes of input this batch consumed, for throughput metrics and progress.
    public var inputBytes: Int
    /// The last batch of one pass of a repeating extract: the runtime commits right after it
    /// (with ``StateCommit/extractComplete``).
    public var endsPass = false
    /// The source holds something upstream that only a commit releases (a queue's unacknowledged
    /// messages near the server's limit): the runtime commits right after this batch.
    public var commitSoon = false
    /// True when adjacent records that share the source's implicit dedupe key belong to one
    /// unit (the records of one queue message share its sequence): dedupe keeps or drops such
    /// a run as a whole instead of keeping only its first record. Keys the user configured
    /// are not affected.
    public var keyRunsAreUnits = false
    /// With ``keyRunsAreUnits``: rows that start a unit of their own although their key equals
    /// the row before (the same queue message delivered twice in one batch: the second copy is
    /// a duplicate, not more of the first).
    public var unitBreaks: Set<Int> = []
    /// When the oldest record of the batch came into being, as far as the source knows (a
    /// file's modification time, an HTTP request's arrival, a queue message's publication, a
    /// transaction's commit). Nil: the runner uses the time it received the batch. A pipeline's
    /// `event_time` column takes precedence. The end-to-end latency metric counts from it.
    public var originTime: Date?

    public init(records: RecordBatch, rejects: [DeadLetter] = [], position: SourcePosition, inputBytes: Int) {
        self.records = records
        self.rejects = rejects
        self.position = position
        self.inputBytes = inputBytes
    }
}

/// How far a finite source has come, for progress bars.
public struct SourceProgress: Sendable {
    public var bytesDone: Int
    public var bytesTotal: Int?
    /// Records this run will read in all, when the source can tell (a database extract) and
    /// bytes are no measure of progress.
    public var recordsTotal: Int?

    public init(bytesDone: Int, bytesTotal: Int?, recordsTotal: Int? = nil) {
        self.bytesDone = bytesDone
        self.bytesTotal = bytesTotal
        self.recordsTotal = recordsTotal
    }
}

/// What a source needs from the runtime.
public struct SourceContext: Sendable {
    public var pipeline: String
    public var state: any StateStore
    public var logger: Logger
    /// Called by the source with progress as it reads (may be called often; keep it cheap).
    public var reportProgress: @Sendable (SourceProgress) -> Void
    /// The positions this run has committed so far (a repeating extract waits on it).
    public var commits: CommitLog
    /// Points where a test may hold the source (``TestHooks/none`` outside tests).
    public var hooks: TestHooks
    /// Called by a scheduled source when a pull starts, with the time until the next one is due
    /// (the lag gauge, and the stopped alert's window).
    public var reportPull: @Sendable (_ started: Date, _ interval: TimeInterval?) -> Void = { _, _ in }
    /// Called by a source that knows how far behind it is (a queue's pending messages, CDC's
    /// seconds behind the server), for the dashboard and `sluice top`.
    public var reportLag: @Sendable (_ value: Double, _ unit: String) -> Void = { _, _ in }
    /// Where the source counts its requests to APIs and object storage (cost accounting).
    public var requests: RequestTally?
    /// The pipeline's `schema:` settings (nil: detection only), for sources that track the
    /// schemas of the tables they read (``TableSchemaTracker``).
    public var schema: SchemaSettings?
    /// False with `schema: {on_change: ignore}`: no schema is tracked.
    public var schemaDetection = true
    /// Called once per schema drift event a source records (the drift alert and the dashboard count them).
    public var reportSchemaDrift: @Sendable () -> Void = {}

    public init(
        pipeline: String, state: any StateStore, logger: Logger, commits: CommitLog = CommitLog(), hooks: TestHooks = .none,
        reportProgress: @escaping @Sendable (SourceProgress) -> Void = { _ in }
    ) {
        self.pipeline = pipeline
        self.state = state
        self.logger = logger
        self.commits = commits
        self.hooks = hooks
        self.reportProgress = reportProgress
    }
}

/// A configured source. Creating one does no I/O; ``makeReader(resumingFrom:context:)`` does.
public protocol Source: Sendable {
    /// True when the source never ends by itself (a watched directory, a schedule, CDC, HTTP).
    var isContinuous: Bool { get }
    /// Opens a reader that continues just after `checkpoint`.
    func makeReader(resumingFrom checkpoint: Checkpoint, context: SourceContext) async throws -> any SourceReader
    /// Checks, cheaply and without reading data, that the source can be read now (for
    /// `sluice validate --connect`). Throws a ``SluiceError`` saying what is wrong.
    func checkReachable() async throws
    /// Columns by which the pipeline must drop repeated records when it declares no `dedupe`
    /// itself (a source that re-reads on purpose, such as an incremental pull with a lookback).
    var implicitDedupeKey: [String]? { get }
    /// Called after each state commit with the positions it committed, for sources that
    /// acknowledge upstream (mark change rows processed, advance a replication slot). A failure
    /// is logged; the next commit covers the same rows again.
    func committed(_ positions: [String: String], context: SourceContext) async throws
    /// True when a run resumed from a checkpoint reads the same records in the same order as
    /// the run that left it (files, database extracts, a replication slot), so a sink may name
    /// a record by its ordinal after the checkpoint. False for a queue, which redelivers to
    /// any worker in any order.
    var replaysInOrder: Bool { get }
    /// Decodes this source's decode-stage dead letters again with its current options, for
    /// `sluice dlq replay`; nil when it cannot.
    func deadLetterDecoder() -> (any DeadLetterDecoder)?
    /// What this source reads, named so that two pipelines reading the same data share a name
    /// (`postgres://host:5432/db public.orders` for a pull and for CDC of that table); empty when
    /// it cannot tell. `sluice cost` flags redundant ingestion with it.
    var readIdentities: [String] { get }
}

extension Source {
    public func checkReachable() async throws {}
    public var replaysInOrder: Bool { true }
    public var implicitDedupeKey: [String]? { nil }
    public func deadLetterDecoder() -> (any DeadLetterDecoder)? { nil }
    public var readIdentities: [String] { [] }
    public func committed(_ positions: [String: String], context: SourceContext) async throws {}
}

/// Reads batches in order. Used by one task at a time.
public protocol SourceReader: AnyObject {
    /// The next batch, or nil when a finite source is exhausted. A continuous source waits for
    /// data and returns nil only when the task is cancelled.
    func next() async throws -> SourceBatch?
    /// Releases resources. Called once, also after an error.
    func close() async
}

extension SourceReader {
    public func close() async {}
}

/// A source that can re-extract a historical range of its cursor (`sluice backfill`).
public protocol BackfillableSource: Source {
    /// A finite source reading the rows whose first cursor column is in [from, to), resumable,
    /// with `parallel` readers over key ranges. Throws a configuration error when this source
    /// has no cursor to bound.
    func backfill(from: String, to: String, parallel: Int) throws -> any Source
}
