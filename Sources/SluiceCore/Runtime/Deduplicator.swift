import Foundation

/// Idempotent ingestion: drops records whose key was accepted within the TTL.
///
/// Keys accepted since the last commit are held in memory and written with that commit,
/// in the same transaction as the checkpoint: after a crash, replayed records are not
/// mistaken for duplicates of records that were never committed.
struct Deduplicator {
    let settings: DedupeSettings
    let pipeline: String
    let store: any StateStore
    /// Keys accepted since the last commit.
    private(set) var pendingKeys: [String] = []
    private var pendingSet: Set<String> = []

    init(settings: DedupeSettings, pipeline: String, store: any StateStore) {
        self.settings = settings
        self.pipeline = pipeline
        self.store = store
    }

    /// Returns the batch without duplicates, the number dropped, and dead letters for rows
    /// whose key cannot be built.
    mutating func filter(_ batch: RecordBatch, position: SourcePosition, now: Date)
        async throws -> (RecordBatch, duplicates: Int, rejects: [DeadLetter]) {
        guard batch.count > 0 else { return (batch, 0, []) }
        let indices = settings.key.map { batch.schema.index(of: $0) }
        if let missing = zip(settings.key, indices).first(where: { $0.1 == nil })?.0 {
            let letter = DeadLetter(stage: "dedupe", errorKind: "missing_key_field",
                                    message: "dedupe key field '\(missing)' is not in the records (fields: \(batch.schema.fields.map(\.name).joined(separator: ", "))); fix `dedupe.key`",
                                    location: "\(position) (\(batch.count) rows)", raw: Array(RowRendering.json(batch, rows: 0..<min(batch.count, 1)).utf8))
            return (RecordBatch.empty(batch.schema), 0, [letter])
        }
        let columns = indices.map { batch.columns[$0!] }
        var keys: [String] = []
        keys.reserveCapacity(batch.count)
        for row in 0..<batch.count {
            keys.append(columns.map { $0.value(at: row).description }.joined(separator: "\u{1F}"))
        }
        let since = now.addingTimeInterval(-Double(settings.ttl.components.seconds))
        var seen = Set<String>()
        let unique = Array(Set(keys).subtracting(pendingSet))
        for chunk in stride(from: 0, to: unique.count, by: 500) {
            seen.formUnion(try await store.seenKeys(pipeline: pipeline, keys: Array(unique[chunk..<min(chunk + 500, unique.count)]), since: since))
        }
        var keep: [Int] = []
        keep.reserveCapacity(batch.count)
        for (row, key) in keys.enumerated() where !seen.contains(key) && !pendingSet.contains(key) {
            pendingSet.insert(key)
            pendingKeys.append(key)
            keep.append(row)
        }
        return (batch.selecting(rows: keep), batch.count - keep.count, [])
    }

    /// Hands the pending keys to a commit and forgets them.
    mutating func takePending() -> [String] {
        defer { pendingKeys.removeAll(); pendingSet.removeAll() }
        return pendingKeys
    }
}
