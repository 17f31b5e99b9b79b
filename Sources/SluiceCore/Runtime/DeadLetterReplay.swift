import Foundation
import Logging
import Metrics

/// Decodes dead letters again with the *current* configuration (a column type fixed in the
/// file, a format option changed), for `sluice dlq replay`.
public protocol DeadLetterDecoder: Sendable {
    /// The records of the letters that decode now, as batches (each with the ids of the letters
    /// its rows came from, row for row), and a new dead letter for each that still does not
    /// (its original location, the new reason).
    func decode(_ letters: [StoredDeadLetter]) async throws -> (batches: [(records: RecordBatch, ids: [Int64])], failures: [(id: Int64, letter: DeadLetter)])
    /// The stages whose letters this decoder takes (default: `decode`).
    var stages: [String] { get }
    /// The records of a page's rows given as one text (``DeadLetterPage/lines(stage:)``, letters
    /// of the `decode` stage), when every one of them decodes now; nil sends the page through
    /// ``decode(_:)`` (a row fails again, rows of several files, or no such shortcut).
    func decode(lines: DeadLetterBlock.Lines) async throws -> [(records: RecordBatch, ids: [Int64])]?
}

extension DeadLetterDecoder {
    public var stages: [String] { ["decode"] }
    public func decode(lines: DeadLetterBlock.Lines) async throws -> [(records: RecordBatch, ids: [Int64])]? { nil }
}

/// `sluice dlq replay`: dead letters go through the pipeline's current configuration again,
/// from the stage where they failed:
///
/// - `decode`: the raw bytes are decoded again by the source (``Source/deadLetterDecoder()``),
///   then go through the schema policy, dedupe and the sink;
/// - `schema`, `dedupe`: the row (kept as JSON with its types, ``DeadLetter/schema``) goes
///   through the schema policy and dedupe again, then the sink;
/// - `sink`: the row is written again.
///
/// Those that pass land in the sink, and their dead letters are deleted **in the same commit**
/// (the state store's transaction that also records the sink's file intents, or the one the
/// sink's own transaction stores with its data), so a crash at any moment neither loses nor
/// repeats one. Those that fail again stay, with one more attempt, the new reason and time.
/// Records whose dedupe key was accepted within the TTL (by the pipeline running meanwhile or
/// an earlier run) are duplicates: their letters go, nothing is written.
public struct DeadLetterReplay: Sendable {
    public struct Totals: Sendable, Hashable {
        /// Records delivered to the sink (their dead letters deleted).
        public var replayed = 0
        /// Dead letters that failed again (kept, attempts + 1).
        public var failedAgain = 0
        /// Dead letters whose record was delivered already (dedupe) or discarded by the schema
        /// policy: deleted, nothing written.
        public var dropped = 0
        /// Dead letters left as they are (no row to decode, a compressed file).
        public var skipped = 0
        public init() {}
    }

    public let plan: PipelinePlan
    public let store: any StateStore
    public let logger: Logger
    public var filter: DeadLetterFilter
    public var dryRun = false
    /// Dead letters per commit (about: a store returns whole blocks).
    public var pageSize = 65_536
    public var hooks: TestHooks = .none
    /// Decodes the rows the stages after decoding refused (JSON with their schema); set by the
    /// caller (the formats module has the JSON decoder). Nil replays decode failures only.
    public var renderedRows: (any DeadLetterDecoder)?
    /// How long a replay into a sink with its own transaction holds the pipeline's replay lease
    /// without renewing it (a killed replay blocks the next one this long).
    public var lease: TimeInterval = 30

    public init(plan: PipelinePlan, store: any StateStore, logger: Logger, filter: DeadLetterFilter) {
        self.plan = plan
        self.store = store
        self.logger = logger
        var f = filter
        f.pipeline = plan.name
        self.filter = f
    }

