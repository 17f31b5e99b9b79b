import SluiceCore

/// Record assembly (Dremel, as in the Parquet format) of one nested column into JSON text:
/// fed the levels and values of the column's leaves (``ParquetLeafLevels``), it produces each
/// row's value as JSON. Pure: no I/O, so hand-made level sequences test it byte for byte.
///
/// Every leaf keeps a cursor over its entries. Reading a node looks at the definition level of
/// its first leaf's next entry: below the node's own level, the node is null (or, for a
/// repeated level, empty) and each leaf below it holds exactly one entry for it, which is
/// consumed; otherwise a value is read, an object field by field, a list element by element
/// for as long as the next entry repeats at the list's repetition level. Every leaf must agree
/// (same nulls, same list lengths); a file whose leaves disagree is refused as malformed.
struct NestedRecordAssembler {
    let shape: ParquetNestedShape
    private let leaves: [ParquetLeafLevels]
    /// The next entry of each leaf.
    private var entry: [Int]
    /// The next value of each leaf.
    private var value: [Int]
    private(set) var row = 0

    init(shape: ParquetNestedShape, leaves: [ParquetLeafLevels]) throws {
        guard shape.leaves == Array(0..<leaves.count) else {
            throw ParquetFormatError("nested column has \(leaves.count) leaf columns but its schema has \(shape.leaves.count)")
        }
        self.shape = shape
        self.leaves = leaves
        entry = Array(repeating: 0, count: leaves.count)
        value = Array(repeating: 0, count: leaves.count)
    }

    /// True once every entry of every leaf has been read.
    var isFinished: Bool { zip(entry, leaves).allSatisfy { $0 == $1.count } }

    /// Assembles `rows` rows into a `json` column; a null top-level value is a null row. Refuses
    /// leaves with entries left over.
    mutating func column(rows: Int) throws -> Column {
        var offsets: [Int32] = [0]
        offsets.reserveCapacity(rows + 1)
        var data: [UInt8] = []
        var validity = ValidityBitmap()
        var hasNull = false
        for _ in 0..<rows {
            let present = try appendRow(to: &data)
            validity.append(present)
            hasNull = hasNull || !present
            guard data.count <= Int(Int32.max) else {
                throw ParquetFormatError("the column's JSON text passes 2 GiB in one row group", unsupported: true)
            }
            offsets.append(Int32(data.count))
        }
        if let l = leaves.indices.first(where: { entry[$0] != leaves[$0].count }) {
            throw ParquetFormatError("leaf \(l) of the nested column has \(leaves[l].count - entry[l]) entries after its last row (\(rows))")
        }
        return Column(type: .json, storage: .bytes(offsets: offsets, data: data), validity: hasNull ? validity : nil, count: rows)
    }

    /// Appends the next row's JSON text to `out`; returns false, appending nothing, when the
    /// whole value is null.
    mutating func appendRow(to out: inout [UInt8]) throws -> Bool {
        do {
            for l in shape.leaves {
                try checkEntry(l)
                let r = leaves[l].repetitionLevel(entry[l])
                guard r == 0 else { throw ParquetFormatError("leaf \(l) starts the row with repetition level \(r), not 0") }
            }
            let first = shape.leaves[0]
            defer { row += 1 }
            if let level = shape.presentLevel, leaves[first].definitionLevel(entry[first]) < level {
                try skip(shape, below: level)
                return false
            }
            try read(shape, into: &out)
            return true
        } catch let e as ParquetFormatError {
            throw ParquetFormatError("row \(row): \(e.message)", unsupported: e.unsupported)
        }
    }

    private func checkEntry(_ l: Int) throws {
        guard entry[l] < leaves[l].count else {
            throw ParquetFormatError("leaf \(l) of the nested column ends early (\(leaves[l].count) entries)")
        }
    }

