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
/// loses nor repeats one. It needs the embedded state store (one process, ids in commit order):
/// the configuration refuses a dead-letter sink with a shared one.
///
/// Rows the sink refuses are skipped with an error in the log (they stay in the state store).
///
/// Used by one task at a time (the pipeline's consumer).
final class DeadLetterForwarder: @unchecked Sendable {
    let pipeline: String
    let sink: any Sink
    let store: any StateStore
    let logger: Logger
    private var writer: (any SinkWriter)?
    static let pageSize = 5000

    init(pipeline: String, sink: any Sink, store: any StateStore, logger: Logger) {
        self.pipeline = pipeline
        self.sink = sink
        self.store = store
        self.logger = logger
    }

    var name: String { pipeline + StateTables.deadLetterSinkSuffix }

    /// Forwards what is waiting; false when it could not (logged; the letters stay in the state
    /// store and the next call tries again). Never throws.
    @discardableResult
    func forward() async -> Bool {
        do {
            try await forwardWaiting()
            return true
        } catch is CancellationError {
            // A page may be written and not committed: it goes with the writer.
            await writer?.close()
            writer = nil
            return false
        } catch {
            logger.warning(
                "could not copy dead letters to the dead-letter sink; the next commit tries again",
                metadata: ["pipeline": "\(pipeline)", "error": "\(error)"])
            await writer?.close()
            writer = nil
            return false
        }
    }

    /// Forwards what is waiting, then releases the sink.
    func close() async {
        await forward()
        await release()
    }

    /// Releases the sink (what it had not committed is discarded).
    func release() async {
        await writer?.close()
        writer = nil
    }

    func forwardWaiting() async throws {
        if writer == nil { writer = try await sink.makeWriter(context: SinkContext(pipeline: name, state: store, logger: logger)) }
        let writer = writer!
        while true {
            let after = Int64(try await store.checkpoint(pipeline: name).partitions["id"] ?? "0") ?? 0
            var filter = DeadLetterFilter(pipeline: pipeline)
            filter.afterID = after
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
