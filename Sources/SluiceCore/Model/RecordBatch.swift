/// A set of rows stored column by column, all sharing one ``Schema``.
public struct RecordBatch: Sendable, Hashable {
    public let schema: Schema
    public let columns: [Column]
    public let count: Int

    public init(schema: Schema, columns: [Column]) {
        precondition(schema.count == columns.count, "schema has \(schema.count) fields, got \(columns.count) columns")
        let count = columns.first?.count ?? 0
        precondition(columns.allSatisfy { $0.count == count }, "columns of different lengths")
        self.schema = schema
        self.columns = columns
        self.count = count
    }

    public static func empty(_ schema: Schema) -> RecordBatch {
        var builders = schema.fields.map { ColumnBuilder(type: $0.type) }
        return RecordBatch(schema: schema, columns: builders.indices.map { builders[$0].finish() })
    }

    /// Approximate in-memory size in bytes.
    public var byteSize: Int { columns.reduce(0) { $0 + $1.byteSize } }

    /// The column called `name`.
    public func column(named name: String) -> Column? { schema.index(of: name).map { columns[$0] } }

    /// One row as values (slow path).
    public func row(_ i: Int) -> [Value] { columns.map { $0.value(at: i) } }

    /// A batch holding only the rows whose index is in `keep` (ascending).
    public func selecting(rows keep: [Int]) -> RecordBatch { take(keep) }

    /// Concatenates batches of one schema.
    public static func concatenate(_ batches: [RecordBatch]) -> RecordBatch {
        precondition(!batches.isEmpty)
        if batches.count == 1 { return batches[0] }
        let schema = batches[0].schema
        let total = batches.reduce(0) { $0 + $1.count }
        var builders = schema.fields.map { ColumnBuilder(type: $0.type, capacity: total) }
        for batch in batches {
            precondition(batch.schema == schema, "concatenating batches of different schemas")
            for (c, column) in batch.columns.enumerated() {
                for r in 0..<batch.count { builders[c].append(value: column.value(at: r)) }
            }
        }
        return RecordBatch(schema: schema, columns: builders.indices.map { builders[$0].finish() })
    }
}
