import Foundation

/// MySQL's binary JSON (how a `JSON` column is stored, and how the binlog carries it), rendered
/// as JSON text in MySQL's own layout: `{"a": 1, "b": [true, null]}`, members in stored order.
///
/// The format (MySQL's `json_binary.h`): a type byte, then the value. Objects and arrays come in
/// a small form (2-byte counts and offsets) and a large one (4-byte): the element count, the
/// size in bytes, key entries (offset, length) for objects, value entries (type, and an offset
/// or, for small scalars, the value inlined), then keys and values, placed by their offsets
/// (relative to the container's start, and not necessarily in order after a partial update).
/// Scalars: literals, integers of 16/32/64 bits signed and unsigned, doubles, UTF-8 strings
/// with a variable-length size, and "opaque" values: a MySQL column type and its bytes
/// (DECIMAL, DATE, TIME, DATETIME, TIMESTAMP are printed as values; others as MySQL prints
/// them, `"base64:typeN:…"`). A crafted document whose entries share bytes cannot make the text
/// grow beyond a bound of its size.
///
/// Numbers keep their value exactly: integers and DECIMALs every digit; doubles in the shortest
/// text that reads back to the same double (MySQL's own text may use another notation for the
/// same value, such as `1e100` for `1e+100`).
public enum MySQLBinaryJSON {
    /// MySQL refuses documents nested deeper than this; so does the decoder (the stack is finite).
    public static let maxDepth = 100

    enum ValueType {
        static let smallObject: UInt8 = 0x00
        static let largeObject: UInt8 = 0x01
        static let smallArray: UInt8 = 0x02
        static let largeArray: UInt8 = 0x03
        static let literal: UInt8 = 0x04
        static let int16: UInt8 = 0x05
        static let uint16: UInt8 = 0x06
        static let int32: UInt8 = 0x07
        static let uint32: UInt8 = 0x08
        static let int64: UInt8 = 0x09
        static let uint64: UInt8 = 0x0A
        static let double: UInt8 = 0x0B
        static let string: UInt8 = 0x0C
        static let opaque: UInt8 = 0x0F
    }

