import SluiceCore

/// The entries of one leaf of a nested column across the pages of its column chunk: a
/// repetition and a definition level per entry, and the JSON text of each defined value (an
/// entry whose definition level is the maximum holds a value; the others mark a null or an
/// empty list somewhere above the leaf).
struct ParquetLeafLevels: Sendable, Hashable {
    let maxRepetitionLevel: Int
    let maxDefinitionLevel: Int
    /// One repetition level per entry; empty when `maxRepetitionLevel` is 0 (every level is 0).
    private(set) var repetition: [UInt32] = []
    /// One definition level per entry; empty when `maxDefinitionLevel` is 0 (every level is 0).
    private(set) var definition: [UInt32] = []
    private(set) var count = 0
    /// The JSON text of the defined values, one after another.
    private(set) var text: [UInt8] = []
    /// Where each value's text ends in `text`.
    private(set) var valueEnds: [Int] = []

    init(maxRepetitionLevel: Int, maxDefinitionLevel: Int) {
        self.maxRepetitionLevel = maxRepetitionLevel
        self.maxDefinitionLevel = maxDefinitionLevel
    }

    /// Levels and values given as text, for tests and hand-made sequences: `values` holds the
    /// JSON text of each entry whose definition level is the maximum, in order.
    init(repetition: [UInt32], definition: [UInt32], values: [String], maxRepetitionLevel: Int, maxDefinitionLevel: Int) throws {
        self.init(maxRepetitionLevel: maxRepetitionLevel, maxDefinitionLevel: maxDefinitionLevel)
        var text: [UInt8] = []
        var ends: [Int] = []
        for v in values {
            text.append(contentsOf: v.utf8)
            ends.append(text.count)
        }
        try append(
            repetition: maxRepetitionLevel > 0 ? repetition : nil, definition: maxDefinitionLevel > 0 ? definition : nil,
            count: maxRepetitionLevel > 0 ? repetition.count : maxDefinitionLevel > 0 ? definition.count : values.count,
            text: text, ends: ends)
    }

    /// Appends one page: `count` entries, their levels (nil when the maximum level is 0) and the
    /// JSON text of its values (`ends` relative to the start of `text`).
    mutating func append(repetition r: [UInt32]?, definition d: [UInt32]?, count n: Int, text t: [UInt8], ends: [Int]) throws {
        guard (r?.count ?? n) == n, (d?.count ?? n) == n else {
            throw ParquetFormatError("a page has \(r?.count ?? n) repetition and \(d?.count ?? n) definition levels for \(n) entries")
        }
        if maxRepetitionLevel > 0 {
            guard let r else { throw ParquetFormatError("a page of a repeated column has no repetition levels") }
            guard r.allSatisfy({ $0 <= maxRepetitionLevel }) else {
                throw ParquetFormatError("a repetition level exceeds the column's maximum (\(maxRepetitionLevel))")
            }
            repetition.append(contentsOf: r)
        }
        var defined = n
        if maxDefinitionLevel > 0 {
            guard let d else { throw ParquetFormatError("a page of an optional column has no definition levels") }
            defined = 0
            for level in d {
                guard level <= maxDefinitionLevel else {
                    throw ParquetFormatError("definition level \(level) exceeds the column's maximum (\(maxDefinitionLevel))")
                }
                if level == maxDefinitionLevel { defined += 1 }
            }
            definition.append(contentsOf: d)
        }
        guard ends.count == defined else {
            throw ParquetFormatError("a page has \(ends.count) values for \(defined) defined entries")
        }
        let base = text.count
        text.append(contentsOf: t)
        valueEnds.append(contentsOf: ends.map { $0 + base })
        count += n
    }

    /// Appends one page whose values are decoded Sluice values of `type` (the defined ones only):
    /// each is rendered as JSON text the way the NDJSON sink writes that type.
    mutating func append(repetition r: [UInt32]?, definition d: [UInt32]?, count n: Int, values: ColumnStorage, type: DataType) throws {
        let column = Column(type: type, storage: values, validity: nil, count: values.count)
        var t: [UInt8] = []
        var ends: [Int] = []
        JSONText.render(column, into: &t, ends: &ends)
        try append(repetition: r, definition: d, count: n, text: t, ends: ends)
    }

    @inline(__always) func repetitionLevel(_ entry: Int) -> UInt32 { repetition.isEmpty ? 0 : repetition[entry] }
    @inline(__always) func definitionLevel(_ entry: Int) -> UInt32 { definition.isEmpty ? 0 : definition[entry] }

    /// The number of entries that start a row (repetition level 0).
    var rows: Int { repetition.isEmpty ? count : repetition.reduce(0) { $0 + ($1 == 0 ? 1 : 0) } }

}
