import Foundation
import Logging
import Synchronization

/// The positions one run has committed, newest per partition. The runtime records each commit;
/// a repeating extract waits here until its previous pass is committed before it starts the
/// next one from the state store's checkpoint.
public final class CommitLog: Sendable {
    private let positions = Mutex<[String: String]>([:])

    public init() {}

    public func record(_ committed: [String: String]) {
        positions.withLock { $0.merge(committed) { $1 } }
    }

    public func isCommitted(_ position: SourcePosition) -> Bool {
        positions.withLock { $0[position.partition] == position.value }
    }

    /// The newest committed value of a partition in this run, if any.
    public func committed(_ partition: String) -> String? {
        positions.withLock { $0[partition] }
    }
}

/// Runs a finite extract again and again on a schedule, as one continuous source.
///
/// Each pass opens a fresh reader from the committed checkpoint (so workers sharing a state
/// store continue from each other's progress); the last batch of a pass is marked
/// ``SourceBatch/endsPass``. Passes never overlap: the next one starts only after the previous
/// one is committed and its due time has come. With a slotted schedule each due time is claimed
/// in the state store first; a slot another worker claimed is skipped.
public final class RepeatingReader: SourceReader {
    let schedule: ExtractSchedule
    let context: SourceContext
    let open: @Sendable (Checkpoint) async throws -> any SourceReader
    let partition: String?
    var current: (any SourceReader)?
    /// One batch of look-ahead, to know which batch is a pass's last.
    var held: SourceBatch?
    var lastEmitted: SourcePosition?
    var rowsThisPass = 0
    var due = Date()
    var idleDelay: Duration?
    /// The slot this worker claimed and is running (slotted schedules), and when it was renewed.
    var claimed: Date?
    var renewed = Date()

    /// `open` makes a reader for one pass, resuming from a checkpoint.
    public init(
        schedule: ExtractSchedule, context: SourceContext,
        open: @escaping @Sendable (Checkpoint) async throws -> any SourceReader
    ) {
        self.schedule = schedule
        self.context = context
        self.open = open
        partition = nil
        switch schedule {
        case let .every(interval):
            // The slot under way now: the first pass runs at once (unless another worker has it).
            due = schedule.next(after: Date()).addingTimeInterval(-Double(interval.components.seconds) - Double(interval.components.attoseconds) / 1e18)
        case .cron:
            due = schedule.next(after: Date())
        case .adaptive:
            due = Date()
        }
    }

    public func next() async throws -> SourceBatch? {
        while true {
            if current == nil { try await startPass() }
            guard let reader = current else { continue }
            if let slot = claimed, Date().timeIntervalSince(renewed) > scheduleLease / 6 {
                try await context.state.renewScheduledRun(pipeline: context.pipeline, slot: slot)
                renewed = Date()
            }
            if let batch = try await reader.next() {
                rowsThisPass += batch.records.count + batch.rejects.count
                let previous = held
                held = batch
                if let previous { return emit(previous) }
                continue
            }
            await reader.close()
            current = nil
            scheduleNext()
            let level: Logger.Level = rowsThisPass > 0 ? .info : .debug
            context.logger.log(
                level: level, "pull finished; waiting for the next one",
                metadata: [
                    "rows": "\(rowsThisPass)", "next": "\(ISO8601DateFormatter().string(from: due))",
                ])
            if var last = held {
                held = nil
                last.endsPass = true
                return emit(last)
            }
        }
    }

    func emit(_ batch: SourceBatch) -> SourceBatch {
        lastEmitted = batch.position
        return batch
    }

    /// Waits for the previous pass's commit and the due time, claims the slot, opens the reader.
    func startPass() async throws {
        if let last = lastEmitted {
            while !context.commits.isCommitted(last) { try await Task.sleep(for: .milliseconds(20)) }
        }
        if let slot = claimed {
            try await context.state.finishScheduledRun(pipeline: context.pipeline, slot: slot)
            claimed = nil
        }
        while true {
            let wait = due.timeIntervalSinceNow
            if wait > 0 { try await Task.sleep(for: .milliseconds(Int(wait * 1000) + 1)) }
            if !schedule.isSlotted { break }
            if try await context.state.claimScheduledRun(pipeline: context.pipeline, slot: due) {
                claimed = due
                renewed = Date()
                break
            }
            context.logger.info(
                "scheduled run taken by another worker (or one is still running); waiting for the next one",
                metadata: ["slot": "\(ISO8601DateFormatter().string(from: due))"])
            due = schedule.next(after: due)
        }
        rowsThisPass = 0
        let interval: TimeInterval? =
            switch schedule {
            case .every, .cron: schedule.next(after: due).timeIntervalSince(due)
            case let .adaptive(_, max): Double(max.components.seconds)
            }
        context.reportPull(Date(), interval)
        let checkpoint = try await context.state.checkpoint(pipeline: context.pipeline)
        context.logger.debug("extract pass starting", metadata: ["schedule": "\(schedule)"])
        current = try await open(checkpoint)
    }

    func scheduleNext() {
        switch schedule {
        case .every, .cron:
            due = schedule.next(after: max(due, Date()))
        case let .adaptive(min, max):
            // Data arrived: poll again soon. Idle: double the wait, up to the maximum.
            let delay: Duration = rowsThisPass > 0 ? min : Swift.min(max, (idleDelay ?? min) * 2)
            idleDelay = delay
            due = Date().addingTimeInterval(Double(delay.components.seconds) + Double(delay.components.attoseconds) / 1e18)
        }
    }

    public func close() async {
        await current?.close()
        current = nil
    }
}
