import Synchronization
import Foundation
import Logging
import ServiceLifecycle

/// Runs one pipeline: source → schema guard → bounded buffer → dedupe → batcher → sink → commit → checkpoint.
///
/// The source runs in its own child task and is stopped (not the sink) on graceful
/// shutdown: what was already read is written, committed and checkpointed, then `run`
/// returns. A batch-level sink failure is retried with backoff while the source waits
/// (backpressure); rows the sink refuses go to the dead-letter queue.
public struct PipelineRunner: Sendable {
    public let plan: PipelinePlan
    public let store: any StateStore
    public let logger: Logger
    public let status: PipelineStatus
    let metrics: PipelineMetrics
    /// What this run committed, for repeating extracts waiting on their previous pass.
    let commitLog = CommitLog()

    /// Commit when this many dead letters are waiting.
    public var maxPendingDeadLetters = 10_000
    /// Where tests may pause or hold the run (``TestHooks/none`` outside tests).
    let hooks: TestHooks
    /// Live samples for `sluice tap` (nil: nobody can tap this run).
    public var tap: TapHub?
    /// Lets the process ask this run to commit now (see ``CommitRequest``); nil: it commits
    /// only when its sink and settings say so.
    public var commitRequest: CommitRequest?
    /// The test hold point between a commit's two phases (see ``TestHooks/hold(at:logger:)``).
    public static let holdCommitPrepared = "commit-prepared"
    /// A pause between the commit phases, so crash tests that kill the process at random
    /// moments also land between them.
    var commitPhaseDelay: Duration? { hooks.commitPhaseDelay }

    public init(plan: PipelinePlan, store: any StateStore, logger: Logger, status: PipelineStatus? = nil, hooks: TestHooks = .none) {
        self.plan = plan
        self.store = store
        self.hooks = hooks
        var logger = logger
        logger[metadataKey: "pipeline"] = .string(plan.name)
        self.logger = logger
        self.status = status ?? PipelineStatus(pipeline: plan.name)
        metrics = PipelineMetrics(pipeline: plan.name)
    }

    /// Runs until a finite source is exhausted (or a continuous one is stopped) and all is committed.
    @discardableResult
    public func run() async throws -> RunTotals {
        let runID = try await store.startRun(pipeline: plan.name, at: Date())
        // The baseline of "time since the last commit" (the stopped alert): the run's start.
        metrics.lastCommitTime.record(Date().timeIntervalSince1970)
        status.update {
            $0.startedAt = Date()
            $0.finished = false
            $0.failed = false
            $0.sourceTrouble = nil
            $0.sinkTrouble = nil
        }
        logger.info("pipeline starting", metadata: ["source": "\(type(of: plan.source))", "sink": "\(type(of: plan.sink))"])
        var totals = RunTotals()
        // Start-overs (see ``StartOverFromCheckpoint``): how many in a row without a record
        // committed between them, since when, and the records committed at the last one.
        var outage: (breaks: Int, since: ContinuousClock.Instant, committed: Int)?
        do {
            while true {
                let opened = OneWayFlag()
                do {
                    totals = try await runPipeline(
                        carrying: totals, restarting: outage.map { $0.since + plan.settings.retry.maxOutage },
                        opened: opened)
                    break
                } catch let error as SluiceError where error.code == .conflict {
                    // Nothing of the refused commit was published and the source has not been
                    // acknowledged: start over from the checkpoint, with a fresh sink writer and
                    // reader (a queue redelivers the messages; those committed elsewhere are dropped).
                    totals = totalsSoFar
                    logger.warning(
                        "commit refused: another worker committed some of these records first; reading them again",
                        metadata: ["error": "\(error)"])
                    try await Task.sleep(for: .milliseconds(100))
                } catch {
                    // Before its reader opened, a start-over's attempt treats any retryable
                    // failure as more of the same outage (the state store or sink may be down
                    // with the source); after, only what ``StartOverFromCheckpoint`` says.
                    guard let startOver = Self.startOver(error, restarting: outage != nil && !opened.isSet) else { throw error }
                    // What was read and written safely before the failure is committed (the
                    // consumer commits before it ends); a new reader and writer start from that
                    // checkpoint, as a new process would, once the source or sink is back.
                    // Start-overs in a row without a record committed between them wait longer
                    // each time, up to `max_delay`; a finite source gives up after `max_outage`.
                    totals = totalsSoFar
                    let committed = status.snapshot.recordsCommitted
                    if let o = outage, o.committed == committed {
                        outage = (o.breaks + 1, o.since, committed)
                    } else {
                        outage = (1, .now, committed)
                    }
                    let o = outage!
                    if !plan.source.isContinuous, ContinuousClock.now - o.since >= plan.settings.retry.maxOutage {
                        logger.error(
                            "giving up: the \(startOver.stage) has failed for longer than retry.max_outage",
                            metadata: ["max_outage": "\(plan.settings.retry.maxOutage)", "attempts": "\(o.breaks)"])
                        throw startOver.cause
                    }
                    let delay = plan.settings.retry.delay(attempt: o.breaks, retryAfter: startOver.cause.retryAfter)
                    let trouble = "\(startOver.cause)"
                    status.update {
                        if startOver.stage == "source" { $0.sourceTrouble = trouble } else { $0.sinkTrouble = trouble }
                    }
                    metrics.retries.increment()
                    logger.warning(
                        "the \(startOver.stage) failed; what was committed stays; starting over from the checkpoint",
                        metadata: ["error": "\(startOver.cause)", "attempt": "\(o.breaks)", "delay": "\(delay)"])
                    do {
                        try await cancelWhenGracefulShutdown { try await Task.sleep(for: delay) }
                    } catch is CancellationError {
                        logger.info("stopping while waiting to start over; everything committed stays")
                        status.update {
                            $0.sourceTrouble = nil
                            $0.sinkTrouble = nil
                        }
                        break
                    }
                }
            }
            try await store.finishRun(id: runID, status: .succeeded, totals: totals, message: nil, at: Date())
            metrics.run(result: "succeeded")
            status.update {
                $0.finished = true
                $0.sourceTrouble = nil
                $0.sinkTrouble = nil
            }
            logger.info(
                "pipeline finished",
                metadata: [
                    "records_in": "\(totals.recordsIn)", "records_out": "\(totals.recordsOut)",
                    "dead_lettered": "\(totals.deadLettered)", "duplicates": "\(totals.duplicates)",
                ])
            return totals
        } catch {
            totals = totalsSoFar
            try? await store.finishRun(id: runID, status: .failed, totals: totals, message: "\(error)", at: Date())
            metrics.run(result: "failed")
            status.update {
                $0.finished = true
                $0.failed = true
            }
            throw error
        }
    }

