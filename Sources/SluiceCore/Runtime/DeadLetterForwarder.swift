import Foundation
import Logging

/// Copies a pipeline's dead letters from the state store into a sink of their own
/// (`dead_letter: { sink: … }`: a lake or a table analysts can query). The state store stays the
/// queue that `sluice dlq` reviews and replays; the sink receives every dead letter once, as the
/// state store filed it (``DeadLetterRecords``).
///
/// The state store is the outbox: letters are read in id order after each commit, written, and
/// the last id forwarded is committed as the checkpoint of `<pipeline>~dead_letters` with the
/// sink's output, by the same two-phase commit as any pipeline's. A crash at any moment neither
/// loses nor repeats one. With a shared state store, one worker forwards at a time (a lease of
/// 60 s), and a letter is forwarded once it is 10 s old, so that a worker still committing a
/// lower id is never overtaken.
///
/// Used by one task at a time (the pipeline's consumer).
final class DeadLetterForwarder: @unchecked Sendable {
    let pipeline: String
    let sink: any Sink
    let store: any StateStore
    let logger: Logger
    private var writer: (any SinkWriter)?
    /// The lease this forwarder holds (its slot), nil until claimed.
    private var claimed: Date?
    private var lastRenewal = ContinuousClock.now

    static let lease: TimeInterval = 60
    static let pageSize = 5000

    init(pipeline: String, sink: any Sink, store: any StateStore, logger: Logger) {
        self.pipeline = pipeline
        self.sink = sink
        self.store = store
        self.logger = logger
    }

    var name: String { pipeline + "~dead_letters" }

    /// Forwards what is waiting. Never throws: a failure is logged and the next call tries again
    /// (the letters stay in the state store meanwhile).
    func forward() async {
        do {
            try await forwardWaiting()
        } catch is CancellationError {
            return
        } catch {
            logger.warning(
                "could not copy dead letters to the dead-letter sink; the next commit tries again",
                metadata: ["pipeline": "\(pipeline)", "error": "\(error)"])
            await writer?.close()
            writer = nil
        }
    }

    /// Forwards what is waiting, then releases the sink and the lease.
    func close() async {
        await forward()
        await release()
    }

    /// Releases the sink (what it had not committed is discarded) and the lease.
    func release() async {
        await writer?.close()
        writer = nil
        if let claimed { try? await store.finishScheduledRun(pipeline: name, slot: claimed) }
        claimed = nil
    }

    func forwardWaiting() async throws {
        if !store.isShared {
            // One process owns an embedded store: no lease (a killed run's would block the next).
        } else if let claimed {
            if ContinuousClock.now - lastRenewal > .seconds(Self.lease / 4) {
                try await store.renewScheduledRun(pipeline: name, slot: claimed)
                lastRenewal = .now
            }
        } else {
            let slot = Date()
            // Another worker forwards this pipeline's letters.
            guard try await store.claimScheduledRun(pipeline: name, slot: slot, lease: Self.lease) else { return }
            claimed = slot
            lastRenewal = .now
        }
        if writer == nil { writer = try await sink.makeWriter(context: SinkContext(pipeline: name, state: store, logger: logger)) }
        let writer = writer!
        while true {
            let after = Int64(try await store.checkpoint(pipeline: name).partitions["id"] ?? "0") ?? 0
            var filter = DeadLetterFilter(pipeline: pipeline)
            filter.afterID = after
            if store.isShared { filter.until = Date().addingTimeInterval(-10) }
            let letters = try await store.deadLetters(matching: filter, limit: Self.pageSize)
            guard let last = letters.last else { return }
            let refused = try await writer.write(DeadLetterRecords.batch(letters))
            if !refused.isEmpty {
                logger.error(
                    "the dead-letter sink refused dead letters; they stay in the state store (`sluice dlq list`)",
                    metadata: ["pipeline": "\(pipeline)", "count": "\(refused.count)", "first": "\(refused[0].error)"])
            }
            var commit = StateCommit(pipeline: name)
            commit.checkpoint = ["id": String(last.id)]
            commit.records = letters.count - refused.count
            try await writer.prepareCommit(&commit)
            try await store.commit(commit)
            try await writer.finishCommit()
            if letters.count < Self.pageSize { return }
        }
    }
}
