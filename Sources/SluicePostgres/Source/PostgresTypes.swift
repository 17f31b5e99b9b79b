import SluiceCore

/// A column as PostgreSQL describes it.
struct PostgresColumn: Sendable, Hashable {
    var name: String
    var typeOID: UInt32
    var typeModifier: Int32
    /// `format_type(oid, typmod)`: the SQL spelling of the type, for casts (`numeric(12,2)`).
    var typeName: String
    /// pg_type.typtype (`b` base, `e` enum, `d` domain…) and typcategory (`A` array…).
    var typeKind: String
    var category: String
    var notNull: Bool
    /// 1-based position in the primary key, 0 when not part of it.
    var primaryKeyPosition: Int
}

/// How one result column is read from its binary form into a column builder.
enum ValueDecoder: Sendable, Hashable {
    case bool, int2, int4, int8, oid, float4, float8
    /// numeric, selected as `::text` and parsed exactly.
    case numericText(precision: Int, scale: Int)
    case text, jsonb, bytea, date, timestamp, uuid
}

/// The Sluice type and reader for a PostgreSQL column, and the select expression that feeds it.
struct ColumnMapping: Sendable, Hashable {
    var field: Field
    var decoder: ValueDecoder
    var expression: String

    /// Unconstrained `numeric` (no precision given) is read as decimal(38,18); values that do not
    /// fit go to the dead-letter queue naming the column.
    static let unconstrainedNumeric = (precision: 38, scale: 18)

    static func map(_ c: PostgresColumn, unsupported: PostgresSourceOptions.Unsupported) throws -> ColumnMapping {
        let q = SQLText.identifier(c.name)
        let nullable = !c.notNull
        func make(_ type: DataType, _ decoder: ValueDecoder, _ expression: String? = nil) -> ColumnMapping {
            ColumnMapping(field: Field(c.name, type, nullable: nullable), decoder: decoder, expression: expression ?? q)
        }
        if c.category == "A" { return make(.json, .text, "to_json(\(q))") }  // arrays → JSON text
        if c.typeKind == "e" { return make(.string, .text) }  // enum: its label
        switch c.typeOID {
        case 16: return make(.bool, .bool)
        case 20: return make(.int64, .int8)
        case 21: return make(.int64, .int2)
        case 23: return make(.int64, .int4)
        case 26: return make(.int64, .oid)
        case 700: return make(.float64, .float4)
        case 701: return make(.float64, .float8)
        case 1700:
            if c.typeModifier >= 4 {
                let precision = Int((c.typeModifier - 4) >> 16) & 0xFFFF
                let scale = Int((c.typeModifier - 4) & 0xFFFF)
                if (1...38).contains(precision), scale <= precision {
                    return make(.decimal(precision: precision, scale: scale), .numericText(precision: precision, scale: scale), "\(q)::text")
                }
                // numeric(p > 38) or a negative scale: no exact Sluice decimal for it.
                if unsupported == .string { return make(.string, .text, "\(q)::text") }
                throw SluiceError(
                    .unsupported,
                    "column '\(c.name)' is \(c.typeName), wider than decimal(38); "
                        + "set `unsupported_types: string` to read it as text", location: c.name)
            }
            let u = unconstrainedNumeric
            return make(.decimal(precision: u.precision, scale: u.scale), .numericText(precision: u.precision, scale: u.scale), "\(q)::text")
        case 25, 1043, 1042, 19, 18: return make(.string, .text)
        case 114: return make(.json, .text)
        case 3802: return make(.json, .jsonb)
        case 17: return make(.binary, .bytea)
        case 1082: return make(.date, .date)
        case 1114, 1184: return make(.timestamp, .timestamp)
        case 2950: return make(.string, .uuid)
        default:
            if unsupported == .string { return make(.string, .text, "\(q)::text") }
            throw SluiceError(
                .unsupported,
                "column '\(c.name)' has type \(c.typeName), which Sluice does not map; "
                    + "set `unsupported_types: string` to read it as text, or cast it in a `query`", location: c.name)
        }
    }
}

/// Reads PostgreSQL's binary value formats.
enum BinaryValue {
    /// Days from 1970-01-01 to 2000-01-01 (PostgreSQL's epoch).
    static let epochDays: Int32 = 10_957
    static let epochMicros: Int64 = 946_684_800_000_000

    @inline(__always) static func int16(_ p: UnsafeRawBufferPointer) -> Int16 { Int16(bigEndian: p.loadUnaligned(as: Int16.self)) }
    @inline(__always) static func int32(_ p: UnsafeRawBufferPointer) -> Int32 { Int32(bigEndian: p.loadUnaligned(as: Int32.self)) }
    @inline(__always) static func int64(_ p: UnsafeRawBufferPointer) -> Int64 { Int64(bigEndian: p.loadUnaligned(as: Int64.self)) }

    /// Appends one non-null value; false when it has no Sluice value (infinity, NaN, too many digits).
    @inline(__always)
    static func append(_ p: UnsafeRawBufferPointer, _ decoder: ValueDecoder, to b: inout ColumnBuilder) -> Bool {
        switch decoder {
        case .bool: b.append(p.count == 1 && p[0] != 0)
        case .int2: guard p.count == 2 else { return false }; b.append(Int64(int16(p)))
        case .int4: guard p.count == 4 else { return false }; b.append(Int64(int32(p)))
        case .oid: guard p.count == 4 else { return false }; b.append(Int64(UInt32(bitPattern: int32(p))))
        case .int8: guard p.count == 8 else { return false }; b.append(int64(p))
        case .float4: guard p.count == 4 else { return false }; b.append(Double(Float(bitPattern: UInt32(bitPattern: int32(p)))))
        case .float8: guard p.count == 8 else { return false }; b.append(Double(bitPattern: UInt64(bitPattern: int64(p))))
        case let .numericText(precision, scale):
            guard let v = DecimalText.parse(p.assumingMemoryBound(to: UInt8.self), precision: precision, scale: scale) else { return false }
            b.appendDecimal(v)
        case .text, .bytea:
            b.appendBytes(p.assumingMemoryBound(to: UInt8.self))
        case .jsonb:
            guard p.count >= 1, p[0] == 1 else { return false }  // version byte
            b.appendBytes(UnsafeRawBufferPointer(rebasing: p[1...]).assumingMemoryBound(to: UInt8.self))
        case .date:
            guard p.count == 4 else { return false }
            let days = int32(p)
            guard days != .max, days != .min else { return false }  // ±infinity
            let (d, overflow) = days.addingReportingOverflow(epochDays)
            guard !overflow else { return false }
            b.appendDate(days: d)
        case .timestamp:
            guard p.count == 8 else { return false }
            let us = int64(p)
            guard us != .max, us != .min else { return false }  // ±infinity
            let (t, overflow) = us.addingReportingOverflow(epochMicros)
            guard !overflow else { return false }
            b.append(t)
        case .uuid:
            guard p.count == 16 else { return false }
            var text = [UInt8]()
            text.reserveCapacity(36)
            let hex = Array("0123456789abcdef".utf8)
            for i in 0..<16 {
                if i == 4 || i == 6 || i == 8 || i == 10 { text.append(UInt8(ascii: "-")) }
                text.append(hex[Int(p[i] >> 4)])
                text.append(hex[Int(p[i] & 0xF)])
            }
            b.appendBytes(text)
        }
        return true
    }
}
