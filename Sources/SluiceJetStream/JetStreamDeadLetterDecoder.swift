import Foundation
import SluiceCore
import SluiceFormats

extension JetStreamSource {
    /// Records refused when decoded: decoded again with the current `columns`.
    public func deadLetterDecoder() -> (any DeadLetterDecoder)? { JetStreamDeadLetterDecoder(options: options) }
}

/// Decodes the dead letters of a JetStream source again (`sluice dlq replay`): a record of a
/// packed message, or a single-record message (pretty-printed JSON too), with the current
/// `columns`; each record gets its message's stream sequence in `sequence_column`, as when it
/// was read. A whole multi-record message fails again, saying to export it and publish its
/// records again.
struct JetStreamDeadLetterDecoder: DeadLetterDecoder {
    let options: JetStreamSourceOptions

    func decode(_ letters: [StoredDeadLetter]) async throws -> (batches: [(records: RecordBatch, ids: [Int64])], failures: [(id: Int64, letter: DeadLetter)]) {
        let out = try await NDJSONLineDecoder(columns: options.decodeFields).decodeRecords(letters)
        guard let name = options.sequenceColumn else { return out }
        var sequences: [Int64: Int64] = [:]
        for l in letters {
            // `jetstream:<stream>/<subject> seq <n>[ record <k>]`
            let parts = l.letter.location.split(separator: " ")
            if let i = parts.firstIndex(of: "seq"), i + 1 < parts.count, let n = Int64(parts[i + 1]) { sequences[l.id] = n }
        }
        var batches: [(records: RecordBatch, ids: [Int64])] = []
        var failures = out.failures
        for (records, ids) in out.batches {
            guard records.schema.index(of: name) == nil else {
                batches.append((records, ids))
                continue
            }
            var column = ColumnBuilder(type: .int64)
            var missing = false
            for id in ids {
                if let n = sequences[id] { column.append(n) } else { missing = true }
            }
            if missing {
                for l in letters where ids.contains(l.id) {
                    failures.append((l.id, DeadLetterRows.again(l, kind: "unsupported", message: "the dead letter's location holds no stream sequence")))
                }
                continue
            }
            batches.append(
                (RecordBatch(schema: Schema(records.schema.fields + [Field(name, .int64, nullable: false)]), columns: records.columns + [column.finish()]), ids)
            )
        }
        return (batches, failures)
    }
}
