import SluiceCore

/// How a Sluice type is stored in Parquet (writer side).
///
/// - bool → BOOLEAN; int64 → INT64; float64 → DOUBLE
/// - string → BYTE_ARRAY + STRING (converted UTF8); json → BYTE_ARRAY + JSON (converted JSON); binary → BYTE_ARRAY
/// - date → INT32 + DATE; timestamp → INT64 + TIMESTAMP(isAdjustedToUTC, MICROS) (converted TIMESTAMP_MICROS)
/// - decimal(p, s) → INT64 when p ≤ 18, else FIXED_LEN_BYTE_ARRAY of the fewest bytes that hold p digits
///   (big-endian two's complement), with DECIMAL(s, p) and the converted type DECIMAL.
struct ParquetColumnSpec {
    enum Kind: Equatable {
        case boolean, int64, int32, double, bytes
        case decimalInt64
        case decimalFixed(byteWidth: Int)
    }

    let field: Field
    let kind: Kind
    let element: ParquetSchemaElement

    var physicalType: ParquetPhysicalType { element.type! }

    init(_ field: Field) {
        self.field = field
        var e = ParquetSchemaElement(name: field.name)
        e.repetition = field.nullable ? .optional : .required
        switch field.type {
        case .bool:
            kind = .boolean
            e.type = .boolean
        case .int64:
            kind = .int64
            e.type = .int64
        case .float64:
            kind = .double
            e.type = .double
        case .string:
            kind = .bytes
            e.type = .byteArray
            e.logicalType = .string
            e.convertedType = .utf8
        case .json:
            kind = .bytes
            e.type = .byteArray
            e.logicalType = .json
            e.convertedType = .json
        case .binary:
            kind = .bytes
            e.type = .byteArray
        case .date:
            kind = .int32
            e.type = .int32
            e.logicalType = .date
            e.convertedType = .date
        case .timestamp:
            kind = .int64
            e.type = .int64
            e.logicalType = .timestamp(adjustedToUTC: true, unit: .micros)
            e.convertedType = .timestampMicros
        case let .decimal(precision, scale):
            if precision <= 18 {
                kind = .decimalInt64
                e.type = .int64
            } else {
                let width = Self.decimalByteWidth(precision: precision)
                kind = .decimalFixed(byteWidth: width)
                e.type = .fixedLenByteArray
                e.typeLength = Int32(width)
            }
            e.logicalType = .decimal(scale: Int32(scale), precision: Int32(precision))
            e.convertedType = .decimal
            e.scale = Int32(scale)
            e.precision = Int32(precision)
        }
        element = e
    }

    /// The fewest bytes whose two's complement range holds every `precision`-digit value.
    static func decimalByteWidth(precision: Int) -> Int {
        var largest: Int128 = 1
        for _ in 0..<min(precision, 38) { largest *= 10 }
        largest -= 1
        for width in 1..<16 where (Int128(1) << (8 * width - 1)) - 1 >= largest { return width }
        return 16
    }
}
