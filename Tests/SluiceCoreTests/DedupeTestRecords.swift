import Foundation
@testable import SluiceCore
import SluiceTesting

/// What the deduplicator's suites share: batches of one `id` column, and runs committed the way
/// another worker (or an earlier run) would.
protocol DedupeTestRecords {}

extension DedupeTestRecords {
    func batch(_ ids: some Sequence<Int64>) -> RecordBatch {
        var b = ColumnBuilder(type: .int64)
        for id in ids { b.append(id) }
        return RecordBatch(schema: Schema([Field("id", .int64)]), columns: [b.finish()])
    }

    /// A run of `ids` committed by another writer, as text keys the store hashes with the
    /// pipeline's seed.
    func commitElsewhere(_ ids: some Sequence<Int64>, to store: MemoryStateStore, at now: Date) async throws {
        var commit = StateCommit(pipeline: "p", now: now)
        commit.dedupeKeys = ids.map { DedupeKey.encode([.int64($0)]) }
        try await store.commit(commit)
    }
}