    /// Consumes the one entry each leaf below `node` holds for a null or empty `node`.
    private mutating func skip(_ node: ParquetNestedShape, below level: Int) throws {
        for l in node.leaves {
            try checkEntry(l)
            let d = leaves[l].definitionLevel(entry[l])
            guard d < level else {
                throw ParquetFormatError("leaves disagree: leaf \(node.leaves[0]) ends at definition level below \(level), leaf \(l) has \(d)")
            }
            entry[l] += 1
        }
    }

    /// True when the next entries of the leaves of `node` (a list or map) continue it with
    /// another element at `repetitionLevel`.
    private func continues(_ node: ParquetNestedShape, at repetitionLevel: Int) throws -> Bool {
        let first = node.leaves[0]
        guard entry[first] < leaves[first].count else { return false }
        let r = Int(leaves[first].repetitionLevel(entry[first]))
        guard r >= repetitionLevel else { return false }
        guard r == repetitionLevel else {
            throw ParquetFormatError("leaf \(first) repeats at level \(r) where level \(repetitionLevel) or lower was expected")
        }
        for l in node.leaves.dropFirst() {
            guard entry[l] < leaves[l].count, leaves[l].repetitionLevel(entry[l]) == repetitionLevel else {
                throw ParquetFormatError("leaves disagree: leaf \(first) has another list element, leaf \(l) does not")
            }
        }
        return true
    }

    private mutating func read(_ node: ParquetNestedShape, into out: inout [UInt8]) throws {
        let first = node.leaves[0]
        try checkEntry(first)
        let d = Int(leaves[first].definitionLevel(entry[first]))
        if let level = node.presentLevel, d < level {
            try skip(node, below: level)
            JSONText.appendLiteral("null", to: &out)
            return
        }
        switch node.kind {
        case let .value(leaf):
            guard d == leaves[leaf].maxDefinitionLevel else {
                throw ParquetFormatError(
                    "leaf \(leaf) has definition level \(d) where a required value needs \(leaves[leaf].maxDefinitionLevel)")
            }
            let v = value[leaf]
            let start = v == 0 ? 0 : leaves[leaf].valueEnds[v - 1]
            out.append(contentsOf: leaves[leaf].text[start..<leaves[leaf].valueEnds[v]])
            value[leaf] += 1
            entry[leaf] += 1
        case let .object(fields):
            out.append(UInt8(ascii: "{"))
            for (i, field) in fields.enumerated() {
                if i > 0 { out.append(UInt8(ascii: ",")) }
                JSONText.appendString(Array(field.name.utf8), to: &out)
                out.append(UInt8(ascii: ":"))
                try read(field.shape, into: &out)
            }
            out.append(UInt8(ascii: "}"))
        case let .list(element, repeatedLevel, repetitionLevel):
            guard d >= repeatedLevel else {
                try skip(node, below: repeatedLevel)
                JSONText.appendLiteral("[]", to: &out)
                return
            }
            out.append(UInt8(ascii: "["))
            try read(element, into: &out)
            while try continues(node, at: repetitionLevel) {
                out.append(UInt8(ascii: ","))
                try read(element, into: &out)
            }
            out.append(UInt8(ascii: "]"))
        case let .map(key, mapValue, repeatedLevel, repetitionLevel, stringKeys):
            guard d >= repeatedLevel else {
                try skip(node, below: repeatedLevel)
                if stringKeys { JSONText.appendLiteral("{}", to: &out) } else { JSONText.appendLiteral("[]", to: &out) }
                return
            }
            out.append(UInt8(ascii: stringKeys ? "{" : "["))
            var firstPair = true
            repeat {
                if !firstPair { out.append(UInt8(ascii: ",")) }
                firstPair = false
                if stringKeys {
                    try read(key, into: &out)
                    out.append(UInt8(ascii: ":"))
                    try read(mapValue, into: &out)
                } else {
                    JSONText.appendLiteral("{\"key\":", to: &out)
                    try read(key, into: &out)
                    JSONText.appendLiteral(",\"value\":", to: &out)
                    try read(mapValue, into: &out)
                    out.append(UInt8(ascii: "}"))
                }
            } while try continues(node, at: repetitionLevel)
            out.append(UInt8(ascii: stringKeys ? "}" : "]"))
        }
    }
}
