import Foundation

/// The commit protocol of a run as a value (DESIGN.md §3): what waits to be committed, and the
/// step that comes next.
///
/// The runner does what each ``Action`` says and reports the outcome; the order is decided
/// here alone: the sink **prepares** (stages its output and adds its file intents), the state
/// store **applies** the whole commit in one transaction, the sink **publishes**, and the
/// source is **acknowledged** (a queue or a replication slot may then let go). A commit the
/// store refuses (another worker committed the same records first) is **aborted** instead: the
/// sink discards what it staged, and nothing is published or acknowledged. Unit-tested without
/// a store, a sink or a source.
struct CommitSequence {
    enum Action {
        /// Let the sink stage its output and add to the commit (``SinkWriter/prepareCommit(_:)``).
        case prepare(StateCommit)
        /// Store the prepared commit in one transaction (``CheckpointStore/commit(_:)``).
        case apply(StateCommit)
        /// Let the sink publish what it staged (``SinkWriter/finishCommit()``).
        case publish
        /// Tell the source its records up to these positions are committed (``Source/committed(_:context:)``).
        case acknowledge([String: String])
        /// The store refused the commit: let the sink discard what it staged (``SinkWriter/abortCommit()``).
        /// The records it wrote are not in the output (they are read and written again).
        case abort(discardedRecords: Int)
        /// The commit is complete; its pending work is cleared.
        case done(StateCommit)
    }

    enum Step: Equatable { case idle, preparing, applying, publishing, acknowledging }

    private(set) var step = Step.idle
    /// Positions of the batches accepted, and which are complete (the checkpoint's watermark).
    private var tracker = AcknowledgementTracker()
    /// Batches written to the sink since the last commit, by sequence number.
    private(set) var written: [UInt64] = []
    private(set) var deadLetters: [DeadLetter] = []
    /// Records written to the sink since the last commit.
    private(set) var records = 0
    /// The commit under way.
    private var current: StateCommit?

    /// Whether anything waits to be committed.
    var hasPending: Bool { !written.isEmpty || !deadLetters.isEmpty }
    /// Batches accepted and not yet passed by the checkpoint.
    var inFlight: Int { tracker.inFlight }

    /// Registers a batch read up to `position`; returns its sequence number.
    mutating func accepted(_ position: SourcePosition) -> UInt64 {
        tracker.register(position)
    }

    /// Batch `sequence` is in the sink (`records` of it; the rest were duplicates or dead letters).
    mutating func wrote(_ sequence: UInt64, records: Int) {
        precondition(step == .idle, "a batch was written while a commit was under way")
        written.append(sequence)
        self.records += records
    }

    mutating func deadLettered(_ letters: [DeadLetter]) {
        deadLetters += letters
    }

    /// Starts a commit of what is pending, or nil when there is nothing to commit (a pass that
    /// ends is committed even empty: a `replace` sink swaps its table then). `dedupeKeys` are
    /// the keys of the batches up to the last one written (``written``), and no later: a crash
    /// after this commit must not drop records still to be written as duplicates.
    mutating func begin(
        pipeline: String, now: Date = Date(), extractComplete: Bool, dedupeTTL: Duration?,
        dedupeKeys: [DedupeHash], dedupeCheckedThrough: Int64? = nil, dedupeWriter: Int64? = nil
    ) -> Action? {
        precondition(step == .idle, "a commit began while another was under way")
        guard hasPending || extractComplete else { return nil }
        var commit = StateCommit(pipeline: pipeline, now: now)
        for sequence in written {
            commit.checkpoint.merge(tracker.complete(sequence)) { $1 }
        }
        commit.deadLetters = deadLetters
        commit.dedupeHashes = dedupeKeys.isEmpty ? nil : dedupeKeys
        commit.dedupeCheckedThrough = dedupeCheckedThrough
        commit.dedupeWriter = dedupeWriter
        if let ttl = dedupeTTL, !dedupeKeys.isEmpty {
            // Checked again inside the state transaction: with workers sharing the state, a
            // record held by two of them at once (a queue redelivered it) is committed once.
            commit.dedupeSince = now.addingTimeInterval(-Double(ttl.components.seconds))
        }
        commit.records = records
        commit.extractComplete = extractComplete
        current = commit
        step = .preparing
        return .prepare(commit)
    }

    /// The sink prepared `commit` (it may have added file intents, or stored the checkpoint with its data).
    mutating func prepared(_ commit: StateCommit) -> Action {
        precondition(step == .preparing, "prepared while \(step)")
        current = commit
        step = .applying
        return .apply(commit)
    }

    /// The state store holds the commit.
    mutating func applied() -> Action {
        precondition(step == .applying, "applied while \(step)")
        step = .publishing
        return .publish
    }

    /// The state store refused the commit (another worker committed some of its records first).
    mutating func refused() -> Action {
        precondition(step == .applying, "refused while \(step)")
        let discarded = records
        step = .idle
        current = nil
        written.removeAll()
        deadLetters.removeAll()
        records = 0
        return .abort(discardedRecords: discarded)
    }

    /// The sink published.
    mutating func published() -> Action {
        precondition(step == .publishing, "published while \(step)")
        let positions = current?.checkpoint ?? [:]
        guard positions.isEmpty else {
            step = .acknowledging
            return .acknowledge(positions)
        }
        return finish()
    }

    /// The source was told (or failed to hear: the next commit tells it again).
    mutating func acknowledged() -> Action {
        precondition(step == .acknowledging, "acknowledged while \(step)")
        return finish()
    }

    private mutating func finish() -> Action {
        let commit = current ?? StateCommit(pipeline: "")
        step = .idle
        current = nil
        written.removeAll()
        deadLetters.removeAll()
        records = 0
        return .done(commit)
    }
}