    /// The document as JSON text. An empty value is JSON `null` (as MySQL reads it).
    public static func text(_ bytes: [UInt8]) throws -> [UInt8] {
        guard let type = bytes.first else { return Array("null".utf8) }
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count * 2)
        let document = Document(bytes: bytes)
        try document.append(type: type, at: 1, end: bytes.count, depth: 0, to: &out)
        return out
    }

    /// How much longer than its document the text may grow: escapes (`\u0001` for one byte),
    /// doubles and dates outgrow their bytes, but never by this much.
    static let growth = 16

    /// One document being printed. Value entries may point at shared bytes (nothing in the
    /// format forbids it, though MySQL never writes it): the values visited and the text's
    /// length are bounded by the document's size, so a crafted one cannot print exponentially.
    final class Document {
        let bytes: [UInt8]
        var visited = 0
        let longest: Int

        init(bytes: [UInt8]) {
            self.bytes = bytes
            longest = bytes.count * MySQLBinaryJSON.growth + 64
        }

        func fail(_ why: String, at offset: Int) -> MySQLProtocolError {
            MySQLProtocolError("binary JSON: \(why)", at: offset)
        }

        /// A little-endian unsigned integer of `width` bytes at `offset`, inside `end`.
        func unsigned(_ offset: Int, _ width: Int, end: Int, _ what: String) throws -> UInt64 {
            guard offset >= 0, width <= 8, offset + width <= end else { throw fail("\(what) runs past its container", at: offset) }
            var value: UInt64 = 0
            for i in 0..<width { value |= UInt64(bytes[offset + i]) << (8 * UInt64(i)) }
            return value
        }

        /// A value of `type` whose bytes start at `offset` (its container ends at `end`).
        func append(type: UInt8, at offset: Int, end: Int, depth: Int, to out: inout [UInt8]) throws {
            visited += 1
            guard visited <= bytes.count, out.count <= longest else {
                throw fail("values that print far larger than the document (shared offsets)", at: offset)
            }
            switch type {
            case ValueType.smallObject, ValueType.largeObject, ValueType.smallArray, ValueType.largeArray:
                guard depth < MySQLBinaryJSON.maxDepth else { throw fail("nested deeper than \(MySQLBinaryJSON.maxDepth)", at: offset) }
                try appendContainer(
                    object: type <= ValueType.largeObject, large: type & 1 == 1, at: offset, end: end, depth: depth + 1, to: &out)
            case ValueType.literal:
                try appendLiteral(try unsigned(offset, 1, end: end, "a literal"), at: offset, to: &out)
            case ValueType.int16:
                appendSigned(Int64(Int16(truncatingIfNeeded: try unsigned(offset, 2, end: end, "an int16"))), to: &out)
            case ValueType.uint16:
                out += Array(String(try unsigned(offset, 2, end: end, "a uint16")).utf8)
            case ValueType.int32:
                appendSigned(Int64(Int32(truncatingIfNeeded: try unsigned(offset, 4, end: end, "an int32"))), to: &out)
            case ValueType.uint32:
                out += Array(String(try unsigned(offset, 4, end: end, "a uint32")).utf8)
            case ValueType.int64:
                appendSigned(Int64(bitPattern: try unsigned(offset, 8, end: end, "an int64")), to: &out)
            case ValueType.uint64:
                out += Array(String(try unsigned(offset, 8, end: end, "a uint64")).utf8)
            case ValueType.double:
                let d = Double(bitPattern: try unsigned(offset, 8, end: end, "a double"))
                guard d.isFinite else { throw fail("a double that is not a number", at: offset) }
                appendDouble(d, to: &out)
            case ValueType.string:
                let (length, start) = try variableLength(at: offset, end: end)
                guard start + length <= end else { throw fail("a string of \(length) bytes runs past its container", at: offset) }
                try appendString(bytes[start..<(start + length)], at: start, to: &out)
            case ValueType.opaque:
                let fieldType = try unsigned(offset, 1, end: end, "an opaque value's type")
                let (length, start) = try variableLength(at: offset + 1, end: end)
                guard start + length <= end else { throw fail("an opaque value of \(length) bytes runs past its container", at: offset) }
                try appendOpaque(UInt8(fieldType), Array(bytes[start..<(start + length)]), at: start, to: &out)
            default:
                throw fail("unknown value type \(type)", at: offset - 1)
            }
        }

        /// An object or array starting at `offset` (its element count), inside `end`.
        func appendContainer(object: Bool, large: Bool, at offset: Int, end: Int, depth: Int, to out: inout [UInt8]) throws {
            let width = large ? 4 : 2
            let count = Int(try unsigned(offset, width, end: end, "an element count"))
            let size = Int(try unsigned(offset + width, width, end: end, "a container size"))
            let limit = offset + size
            guard size >= 2 * width, limit <= end else { throw fail("a container of \(size) bytes in \(end - offset)", at: offset) }
            let keyEntry = width + 2
            let valueEntry = 1 + width
            let keysStart = offset + 2 * width
            let valuesStart = keysStart + (object ? count * keyEntry : 0)
            guard count <= size, valuesStart + count * valueEntry <= limit else {
                throw fail("\(count) entries do not fit in a container of \(size) bytes", at: offset)
            }
            out.append(object ? UInt8(ascii: "{") : UInt8(ascii: "["))
            for i in 0..<count {
                if i > 0 { out += [UInt8(ascii: ","), UInt8(ascii: " ")] }
                if object {
                    let entry = keysStart + i * keyEntry
                    let keyOffset = Int(try unsigned(entry, width, end: limit, "a key offset"))
                    let keyLength = Int(try unsigned(entry + width, 2, end: limit, "a key length"))
                    guard keyOffset >= 2 * width, offset + keyOffset + keyLength <= limit else {
                        throw fail("key \(i) lies outside its object", at: entry)
                    }
                    try appendString(bytes[(offset + keyOffset)..<(offset + keyOffset + keyLength)], at: offset + keyOffset, to: &out)
                    out += [UInt8(ascii: ":"), UInt8(ascii: " ")]
                }
                let entry = valuesStart + i * valueEntry
                let type = bytes[entry]
                let inlined =
                    type == ValueType.literal || type == ValueType.int16 || type == ValueType.uint16
                    || (large && (type == ValueType.int32 || type == ValueType.uint32))
                if inlined {
                    // The value sits in the entry's offset field (little-endian, low bytes first).
                    try append(type: type, at: entry + 1, end: entry + 1 + width, depth: depth, to: &out)
                } else {
                    let valueOffset = Int(try unsigned(entry + 1, width, end: limit, "a value offset"))
                    guard valueOffset >= 2 * width, valueOffset < size else { throw fail("value \(i) lies outside its container", at: entry) }
                    try append(type: type, at: offset + valueOffset, end: limit, depth: depth, to: &out)
                }
            }
            out.append(object ? UInt8(ascii: "}") : UInt8(ascii: "]"))
        }

        /// A length of 1–5 bytes, 7 bits each, low bits first; returns it and where the data starts.
        func variableLength(at offset: Int, end: Int) throws -> (Int, Int) {
            var value = 0
            for i in 0..<5 {
                guard offset + i < end else { throw fail("a length runs past its container", at: offset) }
                let byte = bytes[offset + i]
                value |= Int(byte & 0x7F) << (7 * i)
                if byte & 0x80 == 0 {
                    guard value <= Int(UInt32.max) else { break }
                    return (value, offset + i + 1)
                }
            }
            throw fail("a length of more than 32 bits", at: offset)
        }

        func appendLiteral(_ value: UInt64, at offset: Int, to out: inout [UInt8]) throws {
            switch value & 0xFF {
            case 0: out += Array("null".utf8)
            case 1: out += Array("true".utf8)
            case 2: out += Array("false".utf8)
            default: throw fail("unknown literal \(value & 0xFF)", at: offset)
            }
        }

        func appendSigned(_ value: Int64, to out: inout [UInt8]) { out += Array(String(value).utf8) }

        /// The shortest text that reads back to `d`, always with a `.` or an exponent (so it reads
        /// back as a double, as MySQL's does).
        func appendDouble(_ d: Double, to out: inout [UInt8]) {
            var text = d.description
            if !text.contains(".") && !text.contains("e") { text += ".0" }
            out += Array(text.utf8)
        }

        /// A JSON string with MySQL's escapes (`\"`, `\\`, `\b`, `\f`, `\n`, `\r`, `\t`, other control
        /// characters as `\u00xx`); the bytes must be UTF-8.
        func appendString(_ text: ArraySlice<UInt8>, at offset: Int, to out: inout [UInt8]) throws {
            guard String(validating: text, as: UTF8.self) != nil else {
                throw fail("a string that is not UTF-8", at: offset)
            }
            out.append(UInt8(ascii: "\""))
            for byte in text {
                switch byte {
                case UInt8(ascii: "\""): out += [UInt8(ascii: "\\"), UInt8(ascii: "\"")]
                case UInt8(ascii: "\\"): out += [UInt8(ascii: "\\"), UInt8(ascii: "\\")]
                case 0x08: out += [UInt8(ascii: "\\"), UInt8(ascii: "b")]
                case 0x0C: out += [UInt8(ascii: "\\"), UInt8(ascii: "f")]
                case 0x0A: out += [UInt8(ascii: "\\"), UInt8(ascii: "n")]
                case 0x0D: out += [UInt8(ascii: "\\"), UInt8(ascii: "r")]
                case 0x09: out += [UInt8(ascii: "\\"), UInt8(ascii: "t")]
                case 0..<0x20:
                    let hex = Array("0123456789abcdef".utf8)
                    out += Array("\\u00".utf8) + [hex[Int(byte >> 4)], hex[Int(byte & 0xF)]]
                default: out.append(byte)
                }
            }
            out.append(UInt8(ascii: "\""))
        }

        /// An opaque value: a MySQL column type and its bytes.
        func appendOpaque(_ fieldType: UInt8, _ data: [UInt8], at offset: Int, to out: inout [UInt8]) throws {
            switch fieldType {
            case MySQLColumnType.newDecimal:
                guard data.count >= 2 else { throw fail("a DECIMAL without precision and scale", at: offset) }
                var r = MySQLByteReader(Array(data.dropFirst(2)))
                out += Array(try MySQLValue.decimal(&r, precision: Int(data[0]), scale: Int(data[1]), "a DECIMAL in JSON").utf8)
            case MySQLColumnType.date, MySQLColumnType.datetime, MySQLColumnType.timestamp, MySQLColumnType.time:
                guard data.count == 8 else { throw fail("a packed date or time of \(data.count) bytes", at: offset) }
                let packed = Int64(bitPattern: data.enumerated().reduce(UInt64(0)) { $0 | UInt64($1.element) << (8 * UInt64($1.offset)) })
                out += Array(("\"" + Self.temporal(packed, fieldType) + "\"").utf8)
            default:
                // MySQL prints every other opaque value (strings of other types too) this way.
                out += Array("\"base64:type\(fieldType):\(Data(data).base64EncodedString())\"".utf8)
            }
        }

        /// A packed temporal value as MySQL prints it in JSON: dates as `YYYY-MM-DD`, the others
        /// with six fractional digits.
        static func temporal(_ packed: Int64, _ fieldType: UInt8) -> String {
            let negative = packed < 0
            let magnitude = packed.magnitude
            let micro = Int(magnitude % (1 << 24))
            let fraction = "." + pad(micro, 6)
            if fieldType == MySQLColumnType.time {
                let hms = magnitude >> 24
                let clock = pad(Int((hms >> 12) % (1 << 10)), 2) + ":" + pad(Int((hms >> 6) % (1 << 6)), 2) + ":" + pad(Int(hms % (1 << 6)), 2)
                return (negative ? "-" : "") + clock + fraction
            }
            let ymdhms = magnitude >> 24
            let ymd = ymdhms >> 17, hms = ymdhms % (1 << 17)
            let ym = ymd >> 5
            let date = pad(Int(ym / 13), 4) + "-" + pad(Int(ym % 13), 2) + "-" + pad(Int(ymd % (1 << 5)), 2)
            if fieldType == MySQLColumnType.date { return date }
            let clock = pad(Int(hms >> 12), 2) + ":" + pad(Int((hms >> 6) % (1 << 6)), 2) + ":" + pad(Int(hms % (1 << 6)), 2)
            return date + " " + clock + fraction
        }

        static func pad(_ value: Int, _ width: Int) -> String {
            let text = String(value)
            return text.count >= width ? text : String(repeating: "0", count: width - text.count) + text
        }
    }
}
