/// A column value from a row event, exactly as the binlog holds it. Integers come without their
/// signedness (the binlog does not say): ``integer(_:width:)`` keeps the raw bits and the byte
/// width, and ``unsigned`` reads them as unsigned when the schema says so.
public enum MySQLValue: Equatable, Sendable {
    case null
    /// A signed reading of a `width`-byte integer.
    case integer(Int64, width: Int)
    case float(Float)
    case double(Double)
    /// DECIMAL as exact text (`-1234567890.12`).
    case decimal(String)
    /// CHAR, VARCHAR, TEXT, BLOB, JSON (MariaDB), GEOMETRY (WKB with a 4-byte SRID prefix): the
    /// bytes; the charset comes from the schema.
    case bytes([UInt8])
    /// DATE.
    case date(year: Int, month: Int, day: Int)
    /// DATETIME(fsp): local time as written.
    case datetime(year: Int, month: Int, day: Int, hour: Int, minute: Int, second: Int, microsecond: Int)
    /// TIMESTAMP(fsp): seconds since the epoch, UTC.
    case timestamp(seconds: Int64, microsecond: Int)
    /// TIME(fsp): a signed duration (−838:59:59 to 838:59:59).
    case time(negative: Bool, hours: Int, minutes: Int, seconds: Int, microsecond: Int)
    case year(Int)
    /// ENUM: the 1-based index of the member (0 for the empty error value).
    case enumIndex(Int)
    /// SET: a bitmask of members.
    case setBits(UInt64)
    /// BIT(n): the bits, big-endian, in `(n + 7) / 8` bytes.
    case bits([UInt8])
    /// MySQL 8 JSON in its binary form.
    case binaryJSON([UInt8])

    /// An integer read as unsigned (for UNSIGNED columns).
    public var unsigned: UInt64? {
        guard case let .integer(v, width) = self, (1...8).contains(width) else { return nil }
        return width == 8 ? UInt64(bitPattern: v) : UInt64(bitPattern: v) & ((1 << UInt64(width * 8)) - 1)
    }

    static func signed(_ raw: UInt64, width: Int) -> Int64 {
        let shift = UInt64(64 - width * 8)
        return Int64(bitPattern: raw << shift) >> Int64(shift)
    }

    /// Reads one value of a column of `type` with table-map `metadata`.
    public static func decode(_ r: inout MySQLByteReader, type: UInt8, metadata: UInt16, column: Int) throws -> MySQLValue {
        // The column is named only when something goes wrong (not built for every value).
        do {
            return try decodeValue(&r, type: type, metadata: metadata)
        } catch let e as MySQLProtocolError {
            throw MySQLProtocolError("column \(column + 1): \(e.message)", at: e.offset)
        }
    }