    /// The stages this replay takes letters of.
    public var stages: [String] {
        (plan.source.deadLetterDecoder()?.stages ?? []) + (renderedRows == nil ? [] : Self.renderedStages)
    }

    /// The stages whose dead letters hold a rendered row (JSON with its schema), not raw bytes.
    public static let renderedStages = ["schema", "dedupe", "sink"]

    /// Which dead letters this replay can take (within the filter).
    public var replayable: DeadLetterFilter {
        var f = filter
        f.stages = filter.stages.isEmpty ? stages : filter.stages.filter(stages.contains)
        if f.stages.isEmpty { f.stages = ["-"] }  // none
        return f
    }

    /// The dedupe a replay applies: the pipeline's declared one. A key the source implies (a
    /// queue's sequence, an incremental pull's lookback) guards against reading one record
    /// twice; a replay reads each dead letter once by construction, and records of one message
    /// share such a key, so it would drop a record whose siblings were delivered.
    var replayDedupe: DedupeSettings? {
        guard let settings = plan.settings.dedupe, settings.key != plan.source.implicitDedupeKey else { return nil }
        return settings
    }

    /// Why this pipeline's dead letters cannot be replayed, or nil.
    public var refusal: String? {
        switch plan.sink.deadLetterReplay {
        case let .unsupported(why):
            return why.isEmpty ? "a \(type(of: plan.sink)) sink cannot take a replay yet (file sinks and PostgreSQL append/upsert can)" : why
        case .ownTransaction where replayDedupe != nil:
            return "a replay with dedupe writes to sinks that can discard a refused commit (file sinks); this pipeline's sink commits in its own transaction"
        case .stagedFiles, .ownTransaction:
            return nil
        }
    }

    /// Replays every matching dead letter, a page (one commit) at a time; `progress` gets the
    /// totals after each page.
    public func run(progress: @Sendable (Totals) -> Void = { _ in }) async throws -> Totals {
        if let refusal { throw SluiceError(.unsupported, refusal, location: "pipelines.\(plan.name)") }
        let name = Self.writerName(plan.name)
        let exclusive = plan.sink.deadLetterReplay == .ownTransaction && !dryRun
        let slot = Date()
        if exclusive {
            guard try await store.claimScheduledRun(pipeline: name, slot: slot, lease: lease) else {
                throw SluiceError(
                    .conflict,
                    "another replay of \(plan.name) is running (or was stopped less than \(Int(lease)) s ago); a sink with its own transaction takes one replay at a time",
                    location: "pipelines.\(plan.name)")
            }
        }
        // Staged files: each replay's writer starts by removing what its name left unfinished
        // (temporary files, open uploads). With a store of one machine, a second replay of the
        // pipeline would remove the first one's files in flight, so one runs at a time (a
        // shared store's writers leave each other's recent work alone).
        var fileLock: WriterLock?
        if plan.sink.deadLetterReplay == .stagedFiles && !dryRun {
            guard let lock = try store.lockWriter(name) else {
                throw SluiceError(
                    .conflict, "another replay of \(plan.name) is running on this machine; one at a time (try again when it is done)",
                    location: "pipelines.\(plan.name)")
            }
            fileLock = lock
        }
        defer { fileLock?.release() }
        var totals = Totals()
        var writer: (any SinkWriter)?
        do {
            // A dry run changes nothing, the schema registry included: it decodes and counts.
            let schemaGuard = dryRun ? nil : try await makeSchemaGuard()
            if !dryRun {
                var context = SinkContext(pipeline: name, state: store, logger: logger, requests: plan.requests)
                context.exclusive = true
                context.replay = true
                writer = try await plan.sink.makeWriter(context: context)
            }
            var page = replayable
            var conflicts = 0
            // The next page is read and decoded while this one is written and committed: its
            // letters come after this page's, which this commit deletes or updates.
            var prefetched: Prepared?
            while true {
                if exclusive { try await store.renewScheduledRun(pipeline: name, slot: slot) }
                let letters: Prepared
                if let prefetched {
                    letters = prefetched
                } else {
                    letters = try await prepare(page)
                }
                prefetched = nil
                guard let last = letters.page.lastID else { break }
                var following = page
                following.afterID = last
                let nextFilter = following
                async let nextPage = prepare(nextFilter)
                do {
                    let outcome = try await replay(letters, schemaGuard: schemaGuard, writer: writer)
                    totals.replayed += outcome.replayed
                    totals.failedAgain += outcome.failedAgain
                    totals.dropped += outcome.dropped
                    totals.skipped += outcome.skipped
                    conflicts = 0
                    progress(totals)
                } catch let error as SluiceError where error.code == .conflict && conflicts < 5 && replayDedupe != nil {
                    // The pipeline running meanwhile committed some of these keys first: the
                    // commit was discarded whole; this page is read again (now duplicates).
                    conflicts += 1
                    logger.info("replay commit refused (keys committed meanwhile); replaying the page again", metadata: ["pipeline": "\(plan.name)"])
                    _ = try? await nextPage
                    continue
                }
                prefetched = try await nextPage
                page = following
            }
        } catch {
            await writer?.close()
            if exclusive { try? await store.finishScheduledRun(pipeline: name, slot: slot) }
            throw error
        }
        await writer?.close()
        if exclusive { try await store.finishScheduledRun(pipeline: name, slot: slot) }
        return totals
    }

