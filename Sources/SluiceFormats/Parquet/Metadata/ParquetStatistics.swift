/// Page or column-chunk statistics (`Statistics`). Only the new `min_value`/`max_value`
/// fields are written; the deprecated `min`/`max` are read but not used.
struct ParquetStatistics: Sendable, Hashable {
    var max: [UInt8]?
    var min: [UInt8]?
    var nullCount: Int64?
    var distinctCount: Int64?
    var maxValue: [UInt8]?
    var minValue: [UInt8]?
    var isMaxValueExact: Bool?
    var isMinValueExact: Bool?
    var nanCount: Int64?

    init() {}

    func encode(_ w: inout ThriftCompactWriter) {
        if let max { w.field(1, binary: max) }
        if let min { w.field(2, binary: min) }
        if let nullCount { w.field(3, i64: nullCount) }
        if let distinctCount { w.field(4, i64: distinctCount) }
        if let maxValue { w.field(5, binary: maxValue) }
        if let minValue { w.field(6, binary: minValue) }
        if let isMaxValueExact { w.field(7, bool: isMaxValueExact) }
        if let isMinValueExact { w.field(8, bool: isMinValueExact) }
        if let nanCount { w.field(9, i64: nanCount) }
    }

    static func decode(_ r: inout ThriftCompactReader) throws -> ParquetStatistics {
        var s = ParquetStatistics()
        try r.readStruct { r, id, type in
            switch id {
            case 1: try r.expect(type, .binary, "Statistics.max"); s.max = try r.readBinary()
            case 2: try r.expect(type, .binary, "Statistics.min"); s.min = try r.readBinary()
            case 3: try r.expect(type, .i64, "Statistics.null_count"); s.nullCount = try r.readI64()
            case 4: try r.expect(type, .i64, "Statistics.distinct_count"); s.distinctCount = try r.readI64()
            case 5: try r.expect(type, .binary, "Statistics.max_value"); s.maxValue = try r.readBinary()
            case 6: try r.expect(type, .binary, "Statistics.min_value"); s.minValue = try r.readBinary()
            case 7: s.isMaxValueExact = try r.boolValue(type)
            case 8: s.isMinValueExact = try r.boolValue(type)
            case 9: try r.expect(type, .i64, "Statistics.nan_count"); s.nanCount = try r.readI64()
            default: return false
            }
            return true
        }
        return s
    }
}
