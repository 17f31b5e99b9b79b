import SluiceCore

/// A nested top-level field (a group, or a repeated field) read as one nullable `json` column:
/// its shape, and its leaf columns with the levels their paths give them.
///
/// The schema is interpreted as the Parquet format's LogicalTypes.md says, backward-compatibility
/// rules included, so the lists older writers (parquet-mr, Spark, pyarrow before 13 or with
/// `use_compliant_nested_type=False`) produce read the same as the standard ones:
///
/// - a LIST group holds one repeated field. When that field is a primitive, a group of several
///   fields, or a group of one field named `array` or `<list name>_tuple`, it is itself the
///   (required) element (the 2-level encodings); otherwise its one child is the element (the
///   standard 3-level encoding), optional or required;
/// - a MAP (or MAP_KEY_VALUE) group holds one repeated group of a key and a value;
/// - a repeated field outside a LIST or MAP is a required list of required elements;
/// - any other group is a struct.
struct ParquetNestedColumn {
    let field: Field
    let shape: ParquetNestedShape
    let leaves: [ParquetLeafColumn]

    init(_ node: ParquetSchemaTree) throws {
        var builder = Builder()
        shape = try builder.build(node, path: [], definitionLevel: 0, repetitionLevel: 0)
        guard !builder.leaves.isEmpty else {
            throw ParquetFormatError("column \(node.element.name) is a group without leaf columns", unsupported: true)
        }
        leaves = builder.leaves
        field = Field(node.element.name, .json, nullable: true)
    }

    /// The Parquet structure as text, e.g. `list<struct<a: int64, b: string>>`.
    var typeDescription: String {
        shape.describe { "\(leaves[$0].field.type)" }
    }

    private struct Builder {
        var leaves: [ParquetLeafColumn] = []

        /// The shape of `node`, whose parent is present at `definitionLevel` and repeats at
        /// `repetitionLevel`.
        mutating func build(_ node: ParquetSchemaTree, path: [String], definitionLevel d: Int, repetitionLevel r: Int) throws
            -> ParquetNestedShape
        {
            let path = path + [node.element.name]
            switch node.element.repetition {
            case .repeated?:
                // A repeated field outside a LIST or MAP: a required list of required elements.
                let element = try inner(node, path: path, definitionLevel: d + 1, repetitionLevel: r + 1, presentLevel: nil)
                return ParquetNestedShape(.list(element: element, repeatedLevel: d + 1, repetitionLevel: r + 1), presentLevel: nil)
            case .optional?:
                return try inner(node, path: path, definitionLevel: d + 1, repetitionLevel: r, presentLevel: d + 1)
            case .required?, nil:
                return try inner(node, path: path, definitionLevel: d, repetitionLevel: r, presentLevel: nil)
            }
        }

        /// The shape of `node` once its own repetition is accounted for in the levels.
        private mutating func inner(
            _ node: ParquetSchemaTree, path: [String], definitionLevel d: Int, repetitionLevel r: Int, presentLevel: Int?
        ) throws -> ParquetNestedShape {
            let e = node.element
            let name = path.joined(separator: ".")
            if !node.isGroup {
                let leaf = try ParquetLeafColumn(e, path: name, maxDefinitionLevel: d, maxRepetitionLevel: r)
                leaves.append(leaf)
                return ParquetNestedShape(.value(leaf: leaves.count - 1), presentLevel: presentLevel)
            }
            let isList = e.logicalType == .list || e.convertedType == .list
            let isMap = e.logicalType == .map || e.convertedType == .map || e.convertedType == .mapKeyValue
            if isList || isMap {
                guard node.children.count == 1, let repeated = node.children.first, repeated.element.repetition == .repeated else {
                    throw ParquetFormatError("\(isList ? "LIST" : "MAP") group \(name) must hold exactly one repeated field")
                }
                let rd = d + 1, rr = r + 1
                let repeatedPath = path + [repeated.element.name]
                if isList {
                    let element: ParquetNestedShape
                    if Self.isElement(repeated, listName: e.name) {
                        element = try inner(repeated, path: repeatedPath, definitionLevel: rd, repetitionLevel: rr, presentLevel: nil)
                    } else {
                        element = try build(repeated.children[0], path: repeatedPath, definitionLevel: rd, repetitionLevel: rr)
                    }
                    return ParquetNestedShape(.list(element: element, repeatedLevel: rd, repetitionLevel: rr), presentLevel: presentLevel)
                }
                guard repeated.isGroup, repeated.children.count == 2 else {
                    throw ParquetFormatError("the repeated group of MAP \(name) must hold a key and a value")
                }
                let key = try build(repeated.children[0], path: repeatedPath, definitionLevel: rd, repetitionLevel: rr)
                let value = try build(repeated.children[1], path: repeatedPath, definitionLevel: rd, repetitionLevel: rr)
                var stringKeys = false
                if case let .value(leaf) = key.kind, key.presentLevel == nil, leaves[leaf].field.type == .string { stringKeys = true }
                return ParquetNestedShape(
                    .map(key: key, value: value, repeatedLevel: rd, repetitionLevel: rr, stringKeys: stringKeys),
                    presentLevel: presentLevel)
            }
            let fields = try node.children.map { child in
                ParquetNestedShape.Field(
                    name: child.element.name, shape: try build(child, path: path, definitionLevel: d, repetitionLevel: r))
            }
            guard !fields.isEmpty else {
                throw ParquetFormatError("group \(name) has no fields", unsupported: true)
            }
            return ParquetNestedShape(.object(fields: fields), presentLevel: presentLevel)
        }

        /// Whether the repeated field of a LIST is itself the element (rules 1–3 of the
        /// backward-compatibility rules), rather than the 3-level wrapper of one element.
        static func isElement(_ repeated: ParquetSchemaTree, listName: String) -> Bool {
            !repeated.isGroup || repeated.children.count != 1 || repeated.element.name == "array"
                || repeated.element.name == listName + "_tuple"
        }
    }
}
