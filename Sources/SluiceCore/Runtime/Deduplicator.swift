import Foundation

/// Idempotent ingestion: drops records whose key was accepted within the TTL.
///
/// Keys accepted since the last commit are held in memory, per source batch, and written with
/// the commit that covers their batch, in the same transaction as the checkpoint: after a
/// crash, replayed records are never mistaken for duplicates of records that were never
/// committed.
struct Deduplicator {
    let settings: DedupeSettings
    let pipeline: String
    let store: any DedupeKeyStore
    /// Keys accepted and not yet committed, by the sequence number of their source batch.
    private var pending: [(sequence: UInt64, keys: [String])] = []
    private var pendingSet: Set<String> = []

    init(settings: DedupeSettings, pipeline: String, store: any DedupeKeyStore) {
        self.settings = settings
        self.pipeline = pipeline
        self.store = store
    }

    /// Returns the batch without duplicates, the number dropped, and dead letters (one per row)
    /// when the key cannot be built.
    /// `lookUp: false` skips the state store (see ``SourceBatch/keysAreNew``); keys accepted
    /// earlier in this run are still dropped. `keyRuns: true` keeps or drops adjacent rows with
    /// one key together, as one record (see ``SourceBatch/keyRunsAreUnits``).
    mutating func filter(
        _ batch: RecordBatch, sequence: UInt64, position: SourcePosition, now: Date, lookUp: Bool = true,
        keyRuns: Bool = false
    )
        async throws -> (RecordBatch, duplicates: Int, rejects: [DeadLetter])
    {
        let (keep, rejects) = try await select(batch, sequence: sequence, position: position, now: now, lookUp: lookUp, keyRuns: keyRuns)
        guard let keep else { return (RecordBatch.empty(batch.schema), 0, rejects) }
        return (keep.count == batch.count ? batch : batch.take(keep), batch.count - keep.count, rejects)
    }

    /// ``filter(_:sequence:position:now:lookUp:keyRuns:)`` as the rows to keep (in order; nil
    /// with one dead letter per row when the key cannot be built).
    mutating func select(
        _ batch: RecordBatch, sequence: UInt64, position: SourcePosition, now: Date, lookUp: Bool = true,
        keyRuns: Bool = false
    ) async throws -> (keep: [Int]?, rejects: [DeadLetter]) {
        guard batch.count > 0 else { return ([], []) }
        let indices = settings.key.map { batch.schema.index(of: $0) }
        if let missing = zip(settings.key, indices).first(where: { $0.1 == nil })?.0 {
            let message =
                "dedupe key field '\(missing)' is not in the records (fields: "
                + "\(batch.schema.fields.map(\.name).joined(separator: ", "))); fix `dedupe.key`"
            let types = SluiceSchemaText.render(batch.schema)
            let letters = (0..<batch.count).map { row in
                DeadLetter(
                    stage: "dedupe", errorKind: "missing_key_field", message: message,
                    location: "\(position) row \(row)", raw: Array(RowRendering.json(batch, rows: row..<row + 1).utf8), schema: types)
            }
            return (nil, letters)
        }
        let columns = indices.map { batch.columns[$0!] }
        var keys: [String] = []
        keys.reserveCapacity(batch.count)
        for row in 0..<batch.count {
            // A run's rows share their key: encoded once.
            if keyRuns, row > 0, columns.allSatisfy({ $0.value(at: row) == $0.value(at: row - 1) }) {
                keys.append(keys[row - 1])
            } else {
                keys.append(DedupeKey.encode(columns.map { $0.value(at: row) }))
            }
        }
        let since = now.addingTimeInterval(-Double(settings.ttl.components.seconds))
        var seen = Set<String>()
        // Keys to look up: new in this batch and not accepted earlier in this run (a loop, not
        // `Set.subtracting`, which walks the whole pending set on every batch).
        var lookup = Set<String>(minimumCapacity: lookUp ? keys.count : 0)
        if lookUp { for key in keys where !pendingSet.contains(key) { lookup.insert(key) } }
        let unique = Array(lookup)
        for chunk in stride(from: 0, to: unique.count, by: 2000) {
            seen.formUnion(try await store.seenKeys(pipeline: pipeline, keys: Array(unique[chunk..<min(chunk + 2000, unique.count)]), since: since))
        }
        var keep: [Int] = [], accepted: [String] = []
        keep.reserveCapacity(batch.count)
        var previous: (key: String, kept: Bool)?
        for (row, key) in keys.enumerated() {
            if keyRuns, let p = previous, p.key == key {
                if p.kept { keep.append(row) }
                continue
            }
            let isNew = !seen.contains(key) && !pendingSet.contains(key)
            previous = (key, isNew)
            guard isNew else { continue }
            pendingSet.insert(key)
            accepted.append(key)
            keep.append(row)
        }
        if !accepted.isEmpty { pending.append((sequence, accepted)) }
        return (keep, [])
    }

    /// Hands over the keys of batches up to and including `sequence` (those the commit covers).
    mutating func takePending(through sequence: UInt64) -> [String] {
        var taken: [String] = []
        while let first = pending.first, first.sequence <= sequence {
            taken += first.keys
            for key in first.keys { pendingSet.remove(key) }
            pending.removeFirst()
        }
        return taken
    }
}

/// An unambiguous text form of a key tuple: each value tagged with its kind and length, so
/// NULL differs from the string "null", and no separator inside a value can merge two tuples.
enum DedupeKey {
    static func encode(_ values: [Value]) -> String {
        var out = ""
        for value in values {
            let (tag, text): (Character, String) =
                switch value {
                case .null: ("n", "")
                case let .binary(bytes): ("x", bytes.map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }.joined())
                case .string, .json: ("s", value.description)
                default: ("v", value.description)
                }
            out.append(tag)
            out += String(text.utf8.count)
            out.append(":")
            out += text
        }
        return out
    }
}
