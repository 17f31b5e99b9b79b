import SluiceCore

/// How values of a Parquet leaf column become values of a Sluice column.
enum ParquetValueConversion: Equatable {
    case boolean
    /// INT32 (INT_8/16/32, or unsigned when `unsigned`) widened to int64.
    case int32ToInt64(unsigned: Bool)
    case int64
    /// UINT_64 as decimal(20, 0), which holds every value exactly.
    case uint64ToDecimal
    case date
    /// INT64 timestamps scaled to microseconds (`multiplier` for millis, `divisor` for nanos; floor division).
    case timestamp(multiplier: Int64, divisor: Int64)
    case int96Timestamp
    case floatToDouble
    case double
    case decimalFromInt32
    case decimalFromInt64
    /// BYTE_ARRAY or FIXED_LEN_BYTE_ARRAY holding big-endian two's complement decimals.
    case decimalFromBytes
    /// BYTE_ARRAY or FIXED_LEN_BYTE_ARRAY kept as bytes (string, binary or json).
    case bytes
    /// TIME (INT32 millis, INT64 micros or nanos) as text `HH:MM:SS.fff…` with the unit's digits:
    /// Sluice has no time-of-day type, and a bare integer would lose its unit.
    case timeText(ParquetTimeUnit)
    /// UUID (FIXED_LEN_BYTE_ARRAY(16)) as its canonical text.
    case uuidText
    /// FLOAT16 (FIXED_LEN_BYTE_ARRAY(2)) widened to float64, which holds every half exactly.
    case float16ToDouble
}

/// A Parquet leaf column with the Sluice field it is read into: a flat column (one value per
/// row), or a leaf of a nested column, whose values become JSON text inside that column.
struct ParquetLeafColumn {
    let element: ParquetSchemaElement
    let physicalType: ParquetPhysicalType
    let field: Field
    let conversion: ParquetValueConversion
    /// The highest definition level: 1 for an OPTIONAL flat column, 0 for a REQUIRED one; in a
    /// nested column, the number of optional and repeated fields on the leaf's path.
    let maxDefinitionLevel: Int
    /// The highest repetition level: 0 for a flat column; in a nested column, the number of
    /// repeated fields on the leaf's path.
    let maxRepetitionLevel: Int

    /// A flat column: derives the Sluice type from the Parquet physical and logical types.
    init(_ e: ParquetSchemaElement) throws {
        if e.repetition == .repeated {
            throw ParquetFormatError("column \(e.name) is repeated but was read as a flat column")
        }
        try self.init(e, path: e.name, maxDefinitionLevel: e.repetition == .required ? 0 : 1, maxRepetitionLevel: 0)
    }

    /// A leaf at `path` (dotted, for messages) with the given maximum levels.
    init(_ e: ParquetSchemaElement, path: String, maxDefinitionLevel: Int, maxRepetitionLevel: Int) throws {
        guard let physical = e.type else {
            throw ParquetFormatError("column \(path) has no physical type")
        }
        element = e
        physicalType = physical
        self.maxDefinitionLevel = maxDefinitionLevel
        self.maxRepetitionLevel = maxRepetitionLevel
        let (type, conversion) = try Self.mapping(e, physical)
        self.conversion = conversion
        field = Field(path, type, nullable: maxDefinitionLevel > 0)
        if physical == .fixedLenByteArray {
            guard let n = e.typeLength, n >= 0 else {
                throw ParquetFormatError("FIXED_LEN_BYTE_ARRAY column \(path) has no valid type_length")
            }
        }
    }

    /// The same column read as `field` (from the footer's Sluice schema) when that type fits the data.
    init?(_ base: ParquetLeafColumn, as field: Field) {
        guard field.name == base.field.name, field.nullable || base.maxDefinitionLevel == 0 else { return nil }
        let compatible: Bool =
            switch (base.field.type, field.type) {
            case let (a, b) where a == b: true
            case (.string, .json), (.string, .binary), (.binary, .string), (.binary, .json): true
            default: false
            }
        guard compatible else { return nil }
        element = base.element
        physicalType = base.physicalType
        conversion = base.conversion
        maxDefinitionLevel = base.maxDefinitionLevel
        maxRepetitionLevel = base.maxRepetitionLevel
        self.field = field
    }

