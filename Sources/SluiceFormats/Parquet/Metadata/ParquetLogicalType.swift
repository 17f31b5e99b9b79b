/// Time units of TIME and TIMESTAMP logical types.
enum ParquetTimeUnit: Sendable, Hashable {
    case millis, micros, nanos
}

/// The `LogicalType` union of `parquet.thrift` (the members Sluice writes or reads; others are `other`).
enum ParquetLogicalType: Sendable, Hashable {
    case string
    case map
    case list
    case enumeration
    case decimal(scale: Int32, precision: Int32)
    case date
    case time(adjustedToUTC: Bool, unit: ParquetTimeUnit)
    case timestamp(adjustedToUTC: Bool, unit: ParquetTimeUnit)
    case integer(bitWidth: Int8, signed: Bool)
    case unknown
    case json
    case bson
    case uuid
    case float16
    /// A union member this reader does not know, by field id.
    case other(Int16)

    func encode(_ w: inout ThriftCompactWriter) {
        func empty(_ id: Int16) { w.structField(id) { _ in } }
        func unit(_ w: inout ThriftCompactWriter, _ u: ParquetTimeUnit) {
            w.structField(2) { w in
                switch u {
                case .millis: w.structField(1) { _ in }
                case .micros: w.structField(2) { _ in }
                case .nanos: w.structField(3) { _ in }
                }
            }
        }
        switch self {
        case .string: empty(1)
        case .map: empty(2)
        case .list: empty(3)
        case .enumeration: empty(4)
        case let .decimal(scale, precision):
            w.structField(5) { w in
                w.field(1, i32: scale)
                w.field(2, i32: precision)
            }
        case .date: empty(6)
        case let .time(utc, u):
            w.structField(7) { w in
                w.field(1, bool: utc)
                unit(&w, u)
            }
        case let .timestamp(utc, u):
            w.structField(8) { w in
                w.field(1, bool: utc)
                unit(&w, u)
            }
        case let .integer(bits, signed):
            w.structField(10) { w in
                w.field(1, i8: bits)
                w.field(2, bool: signed)
            }
        case .unknown: empty(11)
        case .json: empty(12)
        case .bson: empty(13)
        case .uuid: empty(14)
        case .float16: empty(15)
        case let .other(id): empty(id)
        }
    }

    static func decode(_ r: inout ThriftCompactReader) throws -> ParquetLogicalType? {
        var result: ParquetLogicalType?
        try r.readStruct { r, id, type in
            guard type == ThriftCompactType.structure.rawValue else { return false }
            switch id {
            case 1: result = .string
            case 2: result = .map
            case 3: result = .list
            case 4: result = .enumeration
            case 5:
                var scale: Int32 = 0, precision: Int32 = 0
                try r.readStruct { r, id, type in
                    switch id {
                    case 1: try r.expect(type, .i32, "DecimalType.scale"); scale = try r.readI32()
                    case 2: try r.expect(type, .i32, "DecimalType.precision"); precision = try r.readI32()
                    default: return false
                    }
                    return true
                }
                result = .decimal(scale: scale, precision: precision)
                return true
            case 6: result = .date
            case 7, 8:
                var utc = false
                var unit = ParquetTimeUnit.millis
                try r.readStruct { r, fid, type in
                    switch fid {
                    case 1: utc = try r.boolValue(type)
                    case 2:
                        try r.expect(type, .structure, "TimeUnit")
                        unit = try decodeUnit(&r)
                    default: return false
                    }
                    return true
                }
                result = id == 7 ? .time(adjustedToUTC: utc, unit: unit) : .timestamp(adjustedToUTC: utc, unit: unit)
                return true
            case 10:
                var bits: Int8 = 64
                var signed = true
                try r.readStruct { r, fid, type in
                    switch fid {
                    case 1: try r.expect(type, .i8, "IntType.bitWidth"); bits = Int8(bitPattern: try r.readByte())
                    case 2: signed = try r.boolValue(type)
                    default: return false
                    }
                    return true
                }
                result = .integer(bitWidth: bits, signed: signed)
                return true
            case 11: result = .unknown
            case 12: result = .json
            case 13: result = .bson
            case 14: result = .uuid
            case 15: result = .float16
            default: result = .other(id)
            }
            return false  // empty member struct: let the reader skip it
        }
        return result
    }

    private static func decodeUnit(_ r: inout ThriftCompactReader) throws -> ParquetTimeUnit {
        var unit = ParquetTimeUnit.millis
        try r.readStruct { _, id, _ in
            switch id {
            case 1: unit = .millis
            case 2: unit = .micros
            case 3: unit = .nanos
            default: break
            }
            return false
        }
        return unit
    }
}
