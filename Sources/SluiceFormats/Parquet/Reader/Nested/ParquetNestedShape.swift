/// The shape of one nested Parquet column (a LIST, MAP or STRUCT group, or a repeated field),
/// as ``NestedRecordAssembler`` walks it to turn the levels of its leaves into JSON text.
///
/// Each node knows the definition level at which it is present (nil when it is required, so
/// that it is present whenever its parent is) and the leaves below it (indices into the
/// nested column's leaf list, in schema order). The JSON that each kind becomes:
///
/// - a leaf value: its JSON text, prepared before assembly (see ``ParquetLeafLevels``);
/// - `object`: a JSON object with the fields in schema order, every field written (`null`
///   when absent);
/// - `list`: a JSON array; a null list is `null`, an empty list `[]`, a null element `null`;
/// - `map`: a JSON object `{"k": v, …}` in file order when the keys are strings (UTF8, ENUM,
///   JSON), else an array of `{"key": k, "value": v}` objects in file order, since JSON object
///   keys are strings only. A null map is `null`, an empty map `{}` (or `[]`).
struct ParquetNestedShape: Sendable, Hashable {
    indirect enum Kind: Sendable, Hashable {
        /// A primitive leaf; `leaf` indexes the nested column's leaves.
        case value(leaf: Int)
        case object(fields: [Field])
        /// `repeatedLevel` is the definition level at which the repeated field holds at least one
        /// entry, `repetitionLevel` the repetition level of its entries.
        case list(element: ParquetNestedShape, repeatedLevel: Int, repetitionLevel: Int)
        case map(key: ParquetNestedShape, value: ParquetNestedShape, repeatedLevel: Int, repetitionLevel: Int, stringKeys: Bool)
    }

    /// A named member of an `object`.
    struct Field: Sendable, Hashable {
        var name: String
        var shape: ParquetNestedShape
    }

    var kind: Kind
    /// The definition level at which this node is present; nil when it is required.
    var presentLevel: Int?
    /// The leaves below this node, in schema order (never empty).
    var leaves: [Int]

    init(_ kind: Kind, presentLevel: Int?) {
        self.kind = kind
        self.presentLevel = presentLevel
        switch kind {
        case let .value(leaf): leaves = [leaf]
        case let .object(fields): leaves = fields.flatMap(\.shape.leaves)
        case let .list(element, _, _): leaves = element.leaves
        case let .map(key, value, _, _, _): leaves = key.leaves + value.leaves
        }
    }

    /// The Parquet structure as text for `sluice inspect`, e.g. `list<struct<a: int64, b: string>>`;
    /// `leafType` names a leaf's type.
    func describe(_ leafType: (Int) -> String) -> String {
        switch kind {
        case let .value(leaf): leafType(leaf)
        case let .object(fields): "struct<" + fields.map { "\($0.name): \($0.shape.describe(leafType))" }.joined(separator: ", ") + ">"
        case let .list(element, _, _): "list<\(element.describe(leafType))>"
        case let .map(key, value, _, _, _): "map<\(key.describe(leafType)), \(value.describe(leafType))>"
        }
    }
}