    private static func decimalType(_ e: ParquetSchemaElement) throws -> DataType? {
        var precision: Int32?, scale: Int32?
        if case let .decimal(s, p) = e.logicalType {
            precision = p
            scale = s
        } else if e.convertedType == .decimal {
            precision = e.precision
            scale = e.scale ?? 0
        }
        guard let precision, let scale else { return nil }
        guard precision >= 1, precision <= 38, scale >= 0, scale <= precision else {
            throw ParquetFormatError(
                "column \(e.name) is decimal(\(precision),\(scale)); Sluice reads precision 1…38",
                unsupported: true)
        }
        return .decimal(precision: Int(precision), scale: Int(scale))
    }

    private static func mapping(_ e: ParquetSchemaElement, _ physical: ParquetPhysicalType) throws
        -> (DataType, ParquetValueConversion)
    {
        let decimal = try decimalType(e)
        switch physical {
        case .boolean:
            return (.bool, .boolean)
        case .int32:
            if let decimal { return (decimal, .decimalFromInt32) }
            if e.logicalType == .date || e.convertedType == .date { return (.date, .date) }
            if case let .time(_, unit) = e.logicalType { return (.string, .timeText(unit)) }
            if e.convertedType == .timeMillis { return (.string, .timeText(.millis)) }
            var unsigned = false
            if case let .integer(_, signed) = e.logicalType { unsigned = !signed }
            if [.uint8, .uint16, .uint32].contains(e.convertedType) { unsigned = true }
            return (.int64, .int32ToInt64(unsigned: unsigned))
        case .int64:
            if let decimal { return (decimal, .decimalFromInt64) }
            if case let .timestamp(_, unit) = e.logicalType {
                switch unit {
                case .millis: return (.timestamp, .timestamp(multiplier: 1000, divisor: 1))
                case .micros: return (.timestamp, .timestamp(multiplier: 1, divisor: 1))
                case .nanos: return (.timestamp, .timestamp(multiplier: 1, divisor: 1000))
                }
            }
            if case let .time(_, unit) = e.logicalType { return (.string, .timeText(unit)) }
            if e.convertedType == .timeMicros { return (.string, .timeText(.micros)) }
            if e.convertedType == .timestampMillis { return (.timestamp, .timestamp(multiplier: 1000, divisor: 1)) }
            if e.convertedType == .timestampMicros { return (.timestamp, .timestamp(multiplier: 1, divisor: 1)) }
            if case .integer(_, false) = e.logicalType { return (.decimal(precision: 20, scale: 0), .uint64ToDecimal) }
            if e.convertedType == .uint64 { return (.decimal(precision: 20, scale: 0), .uint64ToDecimal) }
            return (.int64, .int64)
        case .int96:
            return (.timestamp, .int96Timestamp)
        case .float:
            return (.float64, .floatToDouble)
        case .double:
            return (.float64, .double)
        case .byteArray, .fixedLenByteArray:
            if let decimal { return (decimal, .decimalFromBytes) }
            if physical == .fixedLenByteArray, e.logicalType == .uuid, e.typeLength == 16 { return (.string, .uuidText) }
            if physical == .fixedLenByteArray, e.logicalType == .float16, e.typeLength == 2 { return (.float64, .float16ToDouble) }
            if e.logicalType == .uuid || e.logicalType == .float16 {
                throw ParquetFormatError(
                    "column \(e.name) is \(e.logicalType!) of \(e.typeLength ?? 0) bytes; expected FIXED_LEN_BYTE_ARRAY(\(e.logicalType == .uuid ? 16 : 2))")
            }
            switch e.logicalType {
            case .string?, .enumeration?: return (.string, .bytes)
            case .json?: return (.json, .bytes)
            default: break
            }
            if e.convertedType == .utf8 || e.convertedType == .enumeration { return (.string, .bytes) }
            if e.convertedType == .json { return (.json, .bytes) }
            return (.binary, .bytes)
        }
    }
}
