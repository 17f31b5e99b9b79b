import SluiceCore

/// How each column's text becomes a typed value: the decoded schema in a form the hot loop can
/// switch on cheaply.
struct CSVColumnPlan {
    typealias Kind = ColumnKind

    var names: [String] = []
    var types: [DataType] = []
    var declared: [Bool] = []
    /// Columns read from the input; schema columns past this (declared, missing from the header)
    /// are always NULL.
    var fileColumns = 0
    /// Data rows of the sample that inference looked at.
    var inferredRows = 0

    var schema: Schema {
        Schema(zip(names, types).map { Field($0.0, $0.1) })
    }

    /// Why a column has its type, for reject messages.
    func typeOrigin(_ column: Int) -> String {
        if declared[column] { return "the type was declared in `columns:`" }
        let rows = inferredRows == 0 ? "no data rows" : "the first \(inferredRows) data row\(inferredRows == 1 ? "" : "s")"
        return "the type was inferred from \(rows) of the file; declare the column under `columns:` (e.g. as string) to override"
    }
}

/// Type inference over sample values: each column keeps the set of types every value so far
/// parses as, and ends with the narrowest one.
struct CSVTypeCandidates {
    static let bool: UInt8 = 1, int64: UInt8 = 2, float64: UInt8 = 4, timestamp: UInt8 = 8, date: UInt8 = 16, decimal: UInt8 = 32
    static let all: UInt8 = 63

    var mask = all
    var sawValue = false
    /// The largest scale a value needs, should the column be a decimal.
    var decimalScale = 0

    mutating func observe(_ p: UnsafePointer<UInt8>, _ n: Int) {
        guard n > 0 else { return }  // NULL (or "") says nothing about the type
        sawValue = true
        if mask & Self.bool != 0, ValueParsing.parseBool(p, n) == nil { mask &= ~Self.bool }
        let numeric = mask & (Self.int64 | Self.float64) != 0
        if numeric, ValueParsing.hasLeadingZero(p, n) { mask &= ~(Self.int64 | Self.float64) }
        if mask & Self.int64 != 0, ValueParsing.parseInt64(p, n) == nil { mask &= ~Self.int64 }
        let buffer = UnsafeBufferPointer(start: p, count: n)
        if mask & Self.float64 != 0 {
            // A number float64 would round (more digits than it holds) is no float64 value.
            let exact = ValueParsing.parseDouble(p, n).map { ExactNumber.isExact(p, n, $0) } ?? false
            if !exact { mask &= ~Self.float64 }
        }
        if mask & Self.decimal != 0 {
            if !ValueParsing.hasLeadingZero(p, n), case let .decimal(_, scale)? = ExactNumber.decimalType(buffer) {
                decimalScale = max(decimalScale, scale)
            } else {
                mask &= ~Self.decimal
            }
        }
        if mask & Self.timestamp != 0, ValueParsing.parseTimestamp(p, n) == nil { mask &= ~Self.timestamp }
        if mask & Self.date != 0, TemporalText.parseDate(buffer) == nil { mask &= ~Self.date }
    }

    /// The narrowest type all values parsed as exactly: bool, int64, float64, decimal (numbers
    /// float64 would round, with the largest scale seen), timestamp, date, else string.
    var type: DataType {
        guard sawValue else { return .string }
        if mask & Self.bool != 0 { return .bool }
        if mask & Self.int64 != 0 { return .int64 }
        if mask & Self.float64 != 0 { return .float64 }
        if mask & Self.decimal != 0 { return .decimal(precision: 38, scale: decimalScale) }
        if mask & Self.timestamp != 0 { return .timestamp }
        if mask & Self.date != 0 { return .date }
        return .string
    }
}