    /// The start-over `error` asks for, if it does (see ``StartOverFromCheckpoint``): a
    /// retryable failure of the source after it had started, a sink's file lost to a transient
    /// failure, or any retryable failure while starting over (the state store or sink may be
    /// down with the source).
    static func startOver(_ error: any Error, restarting: Bool) -> StartOverFromCheckpoint? {
        if let startOver = error as? StartOverFromCheckpoint { return startOver }
        guard restarting, !(error is CancellationError) else { return nil }
        let e = SluiceError.classify(error)
        return e.isRetryable ? StartOverFromCheckpoint(stage: "source", cause: e) : nil
    }

    /// The totals reported so far (the run's status), for a run that ends or starts over early.
    var totalsSoFar: RunTotals {
        let snapshot = status.snapshot
        var totals = RunTotals()
        totals.recordsIn = snapshot.recordsIn
        totals.recordsOut = snapshot.recordsOut
        totals.deadLettered = snapshot.deadLettered
        totals.duplicates = snapshot.duplicates
        return totals
    }

    /// One attempt at the run; `carried` are the totals of attempts before it (see ``run()``).
    /// `restarting`: an attempt that starts over (see ``run()``), whose reader keeps trying to
    /// open until that moment (a continuous source's for ever). `opened` is set once it has.
    private func runPipeline(
        carrying carried: RunTotals, restarting: ContinuousClock.Instant?, opened: OneWayFlag
    ) async throws -> RunTotals {
        let writer = try await plan.sink.makeWriter(context: SinkContext(pipeline: plan.name, state: store, logger: logger, requests: plan.requests))
        let checkpoint: Checkpoint
        let schemaGuard: SchemaGuard?
        do {
            checkpoint = try await store.checkpoint(pipeline: plan.name)
            schemaGuard = try await makeSchemaGuard()
        } catch {
            await writer.close()  // a start-over makes a new one (its connections must not pile up)
            throw error
        }
        let buffer = BoundedBuffer<SourceBatch>(maxCount: plan.settings.bufferBatches, maxBytes: plan.settings.bufferBytes)
        let context = sourceContext
        let exhausted = OneWayFlag()
        let consumed = Latch()
        let source = plan.source
        let logger = self.logger
        let status = self.status
        return try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                do {
                    try await cancelWhenGracefulShutdown {
                        let reader = try await openReader(source, resumingFrom: checkpoint, context: context, until: restarting)
                        opened.set()
                        status.update { $0.sourceTrouble = nil }
                        do {
                            while var batch = try await reader.next() {
                                if let schemaGuard { batch = try await schemaGuard.apply(batch) }
                                try await buffer.send(batch, bytes: batch.records.byteSize + batch.inputBytes / 4)
                            }
                        } catch {
                            // What was read before the failure is still committed by the
                            // consumer; the reader closes after that commit (its acknowledgements
                            // need the connection, and a queue must not hand those messages on).
                            if error is CancellationError {
                                buffer.finish()
                            } else {
                                buffer.finish(throwing: StartOverFromCheckpoint.wrapping(error, stage: "source"))
                            }
                            await consumed.wait()
                            await reader.close()
                            throw error
                        }
                        exhausted.set()
                        // The reader stays open until the last commit is made: a source that
                        // acknowledges upstream after commits (a queue, a replication slot) still
                        // needs its connection for the final one.
                        buffer.finish()
                        await consumed.wait()
                        await reader.close()
                    }
                    buffer.finish()
                } catch is CancellationError {
                    logger.info("stopping: no more input will be read; committing what was read")
                    buffer.finish()
                } catch {
                    // A failure to open is retried by `openReader`; one after is a break (``run()``).
                    let failure = opened.isSet ? StartOverFromCheckpoint.wrapping(error, stage: "source") : error
                    let e = SluiceError.classify(error)
                    metrics.error(stage: "source", kind: e.code.description, retryable: failure is StartOverFromCheckpoint)
                    buffer.finish(throwing: failure)
                }
            }
            var consumer = Consumer(runner: self, writer: writer, exhausted: exhausted)
            consumer.totals = carried
            do {
                try await consumer.consume(buffer)
                consumed.open()
                try await group.waitForAll()
            } catch {
                consumed.open()
                group.cancelAll()
                await consumer.forwarder?.release()
                await writer.close()
                throw error
            }
            await writer.close()
            return consumer.totals
        }
    }

    /// Opens the source's reader. A retryable failure (a server down or restarting, a connection
    /// that broke while the source set itself up) is retried with the pipeline's `retry` backoff:
    /// a continuous source keeps trying, at most every `max_delay`; a finite one gives up after
    /// `max_attempts` at its start, and at `until` when it starts over after a break (see
    /// ``run()``). Anything else stops the pipeline.
    func openReader(
        _ source: any Source, resumingFrom checkpoint: Checkpoint, context: SourceContext, until deadline: ContinuousClock.Instant? = nil
    ) async throws -> any SourceReader {
        let retry = plan.settings.retry
        var attempt = 0
        while true {
            do {
                return try await source.makeReader(resumingFrom: checkpoint, context: context)
            } catch let error as SluiceError where error.isRetryable {
                metrics.error(stage: "source", kind: error.code.description, retryable: true)
                attempt += 1
                let persisting = deadline.map { ContinuousClock.now < $0 } ?? false
                guard persisting || source.isContinuous || attempt < retry.maxAttempts else { throw error }
                let delay = retry.delay(attempt: attempt, retryAfter: error.retryAfter)
                status.update { $0.sourceTrouble = "could not start: \(error)" }
                logger.warning(
                    "the source could not start; retrying",
                    metadata: [
                        "error": "\(error)", "attempt": "\(attempt)", "delay": "\(delay)",
                    ])
                try await Task.sleep(for: delay)
            }
        }
    }

    /// The context sources get: the state store, the logger, and progress reporting into ``status``.
    var sourceContext: SourceContext {
        let status = self.status
        var context = SourceContext(pipeline: plan.name, state: store, logger: logger, commits: commitLog, hooks: hooks) { progress in
            status.update {
                $0.bytesDone = progress.bytesDone
                $0.bytesTotal = progress.bytesTotal
                $0.recordsTotal = progress.recordsTotal
            }
        }
        context.requests = plan.requests
        context.schema = plan.settings.schema
        context.schemaDetection = plan.settings.schemaDetection
        context.reportSchemaDrift = { status.update { $0.schemaDrifts += 1 } }
        context.reportLag = { value, unit in status.update { $0.lag = (value, unit) } }
        let metrics = self.metrics
        context.reportPull = { started, interval in
            metrics.pulled(at: started)
            status.update {
                $0.lastPull = started
                $0.pullInterval = interval
            }
        }
        return context
    }

    /// Drift detection and the `schema:` policy, when the state store holds a schema registry.
    func makeSchemaGuard() async throws -> SchemaGuard? {
        guard plan.settings.schemaDetection else { return nil }
        guard let registryStore = store.schemaRegistry else {
            if plan.settings.schema != nil {
                throw SluiceError(
                    .configuration, "`schema:` needs a state store with a schema registry (the SQLite one has it)",
                    location: "pipelines.\(plan.name).schema")
            }
            return nil
        }
        let schemaGuard = SchemaGuard(
            registry: SchemaRegistry(store: registryStore), pipeline: plan.name,
            settings: plan.settings.schema, logger: logger)
        let status = self.status
        schemaGuard.onDrift = { status.update { $0.schemaDrifts += 1 } }
        schemaGuard.onVersion = { v in status.update { $0.schemaVersion = v } }
        do {
            try await schemaGuard.start()
        } catch  where plan.settings.schema == nil {
            // Detection only: the registry is a record of shapes, never a reason to stop.
            logger.warning("schema detection is off for this run", metadata: ["error": "\(error)"])
            return nil
        }
        return schemaGuard
    }

    /// The consuming half: owns the sink writer, the batcher, dedupe and the tracker.
    struct Consumer {
        let runner: PipelineRunner
        let writer: any SinkWriter
        /// Set by the source task when the reader ran out (not when it was stopped).
        let exhausted: OneWayFlag
        /// True for the commit that ends a pass of an extract (a `replace` sink swaps then).
        var extractComplete = false
        var batcher: Batcher
        var dedupe: Deduplicator?
        var dedupeFilterLogged = false
        var dedupeGroupReadingsLogged = 0
        /// What waits to be committed, and the commit protocol's next step.
        var commits = CommitSequence()
        var lastCommit = ContinuousClock.now
        /// When expired dedupe keys were last deleted (nil: not yet in this run).
        var lastSweep: ContinuousClock.Instant?
        /// When the dead-letter gauges were last read from the state store.
        var lastDeadLetterRefresh: ContinuousClock.Instant?
        var deadLetterGaugesStale = false
        /// In-memory bytes of the records written since the last commit (the output size of
        /// sinks that do not publish files).
        var uncommittedOutputBytes = 0
        /// Rows the sink refused (dead-lettered) since the last commit: written, but in no file.
        var uncommittedSinkRejects = 0
        /// Origins of the batches read and not yet committed, by sequence (end-to-end latency).
        var origins: [(sequence: UInt64, origin: Date)] = []
        /// The missing-data check: every record read is written, dead-lettered or deduplicated.
        var ledger = ReconciliationLedger()
        /// The Hive partitions of the sink's output (nil: not a partitioned lake, or not read yet).
        var lakePartitions: Set<String>?
        var lakePartitionsRead = false
        /// Gaps in a declared sequence (`reconcile:`).
        var sequenceGaps: SequenceGapCounter?
        /// Records accepted so far in this process (the test hook that drops one counts them).
        var recordsAccepted = 0
        var totals = RunTotals()

        init(runner: PipelineRunner, writer: any SinkWriter, exhausted: OneWayFlag) {
            self.runner = runner
            self.writer = writer
            self.exhausted = exhausted
            batcher = Batcher(settings: runner.plan.settings.batch)
            dedupe = runner.plan.settings.dedupe.map {
                Deduplicator(settings: $0, pipeline: runner.plan.name, store: runner.store)
            }
            sequenceGaps = runner.plan.settings.reconcile.map { SequenceGapCounter(field: $0.sequence, keyField: $0.key, maxKeys: $0.maxKeys) }
            forwarder = runner.plan.deadLetterSink.map {
                DeadLetterForwarder(pipeline: runner.plan.name, sink: $0, store: runner.store, logger: runner.logger)
            }
        }

        /// Copies dead letters to the pipeline's dead-letter sink, if it has one.
        let forwarder: DeadLetterForwarder?
        /// A copy to the dead-letter sink failed: the next commit tries again.
        var forwardPending = false

        var metrics: PipelineMetrics { runner.metrics }

        mutating func consume(_ buffer: BoundedBuffer<SourceBatch>) async throws {
            try await sweepExpiredKeysIfDue()
            await refreshDeadLetterGauges()
            lastDeadLetterRefresh = nil  // the first commit's dead letters show at once
            await forwarder?.forward()  // what a previous run left
            var failure: (any Error)?
            loop: while true {
                let event: BufferEvent<SourceBatch>
                do {
                    event = try await buffer.next(timeout: timeUntilNextLook())
                } catch {
                    failure = error
                    break loop
                }
                runner.metrics.bufferDepth.record(buffer.depth)
                let busy = ContinuousClock.now
                defer { runner.metrics.processingSeconds.increment(by: AlertRule.seconds(ContinuousClock.now - busy)) }
                switch event {
                case let .element(batch):
                    try await accept(batch)
                    if batcher.isFull { try await flush() }
                    if batch.commitSoon && !batch.endsPass {
                        try await flush()
                        try await commit()
                    }
                    if batch.endsPass {
                        // One pass of a repeating extract is complete: commit it as such now.
                        try await flush()
                        extractComplete = true
                        try await commit()
                        extractComplete = false
                    }
                case .timeout:
                    // A wait cut short to look for a commit request flushes only a batch that is due.
                    if runner.commitRequest?.isRequested == true || (batcher.timeUntilDue(now: .now) ?? .zero) <= .zero {
                        try await flush()
                    }
                case .finished:
                    break loop
                }
                if shouldCommit() {
                    try await flush()
                    try await commit()
                }
            }
            try await flush()
            extractComplete = failure == nil && exhausted.isSet
            try await commit()
            await saveDedupeFilter(final: true)
            await forwarder?.close()
            if let failure { throw failure }
        }

        /// How long to wait for the source before flushing or committing: until the batch is
        /// due, else until the commit is; while records wait to be written or committed, not
        /// longer than a commit request's poll (a request made during the wait is seen then).
        func timeUntilNextLook() -> Duration? {
            let due = batcher.timeUntilDue(now: .now) ?? timeUntilCommitDue()
            guard runner.commitRequest != nil, commits.hasPending || batcher.timeUntilDue(now: .now) != nil else { return due }
            return min(due ?? CommitRequest.pollInterval, CommitRequest.pollInterval)
        }

        func timeUntilCommitDue() -> Duration? {
            guard commits.hasPending else { return nil }
            return max(.milliseconds(10), writer.commitInterval - (ContinuousClock.now - lastCommit))
        }

        func shouldCommit() -> Bool {
            guard commits.hasPending else { return false }
            let now = ContinuousClock.now
            return runner.commitRequest?.isRequested == true || writer.commitDue(at: now)
                || commits.deadLetters.count >= runner.maxPendingDeadLetters
                || now - lastCommit >= writer.commitInterval || (dedupe?.pendingCount ?? 0) >= Deduplicator.maxPendingKeys
        }

        mutating func accept(_ batch: SourceBatch) async throws {
            let sequence = commits.accepted(batch.position)
            let rows = batch.records.count
            if rows > 0 {
                let eventTime = runner.plan.settings.eventTime.flatMap { Self.oldest($0, in: batch.records) }
                origins.append((sequence, eventTime ?? batch.originTime ?? Date()))
            }
            metrics.recordsIn.increment(by: rows + batch.rejects.count)
            metrics.bytesIn.increment(by: batch.inputBytes)
            metrics.batches.increment()
            totals.recordsIn += rows + batch.rejects.count
            ledger.read(sequence, position: batch.position, records: rows + batch.rejects.count)
            ledger.settle(sequence, batch.rejects.count)
            if sequenceGaps != nil, rows > 0 {
                // Records dead-lettered on the way in may be the numbers that look skipped: a
                // batch with any is remembered but not counted.
                let (missing, examples) = sequenceGaps!.gaps(in: batch.records, count: batch.rejects.isEmpty)
                if missing > 0 { reportMissing(missing, check: "sequence_gap", at: batch.position, detail: examples.joined(separator: ", ")) }
            }
            addDeadLetters(batch.rejects)
            if let tap = runner.tap, tap.isActive {
                tap.offer(pipeline: runner.plan.name, stage: .source) { TapHub.lines(batch.records) }
            }
            var records = batch.records
            if dedupe != nil {
                // Mutated in place: a copy would copy its set of pending keys on every batch.
                let keyRuns = batch.keyRunsAreUnits && dedupe!.settings.key == runner.plan.source.implicitDedupeKey
                let (kept, duplicates, rejects) = try await dedupe!.filter(
                    records, sequence: sequence, position: batch.position, now: Date(),
                    keyRuns: keyRuns, unitBreaks: batch.unitBreaks)
                records = kept
                if !dedupeFilterLogged, dedupe!.filterLoads + dedupe!.filterBuilds > 0 {
                    dedupeFilterLogged = true
                    runner.logger.info(
                        dedupe!.filterLoads > 0 ? "dedupe filter taken from the state store" : "dedupe filter built from the stored keys",
                        metadata: ["bytes": "\(dedupe!.filterBytes)"])
                }
                if dedupe!.groupReadings > dedupeGroupReadingsLogged {
                    dedupeGroupReadingsLogged = dedupe!.groupReadings
                    runner.logger.info(
                        "dedupe lookups grouped by run: a key is looked up only in the runs that may hold it",
                        metadata: ["groups": "\(dedupe!.runGroupCount)", "bytes": "\(dedupe!.runGroupBytes)"])
                }
                addDeadLetters(rejects)
                totals.duplicates += duplicates
                metrics.duplicates.increment(by: duplicates)
                ledger.settle(sequence, duplicates + rejects.count)
            }
            let first = recordsAccepted
            recordsAccepted += records.count
            if let drop = runner.hooks.dropRecord, drop >= first, drop < recordsAccepted {
                // Test only: a record lost inside the runtime, which the reconciliation must catch.
                records = records.take((0..<records.count).filter { $0 != drop - first })
                runner.logger.warning("test hook: one record dropped", metadata: ["ordinal": "\(drop)"])
            }
            batcher.add(records, sequence: sequence, position: batch.position, now: .now)
            let totals = self.totals
            let inputBytes = batch.inputBytes
            runner.status.update {
                $0.recordsIn = totals.recordsIn
                $0.duplicates = totals.duplicates
                $0.deadLettered = totals.deadLettered
                $0.bytesIn += inputBytes
            }
        }

        mutating func addDeadLetters(_ letters: [DeadLetter]) {
            guard !letters.isEmpty else { return }
            if let tap = runner.tap, tap.isActive {
                tap.offer(pipeline: runner.plan.name, stage: .deadLetter) { TapHub.lines(letters) }
            }
            commits.deadLettered(letters)
            totals.deadLettered += letters.count
            var counts: [String: (stage: String, kind: String, count: Int)] = [:]
            for letter in letters {
                counts["\(letter.stage)|\(letter.errorKind)", default: (letter.stage, letter.errorKind, 0)].count += 1
            }
            for (stage, kind, count) in counts.values { metrics.deadLettered(count, stage: stage, kind: kind) }
            for letter in letters.prefix(3) {
                runner.logger.warning(
                    "record sent to the dead-letter queue",
                    metadata: [
                        "stage": "\(letter.stage)", "kind": "\(letter.errorKind)", "location": "\(letter.location)",
                        "reason": "\(letter.message)",
                    ])
            }
        }

        /// Writes everything the batcher holds, committing in between when the sink asks for it
        /// (a file reached its size), so output files stay close to their configured size.
        mutating func flush() async throws {
            guard !batcher.isEmpty else { return }
            for (records, sequence, position) in batcher.drain() {
                if records.count > 0 {
                    try await write(records, position: position)
                }
                ledger.settle(sequence, records.count)
                commits.wrote(sequence, records: records.count)
                if writer.commitDue(at: .now) { try await commit() }
            }
        }

        /// Writes one batch, retrying whole-batch failures and dead-lettering refused rows.
        /// A dead letter's location is the batch's source position and the row's index in it,
        /// which is unique across runs.
        mutating func write(_ batch: RecordBatch, position: SourcePosition) async throws {
            var current = batch
            /// Row of `current` → row of `batch` (retries write a subset).
            var originalRows = Array(0..<batch.count)
            var attempt = 1
            while true {
                let failures = try await withSinkRetry("write") { [writer] in try await writer.write(current) }
                let accepted = current.count - failures.count
                if let tap = runner.tap, tap.isActive {
                    tap.offer(pipeline: runner.plan.name, stage: .sink) { [current] in
                        TapHub.lines(failures.isEmpty ? current : current.take(Array(Set(0..<current.count).subtracting(failures.map(\.row))).sorted()))
                    }
                }
                uncommittedOutputBytes += failures.isEmpty ? current.byteSize : current.byteSize * accepted / max(current.count, 1)
                totals.recordsOut += accepted
                metrics.recordsOut.increment(by: accepted)
                if failures.isEmpty { break }
                let retryable = failures.filter(\.error.isRetryable)
                let final = attempt >= runner.plan.settings.retry.maxAttempts ? failures : failures.filter { !$0.error.isRetryable }
                let types = final.isEmpty ? nil : SluiceSchemaText.render(current.schema)
                addDeadLetters(
                    final.map { failure in
                        DeadLetter(
                            stage: "sink", errorKind: failure.error.code.description, message: failure.error.message,
                            location: "\(position) row \(originalRows[failure.row])",
                            raw: Array(RowRendering.json(current, rows: failure.row..<failure.row + 1).utf8),
                            attempts: attempt, schema: types)
                    })
                uncommittedSinkRejects += final.count
                guard !retryable.isEmpty, attempt < runner.plan.settings.retry.maxAttempts else { break }
                let delay = runner.plan.settings.retry.delay(attempt: attempt, retryAfter: retryable.first?.error.retryAfter)
                metrics.retries.increment()
                try await Task.sleep(for: delay)
                current = current.take(retryable.map(\.row))
                originalRows = retryable.map { originalRows[$0.row] }
                attempt += 1
            }
            let totals = self.totals
            runner.status.update {
                $0.recordsOut = totals.recordsOut; $0.deadLettered = totals.deadLettered
            }
        }

        /// Commits what is pending, doing what ``CommitSequence`` says step by step: the sink
        /// prepares, the state store applies the whole commit (checkpoint, dead letters, keys,
        /// intents) in one transaction, the sink publishes, the source is acknowledged.
        mutating func commit() async throws {
            let start = ContinuousClock.now
            let committedThrough = commits.written.max()
            // Only keys of batches this commit covers: a commit in the middle of a flush must not
            // record keys of batches still to be written (a crash would then drop them as duplicates).
            let keys: (keys: [DedupeHash], checkedThrough: Int64?) = commits.written.last.map { dedupe?.takePending(through: $0) ?? ([], nil) } ?? ([], nil)
            guard
                var action = commits.begin(
                    pipeline: runner.plan.name, extractComplete: extractComplete,
                    dedupeTTL: runner.plan.settings.dedupe?.ttl, dedupeKeys: keys.keys, dedupeCheckedThrough: keys.checkedThrough, dedupeWriter: dedupe?.writer)
            else { return }
            var refusal: SluiceError?
            while true {
                switch action {
                case let .prepare(unprepared):
                    // The sink sees the whole commit: a sink that stores the checkpoint with its
                    // data (PostgreSQL) commits both in its own transaction.
                    let prepared = try await withSinkRetry("commit") { [writer] in
                        var c = unprepared
                        try await writer.prepareCommit(&c)
                        return c
                    }
                    action = commits.prepared(prepared)
                    if let delay = runner.commitPhaseDelay { try? await Task.sleep(for: delay) }
                    // The sink holds the data, the state store does not know yet: a crash test's
                    // surest moment (`SLUICE_TEST_HOLD=commit-prepared=…`).
                    try await runner.hooks.hold(at: PipelineRunner.holdCommitPrepared, logger: runner.logger)
                case let .apply(prepared):
                    do {
                        try await withSinkRetry("state commit") { [store = runner.store] in try await store.commit(prepared) }
                        action = commits.applied()
                        if let delay = runner.commitPhaseDelay { try? await Task.sleep(for: delay) }
                    } catch let error as SluiceError where error.code == .conflict {
                        refusal = error
                        action = commits.refused()
                    }
                case let .abort(discardedRecords):
                    await writer.abortCommit()
                    metrics.conflicts.increment()
                    totals.recordsOut -= discardedRecords  // written again when read again
                    let recordsOut = totals.recordsOut
                    runner.status.update { $0.recordsOut = recordsOut }
                    throw refusal ?? SluiceError(.conflict, "the state store refused the commit")
                case .publish:
                    try await withSinkRetry("publish") { [writer] in try await writer.finishCommit() }
                    action = commits.published()
                case let .acknowledge(positions):
                    do {
                        try await runner.plan.source.committed(positions, context: runner.sourceContext)
                    } catch {
                        runner.logger.warning("the source could not acknowledge the commit; the next commit retries", metadata: ["error": "\(error)"])
                    }
                    action = commits.acknowledged()
                case let .done(commit):
                    // After the acknowledgement: a repeating extract's next pass must see it (rows marked processed).
                    runner.commitLog.record(commit.checkpoint)
                    lastCommit = .now
                    let now = Date()
                    metrics.commits.increment()
                    metrics.lastCommitTime.record(now.timeIntervalSince1970)
                    let committedBytes = commit.fileIntents.isEmpty ? uncommittedOutputBytes : commit.fileIntents.reduce(0) { $0 + $1.bytes }
                    runner.status.update {
                        $0.bytesOut += committedBytes
                        $0.storageBytes += commit.fileIntents.reduce(0) { $0 + $1.bytes }
                        $0.recordsCommitted += commit.records
                        $0.sinkTrouble = nil  // the sink and the state store work again
                    }
                    if commit.fileIntents.isEmpty {
                        metrics.outputBytes.increment(by: uncommittedOutputBytes)
                    } else {
                        metrics.filesWritten.increment(by: commit.fileIntents.count)
                        metrics.outputBytes.increment(by: commit.fileIntents.reduce(0) { $0 + $1.bytes })
                        let written = Set(commit.fileIntents.map { Self.partition(of: $0.finalPath) }).subtracting([""])
                        metrics.partitionsWritten.increment(by: written.count)
                        if !lakePartitionsRead {
                            lakePartitionsRead = true
                            lakePartitions = await writer.lakePartitions()
                        }
                        if lakePartitions != nil {
                            lakePartitions!.formUnion(written)
                            metrics.lakePartitions.record(lakePartitions!.count)
                        }
                        let inFiles = commit.fileIntents.reduce(0) { $0 + $1.records }
                        let accepted = commit.records - uncommittedSinkRejects
                        if inFiles != accepted {
                            reportMissing(
                                accepted - inFiles, check: "sink_rows", at: nil,
                                detail: "\(accepted) records accepted by the sink, \(inFiles) in its files")
                        }
                    }
                    uncommittedOutputBytes = 0
                    uncommittedSinkRejects = 0
                    var latencies: [Int] = []
                    if let committedThrough {
                        while let first = origins.first, first.sequence <= committedThrough {
                            origins.removeFirst()
                            let latency = max(0, now.timeIntervalSince(first.origin))
                            latencies.append(PipelineMetrics.latencyBucket(seconds: latency))
                            metrics.endToEndLatency.record(duration: .milliseconds(Int64(latency * 1000)))
                        }
                        for gap in ledger.close(through: committedThrough) {
                            reportMissing(
                                gap.missing, check: "ledger", at: gap.position,
                                detail: "read, but neither written, dead-lettered nor dropped as duplicates")
                        }
                    }
                    runner.status.update {
                        $0.lastCommit = now
                        for bucket in latencies { $0.latencyBuckets[bucket] += 1 }
                    }
                    if !commit.deadLetters.isEmpty { deadLetterGaugesStale = true }
                    if deadLetterGaugesStale { await refreshDeadLetterGauges() }
                    metrics.commitLatency.record(duration: ContinuousClock.now - start)
                    metrics.checkpointLag.record(commits.inFlight)
                    if !commit.deadLetters.isEmpty || forwardPending {
                        // Only after commits that filed dead letters (and until a failed copy succeeds).
                        forwardPending = await forwarder?.forward() == false
                    }
                    try await sweepExpiredKeysIfDue()
                    await saveDedupeFilter(final: false)
                    runner.logger.debug("committed", metadata: ["checkpoint": "\(commit.checkpoint)", "records": "\(commit.records)"])
                    return
                }
            }
        }

        /// Saves the dedupe filter when it is due (``Deduplicator/saveFilterIfDue(final:)``).
        /// A failure costs the next start time, not exactness: it is logged.
        mutating func saveDedupeFilter(final: Bool) async {
            guard dedupe != nil else { return }
            do {
                let saves = dedupe!.filterSaves
                try await dedupe!.saveFilterIfDue(final: final)
                if dedupe!.filterSaves > saves { runner.logger.info("dedupe filter saved", metadata: ["bytes": "\(dedupe!.filterBytes)"]) }
            } catch {
                runner.logger.warning(
                    "the dedupe filter could not be saved; the next start reads the stored keys instead",
                    metadata: ["error": "\(error)"])
            }
        }

        /// Counts records found missing by a reconciliation `check`, and says where.
        func reportMissing(_ count: Int, check: String, at position: SourcePosition?, detail: String) {
            let n = count.magnitude > UInt(1 << 40) ? 1 << 40 : Int(count.magnitude)
            metrics.missing(n, check: check)
            runner.status.update { $0.missingRecords = $0.missingRecords > Int.max - n ? Int.max : $0.missingRecords + n }
            var metadata: Logger.Metadata = ["check": "\(check)", "records": "\(count)", "detail": "\(detail)"]
            if let position { metadata["position"] = "\(position)" }
            runner.logger.error("records missing", metadata: metadata)
        }

        /// The Hive partition of a published file's path: its `key=value` directories ("" when none).
        static func partition(of path: String) -> String {
            path.split(separator: "/").dropLast().filter { $0.contains("=") }.joined(separator: "/")
        }

        /// The oldest value of timestamp column `name` in `records`, nil when there is none.
        static func oldest(_ name: String, in records: RecordBatch) -> Date? {
            guard let index = records.schema.index(of: name) else { return nil }
            let column = records.columns[index]
            guard column.type == .timestamp, case let .int64(values) = column.storage else { return nil }
            var oldest = Int64.max
            for row in 0..<column.count where column.validity?[row] ?? true { oldest = min(oldest, values[row]) }
            return oldest == .max ? nil : Date(timeIntervalSince1970: Double(oldest) / 1_000_000)
        }

        /// The dead-letter queue's size and oldest age, from the state store: at start, then after
        /// commits that dead-lettered records, at most once a second (a flood of bad records
        /// commits often; a skipped refresh happens at the next commit). A failed read leaves the
        /// gauges as they were: it must never fail a commit that already happened.
        mutating func refreshDeadLetterGauges() async {
            if let last = lastDeadLetterRefresh, ContinuousClock.now - last < .seconds(1) { return }
            lastDeadLetterRefresh = .now
            deadLetterGaugesStale = false
            do {
                let groups = try await runner.store.deadLetterStats(matching: DeadLetterFilter(pipeline: runner.plan.name), now: Date())
                let count = groups.reduce(0) { $0 + $1.count }
                var byReason: [String: Int] = [:]
                for g in groups { byReason["\(g.stage)/\(g.kind)", default: 0] += g.count }
                metrics.deadLetterQueueSize.record(count)
                metrics.deadLetterOldestAge.record(groups.map(\.oldest).min().map { Date().timeIntervalSince($0) } ?? 0)
                runner.status.update {
                    $0.deadLetterQueue = count
                    $0.deadLetterReasons = byReason
                }
            } catch {
                deadLetterGaugesStale = true
                runner.logger.debug("could not read the dead-letter queue's size", metadata: ["error": "\(error)"])
            }
        }

        /// Deletes dedupe keys older than the TTL, and dead letters beyond the pipeline's
        /// retention: at start, then at most every ten minutes.
        mutating func sweepExpiredKeysIfDue() async throws {
            if let lastSweep, ContinuousClock.now - lastSweep < .seconds(600) { return }
            lastSweep = .now
            let settings = runner.plan.settings
            // Without retention the sweep still tidies what a store keeps beside its dead letters
            // (the embedded store's location index of letters replayed or dropped since).
            let before = settings.deadLetterTTL.map { Date().addingTimeInterval(-AlertRule.seconds($0)) }
            do {
                let removed = try await runner.store.sweepDeadLetters(pipeline: runner.plan.name, before: before, keepNewest: settings.deadLetterMaxRows)
                if removed > 0 {
                    runner.logger.info("dead letters removed by retention", metadata: ["count": "\(removed)"])
                    deadLetterGaugesStale = true
                }
            } catch {
                // Retention is housekeeping: a failed sweep is tried again at the next one.
                runner.logger.warning("could not sweep the dead-letter queue", metadata: ["error": "\(error)"])
            }
            guard let settings = runner.plan.settings.dedupe else { return }
            let cutoff = Date().addingTimeInterval(-Double(settings.ttl.components.seconds))
            do {
                let removed = try await runner.store.sweepKeys(pipeline: runner.plan.name, before: cutoff)
                if removed > 0 { runner.logger.info("expired dedupe keys removed", metadata: ["count": "\(removed)"]) }
            } catch {
                // Housekeeping too: an expired key still counts as expired when it is looked up.
                runner.logger.warning("could not sweep expired dedupe keys", metadata: ["error": "\(error)"])
            }
        }

        /// Retries retryable failures with backoff. After `max_attempts` the pipeline keeps waiting
        /// at `max_delay` (the source is not pulled meanwhile) rather than dead-lettering
        /// everything; non-retryable failures stop the pipeline.
        func withSinkRetry<T>(_ what: String, _ body: () async throws -> T) async throws -> T {
            var attempt = 1
            while true {
                do {
                    let result = try await body()
                    if attempt > 1 { runner.status.update { $0.sinkTrouble = nil } }
                    return result
                } catch let startOver as StartOverFromCheckpoint {
                    metrics.error(stage: what == "state commit" ? "state" : "sink", kind: startOver.cause.code.description, retryable: true)
                    throw startOver  // the writer cannot retry this in place (``run()`` starts over)
                } catch {
                    let e = SluiceError.classify(error)
                    if !(error is CancellationError), e.code != .conflict {
                        metrics.error(
                            stage: what == "state commit" ? "state" : "sink", kind: e.code.description, retryable: e.isRetryable && !Task.isCancelled)
                    }
                    guard e.isRetryable, !Task.isCancelled else { throw e }
                    let policy = runner.plan.settings.retry
                    let delay = attempt >= policy.maxAttempts ? policy.maxDelay : policy.delay(attempt: attempt, retryAfter: e.retryAfter)
                    runner.logger.warning(
                        "\(what) failed; retrying",
                        metadata: [
                            "attempt": "\(attempt)", "delay": "\(delay)", "error": "\(e)",
                            "paused": "\(attempt >= policy.maxAttempts)",
                        ])
                    metrics.retries.increment()
                    runner.status.update { $0.sinkTrouble = "\(what): \(e)" }
                    try await Task.sleep(for: delay)
                    attempt += 1
                }
            }
        }
    }
}


/// Opens once; `wait()` returns when it is open (the consumer's last commit is done).
final class Latch: Sendable {
    private let state = Mutex<(open: Bool, waiters: [CheckedContinuation<Void, Never>])>((false, []))

    func open() {
        let waiters = state.withLock { s in
            s.open = true
            defer { s.waiters = [] }
            return s.waiters
        }
        for w in waiters { w.resume() }
    }

    func wait() async {
        await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
            let ready = state.withLock { s in
                if s.open { return true }
                s.waiters.append(c)
                return false
            }
            if ready { c.resume() }
        }
    }
}

/// A flag that is set once and never cleared (the source ran out; the alert engine must stop).
final class OneWayFlag: Sendable {
    private let value = Mutex(false)
    func set() { value.withLock { $0 = true } }
    var isSet: Bool { value.withLock { $0 } }
}
