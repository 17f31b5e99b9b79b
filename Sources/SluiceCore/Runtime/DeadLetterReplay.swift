import Foundation
import Logging
import Metrics

/// Decodes dead letters of a source's decode stage again, with the source's *current* options
/// (a column type fixed in the file, a format option changed).
public protocol DeadLetterDecoder: Sendable {
    /// The records of the letters that decode now, as batches (each with the ids of the letters
    /// its rows came from, row for row), and a new dead letter for each that still does not
    /// (its original location, the new reason).
    func decode(_ letters: [StoredDeadLetter]) async throws -> (batches: [(records: RecordBatch, ids: [Int64])], failures: [(id: Int64, letter: DeadLetter)])
}

/// `sluice dlq replay`: dead letters go through the pipeline's current configuration again,
/// from the stage where they failed. Those that pass land in the sink, and their dead letters
/// are deleted **in the same commit** (the state store's transaction that also records the
/// sink's file intents), so a crash at any moment neither loses nor repeats one. Those that fail
/// again stay, with one more attempt, the new reason and time.
///
/// This version replays decode failures of sources that can decode a dead letter's raw bytes
/// again (``Source/deadLetterDecoder()``), into sinks that publish files after the commit.
public struct DeadLetterReplay: Sendable {
    public struct Totals: Sendable, Hashable {
        /// Records delivered to the sink (their dead letters deleted).
        public var replayed = 0
        /// Dead letters that failed again (kept, attempts + 1).
        public var failedAgain = 0
        /// Dead letters this version leaves as they are (no row to decode, a compressed file).
        public var skipped = 0
        public init() {}
    }

    public let plan: PipelinePlan
    public let store: any StateStore
    public let logger: Logger
    public var filter: DeadLetterFilter
    public var dryRun = false
    /// Dead letters per commit.
    public var pageSize = 5000
    public var hooks: TestHooks = .none

    public init(plan: PipelinePlan, store: any StateStore, logger: Logger, filter: DeadLetterFilter) {
        self.plan = plan
        self.store = store
        self.logger = logger
        var f = filter
        f.pipeline = plan.name
        self.filter = f
    }

    /// Which dead letters this replay can take: those of the decode stage (within the filter).
    public var replayable: DeadLetterFilter {
        var f = filter
        f.stages = filter.stages.isEmpty ? ["decode"] : filter.stages.filter { $0 == "decode" }
        return f
    }

    /// Why this pipeline's dead letters cannot be replayed yet, or nil.
    public var refusal: String? {
        if plan.source.deadLetterDecoder() == nil {
            return "the \(type(of: plan.source)) source cannot decode its dead letters again yet (files can: csv and ndjson)"
        }
        if !plan.sink.acceptsDeadLetterReplay {
            return "replay writes to file sinks (parquet, ndjson) in local directories for now; this pipeline's sink is \(type(of: plan.sink))"
        }
        if plan.settings.dedupe != nil { return "replay into a pipeline with dedupe is not supported yet" }
        return nil
    }

    /// Replays every matching dead letter, a page (one commit) at a time; `progress` gets the
    /// totals after each page.
    public func run(progress: @Sendable (Totals) -> Void = { _ in }) async throws -> Totals {
        if let refusal { throw SluiceError(.unsupported, refusal, location: "pipelines.\(plan.name)") }
        let decoder = plan.source.deadLetterDecoder()!
        // The sink writes under a name of its own (temporary files, intents, their recovery), so
        // that a replay and the pipeline running meanwhile never touch each other's files.
        let context = SinkContext(pipeline: Self.writerName(plan.name), state: store, logger: logger)
        let writer = dryRun ? nil : try await plan.sink.makeWriter(context: context)
        let ok = Counter(label: "sluice_replayed_total", dimensions: [("pipeline", plan.name), ("result", "ok")])
        let failed = Counter(label: "sluice_replayed_total", dimensions: [("pipeline", plan.name), ("result", "failed")])
        var totals = Totals()
        var page = replayable
        do {
            while true {
                let letters = try await store.deadLetters(matching: page, limit: pageSize)
                guard let last = letters.last else { break }
                let decoded = try await decoder.decode(letters)
                totals.skipped += letters.count - decoded.batches.reduce(0) { $0 + $1.ids.count } - decoded.failures.count
                let raw = Dictionary(uniqueKeysWithValues: letters.map { ($0.id, $0) })
                var resolved: [Int64] = []
                var again = decoded.failures.map(\.letter)
                if let writer {
                    for (records, ids) in decoded.batches where records.count > 0 {
                        let failures = try await write(records, to: writer)
                        let refused = Set(failures.map(\.row))
                        for (row, id) in ids.enumerated() {
                            if let failure = failures.first(where: { $0.row == row }), let l = raw[id] {
                                again.append(
                                    DeadLetter(
                                        stage: "sink", errorKind: failure.error.code.description, message: failure.error.message,
                                        location: l.letter.location, raw: l.letter.raw, attempts: 1))
                            } else if !refused.contains(row) {
                                resolved.append(id)
                            }
                        }
                    }
                    var commit = StateCommit(pipeline: Self.writerName(plan.name))
                    commit.deadLettersPipeline = plan.name
                    commit.records = resolved.count
                    commit.resolvedDeadLetters = resolved
                    commit.deadLetters = again
                    try await writer.prepareCommit(&commit)
                    if let delay = hooks.commitPhaseDelay { try? await Task.sleep(for: delay) }
                    do {
                        try await store.commit(commit)
                    } catch let error as SluiceError where error.code == .conflict {
                        // Refused as a whole (another replay delivered some first): nothing of it
                        // is kept, so its staged files go. Other failures may have committed
                        // (an answer lost): the next replay's recovery settles those.
                        await writer.abortCommit()
                        throw error
                    }
                    if let delay = hooks.commitPhaseDelay { try? await Task.sleep(for: delay) }
                    try await writer.finishCommit()
                } else {
                    resolved = decoded.batches.flatMap(\.ids)
                }
                totals.replayed += resolved.count
                totals.failedAgain += again.count
                if !dryRun {
                    ok.increment(by: resolved.count)
                    failed.increment(by: again.count)
                }
                progress(totals)
                page.afterID = last.id
            }
        } catch {
            await writer?.close()
            throw error
        }
        await writer?.close()
        return totals
    }

    /// The name a replay's sink writer commits its files under.
    public static func writerName(_ pipeline: String) -> String { pipeline + "~replay" }

    /// One write, retrying whole-batch failures that are worth retrying with the pipeline's backoff.
    func write(_ records: RecordBatch, to writer: any SinkWriter) async throws -> [RowFailure] {
        var attempt = 1
        while true {
            do {
                return try await writer.write(records)
            } catch {
                let e = SluiceError.classify(error)
                guard e.isRetryable, attempt < plan.settings.retry.maxAttempts else { throw e }
                logger.warning("replay write failed; retrying", metadata: ["attempt": "\(attempt)", "error": "\(e)"])
                try await Task.sleep(for: plan.settings.retry.delay(attempt: attempt, retryAfter: e.retryAfter))
                attempt += 1
            }
        }
    }
}
