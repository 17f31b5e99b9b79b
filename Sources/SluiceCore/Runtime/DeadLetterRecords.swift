import Foundation

/// Dead letters as records: the columns of `sluice dlq export` and of a pipeline's dead-letter
/// sink (`dead_letter: { sink: … }`).
public enum DeadLetterRecords {
    public static let schema = Schema([
        Field("id", .int64, nullable: false), Field("pipeline", .string, nullable: false), Field("stage", .string, nullable: false),
        Field("kind", .string, nullable: false), Field("location", .string, nullable: false), Field("message", .string, nullable: false),
        Field("attempts", .int64, nullable: false), Field("first_seen", .timestamp, nullable: false),
        Field("last_seen", .timestamp, nullable: false), Field("raw", .binary, nullable: false), Field("schema", .string),
    ])

    public static func batch(_ letters: [StoredDeadLetter]) -> RecordBatch {
        var columns = schema.fields.map { ColumnBuilder(type: $0.type) }
        for l in letters {
            columns[0].append(l.id)
            columns[1].append(string: l.pipeline)
            columns[2].append(string: l.letter.stage)
            columns[3].append(string: l.letter.errorKind)
            columns[4].append(string: l.letter.location)
            columns[5].append(string: l.letter.message)
            columns[6].append(Int64(l.letter.attempts))
            columns[7].append(Int64((l.firstSeen.timeIntervalSince1970 * 1_000_000).rounded()))
            columns[8].append(Int64((l.lastSeen.timeIntervalSince1970 * 1_000_000).rounded()))
            columns[9].appendBytes(l.letter.raw)
            if let schema = l.letter.schema { columns[10].append(string: schema) } else { columns[10].appendNull() }
        }
        return RecordBatch(schema: schema, columns: columns.indices.map { columns[$0].finish() })
    }
}