    static func decodeValue(_ r: inout MySQLByteReader, type: UInt8, metadata: UInt16) throws -> MySQLValue {
        let what = "the value"
        switch type {
        case MySQLColumnType.tiny: return .integer(signed(try r.integer(1, what), width: 1), width: 1)
        case MySQLColumnType.short: return .integer(signed(try r.integer(2, what), width: 2), width: 2)
        case MySQLColumnType.int24: return .integer(signed(try r.integer(3, what), width: 3), width: 3)
        case MySQLColumnType.long: return .integer(signed(try r.integer(4, what), width: 4), width: 4)
        case MySQLColumnType.longlong: return .integer(Int64(bitPattern: try r.integer(8, what)), width: 8)
        case MySQLColumnType.float: return .float(Float(bitPattern: UInt32(try r.integer(4, what))))
        case MySQLColumnType.double: return .double(Double(bitPattern: try r.integer(8, what)))
        case MySQLColumnType.year:
            let y = Int(try r.uint8(what))
            return .year(y == 0 ? 0 : 1900 + y)
        case MySQLColumnType.date:
            let v = Int(try r.integer(3, what))
            return .date(year: v >> 9, month: (v >> 5) & 15, day: v & 31)
        case MySQLColumnType.newDecimal:
            return .decimal(try decimal(&r, precision: Int(metadata >> 8), scale: Int(metadata & 0xFF), what))
        case MySQLColumnType.varchar:
            let length = Int(try r.integer(metadata < 256 ? 1 : 2, what))
            return .bytes(try r.bytes(length, what))
        case MySQLColumnType.blob, MySQLColumnType.geometry, MySQLColumnType.json:
            guard (1...4).contains(metadata) else { throw MySQLProtocolError("\(what): a length of \(metadata) bytes (1 to 4 are possible)", at: r.offset) }
            let length = Int(try r.integer(Int(metadata), what))
            let bytes = try r.bytes(length, what)
            return type == MySQLColumnType.json ? .binaryJSON(bytes) : .bytes(bytes)
        case MySQLColumnType.string, MySQLColumnType.varString, MySQLColumnType.enumeration, MySQLColumnType.set:
            // The first metadata byte is the real type, the second the length; lengths over 255
            // borrow two bits of the first (MySQL's "0x30" trick).
            var real = UInt8(metadata >> 8), length = Int(metadata & 0xFF)
            if real & 0x30 != 0x30 {
                length |= Int((real & 0x30) ^ 0x30) << 4
                real |= 0x30
            }
            switch real {
            case MySQLColumnType.enumeration:
                guard length == 1 || length == 2 else { throw MySQLProtocolError("\(what): an ENUM of \(length) bytes", at: r.offset) }
                return .enumIndex(Int(try r.integer(length, what)))
            case MySQLColumnType.set:
                guard [1, 2, 3, 4, 8].contains(length) else { throw MySQLProtocolError("\(what): a SET of \(length) bytes", at: r.offset) }
                return .setBits(try r.integer(length, what))
            default:
                let size = Int(try r.integer(length > 255 ? 2 : 1, what))
                return .bytes(try r.bytes(size, what))
            }
        case MySQLColumnType.bit:
            let bits = Int(metadata & 0xFF), bytes = Int(metadata >> 8)
            return .bits(try r.bytes(bytes + (bits > 0 ? 1 : 0), what))
        case MySQLColumnType.datetime2, MySQLColumnType.timestamp2, MySQLColumnType.time2:
            guard metadata <= 6 else { throw MySQLProtocolError("\(what): \(metadata) fractional digits (0 to 6 are possible)", at: r.offset) }
            return try temporal(&r, type: type, fsp: Int(metadata), what)
        default:
            throw MySQLProtocolError("\(what) has column type \(type), which Sluice cannot decode yet", at: r.offset)
        }
    }

    /// DATETIME2, TIMESTAMP2 and TIME2 with `fsp` (0 to 6) fractional digits.
    static func temporal(_ r: inout MySQLByteReader, type: UInt8, fsp: Int, _ what: String) throws -> MySQLValue {
        switch type {
        case MySQLColumnType.datetime2:
            let packed = try r.bigEndianInteger(5, what) &- 0x80_0000_0000
            let micro = try fraction(&r, fsp: fsp, what)
            let ymd = packed >> 17, hms = packed & 0x1FFFF
            let ym = ymd >> 5
            return .datetime(
                year: Int(ym / 13), month: Int(ym % 13), day: Int(ymd & 31), hour: Int(hms >> 12), minute: Int((hms >> 6) & 63),
                second: Int(hms & 63), microsecond: micro)
        case MySQLColumnType.timestamp2:
            let seconds = Int64(try r.bigEndianInteger(4, what))
            return .timestamp(seconds: seconds, microsecond: try fraction(&r, fsp: fsp, what))
        default:
            return try time2(&r, fsp: fsp, what)
        }
    }

    /// The fractional seconds of DATETIME2 and TIMESTAMP2: (fsp + 1) / 2 big-endian bytes.
    static func fraction(_ r: inout MySQLByteReader, fsp: Int, _ what: String) throws -> Int {
        switch fsp {
        case 1, 2: return Int(try r.uint8(what)) * 10_000
        case 3, 4: return Int(try r.bigEndianInteger(2, what)) * 100
        case 5, 6: return Int(try r.bigEndianInteger(3, what))
        default: return 0
        }
    }