    /// A page read and, when its rows decode as one text, decoded.
    struct Prepared: Sendable {
        var page: DeadLetterPage
        var lines: [(records: RecordBatch, ids: [Int64])]?
    }

    /// Reads the page of `filter` and decodes it when it can (``decodeLines(_:)``).
    func prepare(_ filter: DeadLetterFilter) async throws -> Prepared {
        let page = try await store.deadLetterPage(matching: filter, limit: pageSize)
        return Prepared(page: page, lines: page.isEmpty ? nil : try await decodeLines(page))
    }

    /// Replays one page of letters in one commit.
    func replay(_ prepared: Prepared, schemaGuard: SchemaGuard?, writer: (any SinkWriter)?) async throws -> Totals {
        let page = prepared.page
        var out = Totals()
        // Letters that fail again, by id: made into dead letters at the end, from the page.
        var failed: [(id: Int64, kind: String, message: String)] = []
        func fail(_ id: Int64, _ kind: String, _ message: String) { failed.append((id, kind, message)) }
        var dropped: [Int64] = []
        var decoded: [(records: RecordBatch, ids: [Int64], fromSink: Bool)] = []
        var letters: [StoredDeadLetter]?

        if let lines = prepared.lines {
            // The page's rows as one text, all decoded: no value per letter.
            decoded = lines.map { ($0.records, $0.ids, false) }
        } else {
            let all = try page.letters()
            letters = all
            // Decode: the source's decoder for raw bytes, the JSON decoder for rendered rows.
            let anyRendered = all.contains { Self.renderedStages.contains($0.letter.stage) }
            var stageOf: [Int64: String] = [:]
            if anyRendered { for l in all { stageOf[l.id] = l.letter.stage } }
            let rendered = anyRendered ? all.filter { Self.renderedStages.contains($0.letter.stage) } : []
            let decodeStage = anyRendered ? all.filter { !Self.renderedStages.contains($0.letter.stage) } : all
            var failures: [(id: Int64, letter: DeadLetter)] = []
            if !decodeStage.isEmpty, let decoder = plan.source.deadLetterDecoder() {
                let d = try await decoder.decode(decodeStage)
                decoded += d.batches.map { ($0.records, $0.ids, false) }
                failures += d.failures
            }
            if !rendered.isEmpty, let renderedRows {
                let d = try await renderedRows.decode(rendered)
                for (records, ids) in d.batches {
                    let fromSink = stageOf[ids[0]] == "sink"
                    // A batch mixes stages only when its letters do; split it so that sink rows skip the earlier stages.
                    let sinkRows = ids.indices.filter { stageOf[ids[$0]] == "sink" }
                    if sinkRows.isEmpty || sinkRows.count == ids.count {
                        decoded.append((records, ids, fromSink))
                    } else {
                        let other = ids.indices.filter { stageOf[ids[$0]] != "sink" }
                        decoded.append((records.take(sinkRows), sinkRows.map { ids[$0] }, true))
                        decoded.append((records.take(other), other.map { ids[$0] }, false))
                    }
                }
                failures += d.failures
            }
            for f in failures { fail(f.id, f.letter.errorKind, f.letter.message) }
            out.skipped = all.count - decoded.reduce(0) { $0 + $1.ids.count } - failures.count
        }

        // The schema policy and dedupe, for rows that had not passed them; then the sink.
        var dedupe = replayDedupe.map { Deduplicator(settings: $0, pipeline: plan.name, store: store) }
        let now = Date()
        var resolved: [Int64] = []
        for (batch, batchIDs, fromSink) in decoded where batch.count > 0 {
            var records = batch
            var ids = batchIDs
            if !fromSink, let schemaGuard {
                (records, ids) = try await conform(records, ids: ids, guard: schemaGuard, fail: fail, dropped: &dropped)
            }
            if !fromSink, dedupe != nil, records.count > 0 {
                let position = SourcePosition(partition: "replay", value: String(ids[0]))
                let (keep, rejects) = try await dedupe!.select(records, sequence: 0, position: position, now: now)
                guard let keep else {
                    for (i, r) in rejects.enumerated() { fail(ids[i], r.errorKind, r.message) }
                    continue
                }
                let kept = Set(keep)
                for i in ids.indices where !kept.contains(i) { dropped.append(ids[i]) }
                if keep.count != records.count {
                    records = records.take(keep)
                    ids = keep.map { ids[$0] }
                }
            }
            guard records.count > 0 else { continue }
            guard let writer else {
                resolved += ids
                continue
            }
            let refused = try await write(records, to: writer)
            var refusedRows: [Int: RowFailure] = [:]
            for f in refused { refusedRows[f.row] = f }
            for (row, id) in ids.enumerated() {
                if let f = refusedRows[row] {
                    fail(id, f.error.code.description, "the sink refused the row again: \(f.error.message)")
                } else {
                    resolved.append(id)
                }
            }
        }
        var again: [DeadLetter] = []
        if !failed.isEmpty {
            let all = try letters ?? page.letters()
            var index: [Int64: Int] = [:]
            for (i, l) in all.enumerated() { index[l.id] = i }
            for f in failed {
                if let i = index[f.id] { again.append(all[i].failedAgain(kind: f.kind, message: f.message)) }
            }
        }
        out.replayed = resolved.count
        out.failedAgain = again.count
        out.dropped = dropped.count
        guard let writer else { return out }

        var commit = StateCommit(pipeline: Self.writerName(plan.name))
        commit.ownerPipeline = plan.name
        // A new value per commit: a sink that stores the checkpoint with its data (PostgreSQL)
        // tells by it whether the state store has this commit.
        commit.checkpoint = ["replay": UUID().uuidString]
        commit.records = resolved.count
        commit.resolvedDeadLetters = resolved + dropped
        commit.deadLetters = again
        if let settings = replayDedupe {
            let keys = dedupe?.takePending(through: .max)
            commit.dedupeHashes = keys?.keys ?? []
            commit.dedupeCheckedThrough = keys?.checkedThrough
            commit.dedupeWriter = dedupe?.writer
            commit.dedupeSince = now.addingTimeInterval(-Double(settings.ttl.components.seconds))
        }
        try await writer.prepareCommit(&commit)
        if let delay = hooks.commitPhaseDelay { try? await Task.sleep(for: delay) }
        do {
            try await store.commit(commit)
        } catch let error as SluiceError where error.code == .conflict {
            // Refused as a whole (another replay delivered some first, or the pipeline committed
            // some keys first): nothing of it is kept, so its staged files go. Other failures
            // may have committed (an answer lost): the next replay's recovery settles those.
            await writer.abortCommit()
            throw error
        }
        if let delay = hooks.commitPhaseDelay { try? await Task.sleep(for: delay) }
        try await hooks.hold(at: Self.holdCommitted, logger: logger)
        try await writer.finishCommit()
        if !dryRun {
            Counter(label: "sluice_replayed_total", dimensions: [("pipeline", plan.name), ("result", "ok")]).increment(by: resolved.count)
            Counter(label: "sluice_replayed_total", dimensions: [("pipeline", plan.name), ("result", "failed")]).increment(by: again.count)
        }
        return out
    }

