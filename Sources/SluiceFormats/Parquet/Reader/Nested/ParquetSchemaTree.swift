/// The Parquet schema as a tree: the footer stores it flattened, depth first, each group
/// followed by its `num_children` children.
struct ParquetSchemaTree: Sendable, Hashable {
    var element: ParquetSchemaElement
    var children: [ParquetSchemaTree]

    /// Deeper schemas are refused: they would only come from a corrupt or hostile footer, and
    /// the reader recurses once per level.
    static let maxDepth = 64

    var isGroup: Bool { element.type == nil || (element.numChildren ?? 0) > 0 }

    /// Rebuilds the tree from the flattened elements; the first is the root.
    static func parse(_ elements: [ParquetSchemaElement]) throws -> ParquetSchemaTree {
        guard !elements.isEmpty else { throw ParquetFormatError("the schema is empty") }
        var index = 0
        let root = try parse(elements, &index, depth: 0)
        guard index == elements.count else {
            throw ParquetFormatError(
                "the schema root has \(root.children.count) children but \(elements.count - index) more schema elements follow them")
        }
        return root
    }

    private static func parse(_ elements: [ParquetSchemaElement], _ index: inout Int, depth: Int) throws -> ParquetSchemaTree {
        let element = elements[index]
        index += 1
        let count = Int(element.numChildren ?? 0)
        guard count >= 0 else { throw ParquetFormatError("schema element \(element.name) has \(count) children") }
        guard depth < maxDepth else {
            throw ParquetFormatError("the schema nests deeper than \(maxDepth) levels", unsupported: true)
        }
        var children: [ParquetSchemaTree] = []
        for k in 0..<count {
            guard index < elements.count else {
                throw ParquetFormatError(
                    "schema element \(element.name) has \(count) children but the schema ends after \(k) of them")
            }
            children.append(try parse(elements, &index, depth: depth + 1))
        }
        return ParquetSchemaTree(element: element, children: children)
    }
}