    /// TIME2: 3 big-endian bytes offset by 0x800000 (sign, 10 bits hours, 6 minutes, 6 seconds)
    /// and the fraction, which for negative times borrows from the seconds.
    static func time2(_ r: inout MySQLByteReader, fsp: Int, _ what: String) throws -> MySQLValue {
        var packed: Int64
        switch fsp {
        case 1, 2, 3, 4:
            var whole = Int64(try r.bigEndianInteger(3, what)) - 0x80_0000
            let size = fsp <= 2 ? 1 : 2
            var frac = Int64(try r.bigEndianInteger(size, what))
            if whole < 0 && frac != 0 {
                whole += 1
                frac -= size == 1 ? 0x100 : 0x1_0000
            }
            packed = whole << 24 + frac * (size == 1 ? 10_000 : 100)
        case 5, 6:
            packed = Int64(try r.bigEndianInteger(6, what)) - 0x8000_0000_0000
        default:
            packed = (Int64(try r.bigEndianInteger(3, what)) - 0x80_0000) << 24
        }
        let negative = packed < 0
        let magnitude = negative ? -packed : packed
        let whole = magnitude >> 24
        return .time(
            negative: negative, hours: Int((whole >> 12) & 0x3FF), minutes: Int((whole >> 6) & 63), seconds: Int(whole & 63),
            microsecond: Int(magnitude & 0xFF_FFFF))
    }

    /// DECIMAL's binary form: integer and fraction digits in groups of nine per 4 bytes (fewer
    /// bytes for a partial group), big-endian, the first bit flipped, every byte inverted when
    /// negative.
    public static func decimal(_ r: inout MySQLByteReader, precision: Int, scale: Int, _ what: String = "DECIMAL") throws -> String {
        guard (1...65).contains(precision), (0...30).contains(scale), scale <= precision else {
            throw MySQLProtocolError("\(what): DECIMAL(\(precision),\(scale)) is not a possible type", at: r.offset)
        }
        let integerDigits = precision - scale
        let size = (integerDigits / 9) * 4 + decimalGroupBytes[integerDigits % 9] + (scale / 9) * 4 + decimalGroupBytes[scale % 9]
        guard size > 0 else { return "0" }
        let start = r.offset
        try r.skip(size, what)
        let negative = r.bytes[start] & 0x80 == 0
        // Digits straight into one buffer (sign, 65 digits, point): no text per group.
        return try withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 72) { out -> String in
            var count = 0, pos = start
            /// Appends the next group of `digits` (1 to 9) digits, zero-padded to that many.
            func take(_ digits: Int) throws {
                let n = decimalGroupBytes[digits]
                var value: UInt64 = 0
                for i in pos..<(pos + n) {
                    var b = r.bytes[i]
                    if i == start { b ^= 0x80 }
                    if negative { b = ~b }
                    value = value << 8 | UInt64(b)
                }
                guard value < decimalPowers[digits] else {
                    throw MySQLProtocolError("\(what): a DECIMAL group of \(digits) digits holds \(value)", at: pos)
                }
                pos += n
                var i = count + digits
                while i > count {
                    i -= 1
                    out[i] = UInt8(ascii: "0") + UInt8(value % 10)
                    value /= 10
                }
                count += digits
            }
            out[0] = UInt8(ascii: "-")
            count = 1
            if integerDigits % 9 > 0 { try take(integerDigits % 9) }
            for _ in 0..<(integerDigits / 9) { try take(9) }
            // The integer part without its leading zeros, "0" when it has none left.
            var first = 1
            while first < count - 1 && out[first] == UInt8(ascii: "0") { first += 1 }
            if count == 1 {
                out[1] = UInt8(ascii: "0")
                count = 2
            }
            var allZero = out[first] == UInt8(ascii: "0")
            if scale > 0 {
                out[count] = UInt8(ascii: ".")
                count += 1
                let fractionStart = count
                for _ in 0..<(scale / 9) { try take(9) }
                if scale % 9 > 0 { try take(scale % 9) }
                if allZero { allZero = !out[fractionStart..<count].contains { $0 != UInt8(ascii: "0") } }
            }
            // No negative zero (a server never writes one; damaged bytes could).
            if negative && !allZero {
                first -= 1
                out[first] = UInt8(ascii: "-")
            }
            return String(decoding: UnsafeBufferPointer(rebasing: out[first..<count]), as: UTF8.self)
        }
    }

    /// Bytes of a DECIMAL group of 0 to 9 digits.
    static let decimalGroupBytes = [0, 1, 1, 2, 2, 3, 3, 4, 4, 4]
    /// 10 to the power of 0 to 9.
    static let decimalPowers: [UInt64] = [1, 10, 100, 1_000, 10_000, 100_000, 1_000_000, 10_000_000, 100_000_000, 1_000_000_000]
}