    /// The page's rows decoded as one text by the source's decoder, when it can (see
    /// ``DeadLetterDecoder/decode(lines:)``).
    func decodeLines(_ page: DeadLetterPage) async throws -> [(records: RecordBatch, ids: [Int64])]? {
        guard let decoder = plan.source.deadLetterDecoder(), decoder.stages.contains("decode"), let lines = try page.lines(stage: "decode") else {
            return nil
        }
        return try await decoder.decode(lines: lines)
    }

    /// The rows of `records` that hold the pipeline's current schema policy (conformed to it),
    /// with their letters' ids; the others fail again or, under a discarding policy, are dropped.
    func conform(
        _ records: RecordBatch, ids: [Int64], guard schemaGuard: SchemaGuard, fail: (Int64, String, String) -> Void, dropped: inout [Int64]
    ) async throws -> (RecordBatch, [Int64]) {
        let position = SourcePosition(partition: "replay", value: "0")
        let out = try await schemaGuard.apply(SourceBatch(records: records, position: position, inputBytes: 0))
        // Rejected rows are named `schema:<position>#<row>`; the others are kept in order.
        var rejected: [Int: DeadLetter] = [:]
        for r in out.rejects {
            if let hash = r.location.lastIndex(of: "#"), let row = Int(r.location[r.location.index(after: hash)...]) { rejected[row] = r }
        }
        if rejected.count == out.rejects.count, out.records.count + rejected.count == records.count {
            var kept: [Int64] = []
            for (row, id) in ids.enumerated() {
                if let r = rejected[row] { fail(id, r.errorKind, r.message) } else { kept.append(id) }
            }
            return (out.records, kept)
        }
        // A policy that discards rows: row by row, to tell which.
        var kept: [RecordBatch] = []
        var keptIDs: [Int64] = []
        for (row, id) in ids.enumerated() {
            let one = try await schemaGuard.apply(SourceBatch(records: records.take([row]), position: position, inputBytes: 0))
            if let r = one.rejects.first {
                fail(id, r.errorKind, r.message)
            } else if one.records.count == 1 {
                kept.append(one.records)
                keptIDs.append(id)
            } else {
                dropped.append(id)
            }
        }
        guard let first = kept.first else { return (RecordBatch.empty(out.records.schema), []) }
        return (kept.count == 1 ? first : RecordBatch.concatenate(kept), keptIDs)
    }

    /// The schema policy the pipeline runs under (`schema:`), when the state store has a registry.
    func makeSchemaGuard() async throws -> SchemaGuard? {
        guard plan.settings.schemaDetection, plan.settings.schema != nil, let registry = store.schemaRegistry else { return nil }
        let schemaGuard = SchemaGuard(registry: SchemaRegistry(store: registry), pipeline: plan.name, settings: plan.settings.schema, logger: logger)
        try await schemaGuard.start()
        return schemaGuard
    }

    /// The name a replay's sink writer commits its files under.
    public static func writerName(_ pipeline: String) -> String { pipeline + "~replay" }

    /// The test hold point between a page's state commit and the publishing of its output.
    public static let holdCommitted = "replay-committed"

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
