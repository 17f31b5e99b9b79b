import SluiceCore

/// How one top-level field of a Parquet file is read: a flat column from one column chunk, or
/// a nested column assembled from the chunks of its leaves into `json`.
enum ParquetColumnPlan {
    case flat(ParquetLeafColumn)
    case nested(ParquetNestedColumn)

    var field: Field {
        switch self {
        case let .flat(leaf): leaf.field
        case let .nested(column): column.field
        }
    }

    /// The leaf columns, one per column chunk, in file order.
    var leaves: [ParquetLeafColumn] {
        switch self {
        case let .flat(leaf): [leaf]
        case let .nested(column): column.leaves
        }
    }

    /// One plan per child of the schema root.
    static func plans(_ root: ParquetSchemaTree) throws -> [ParquetColumnPlan] {
        try root.children.map { child in
            if !child.isGroup && child.element.repetition != .repeated {
                return .flat(try ParquetLeafColumn(child.element))
            }
            return .nested(try ParquetNestedColumn(child))
        }
    }
}
