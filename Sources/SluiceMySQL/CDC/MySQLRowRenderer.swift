import Foundation
import SluiceCore

/// JSON text helpers.
enum MySQLJSON {
    /// Appends `bytes` (UTF-8) as a JSON string.
    static func appendString<C: Collection>(_ bytes: C, to out: inout [UInt8]) where C.Element == UInt8 {
        out.append(UInt8(ascii: "\""))
        // Runs of bytes that need no escape are copied whole.
        let copied: Void? = bytes.withContiguousStorageIfAvailable { buffer in
            var start = 0
            for i in 0..<buffer.count where needsEscape(buffer[i]) {
                out.append(contentsOf: UnsafeBufferPointer(rebasing: buffer[start..<i]))
                appendEscaped(buffer[i], to: &out)
                start = i + 1
            }
            out.append(contentsOf: UnsafeBufferPointer(rebasing: buffer[start..<buffer.count]))
        }
        if copied == nil {
            for byte in bytes {
                if needsEscape(byte) { appendEscaped(byte, to: &out) } else { out.append(byte) }
            }
        }
        out.append(UInt8(ascii: "\""))
    }

    @inline(__always)
    static func needsEscape(_ byte: UInt8) -> Bool { byte < 0x20 || byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "\\") }

    static func appendEscaped(_ byte: UInt8, to out: inout [UInt8]) {
        switch byte {
        case UInt8(ascii: "\""), UInt8(ascii: "\\"):
            out.append(UInt8(ascii: "\\"))
            out.append(byte)
        case 0x0A: out += [UInt8(ascii: "\\"), UInt8(ascii: "n")]
        case 0x0D: out += [UInt8(ascii: "\\"), UInt8(ascii: "r")]
        case 0x09: out += [UInt8(ascii: "\\"), UInt8(ascii: "t")]
        default:
            let hex = Array("0123456789abcdef".utf8)
            out += [UInt8(ascii: "\\"), UInt8(ascii: "u"), UInt8(ascii: "0"), UInt8(ascii: "0"), hex[Int(byte >> 4)], hex[Int(byte & 15)]]
        }
    }

    static func appendString(_ text: String, to out: inout [UInt8]) { appendString(text.utf8, to: &out) }

    /// Appends a signed integer's decimal digits.
    @inline(__always)
    static func appendInteger(_ value: Int64, to out: inout [UInt8]) {
        if value < 0 {
            out.append(UInt8(ascii: "-"))
            appendUnsigned(value.magnitude, to: &out)
        } else {
            appendUnsigned(UInt64(value), to: &out)
        }
    }

    /// Appends an unsigned integer's decimal digits.
    @inline(__always)
    static func appendUnsigned(_ value: UInt64, to out: inout [UInt8]) {
        if value < 10 {
            out.append(UInt8(ascii: "0") + UInt8(value))
            return
        }
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 20) { buffer in
            var v = value, start = 20
            repeat {
                start -= 1
                buffer[start] = UInt8(ascii: "0") + UInt8(v % 10)
                v /= 10
            } while v > 0
            out.append(contentsOf: UnsafeBufferPointer(rebasing: buffer[start..<20]))
        }
    }

    /// Appends `value` (≥ 0) as exactly `width` digits, zero-padded (wider values in full).
    @inline(__always)
    static func appendDigits(_ value: Int, _ width: Int, to out: inout [UInt8]) {
        var v = value, n = 0
        repeat { n += 1; v /= 10 } while v > 0
        for _ in n..<max(n, width) { out.append(UInt8(ascii: "0")) }
        appendUnsigned(UInt64(value), to: &out)
    }

    static func hex(_ bytes: some Collection<UInt8>) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count * 2)
        for b in bytes { out += [digits[Int(b >> 4)], digits[Int(b & 15)]] }
        return String(decoding: out, as: UTF8.self)
    }
}

/// Renders row images as JSON objects by column name: numbers as JSON numbers (exact: DECIMAL
/// and unsigned BIGINT keep every digit), text converted to UTF-8, bytes as base64, dates and
/// times in MySQL's own text forms (TIMESTAMP, an instant, in ISO 8601 UTC with `Z`), ENUM and
/// SET as their text, BIT as an unsigned number, GEOMETRY as SRID and WKB hex. A value from the
/// binlog and the same value read by a query render the same.
enum MySQLRowRenderer {
    /// An error naming the table and column of a value that cannot be rendered.
    static func failure(_ shape: MySQLTableShape, _ column: Int, _ why: String) -> SluiceError {
        SluiceError(.malformedInput, "\(shape.name).\(shape.columns[column].name): \(why)", retryable: false)
    }

    // MARK: Binlog values

    /// A binlog row image; absent columns (MINIMAL images) are left out. With `keyOnly`, only
    /// the primary key columns, in key order.
    static func json(_ image: [MySQLValue?], _ shape: MySQLTableShape, keyOnly: Bool = false) throws -> [UInt8] {
        var out: [UInt8] = [UInt8(ascii: "{")]
        out.reserveCapacity(32 + image.count * 16)
        var first = true
        func add(_ c: Int) throws {
            guard c < image.count, let value = image[c] else { return }
            if !first { out.append(UInt8(ascii: ",")) }
            first = false
            out += shape.columns[c].jsonKey
            try append(value, shape, c, to: &out)
        }
        if keyOnly {
            for c in shape.key { try add(c) }
        } else {
            for c in image.indices { try add(c) }
        }
        out.append(UInt8(ascii: "}"))
        return out
    }

    static func append(_ value: MySQLValue, _ shape: MySQLTableShape, _ c: Int, to out: inout [UInt8]) throws {
        let kind = shape.columns[c].kind
        switch (value, kind) {
        case (.null, _):
            out.append(contentsOf: "null".utf8)
        case let (.integer(v, _), .signed):
            MySQLJSON.appendInteger(v, to: &out)
        case (.integer, .unsigned):
            MySQLJSON.appendUnsigned(value.unsigned ?? 0, to: &out)
        case let (.float(f), _):
            out.append(contentsOf: f.description.utf8)
        case let (.double(d), _):
            out.append(contentsOf: d.description.utf8)
        case let (.decimal(text), _):
            out.append(contentsOf: text.utf8)
        case let (.bytes(bytes), .text(.utf8)) where bytes.allSatisfy({ $0 < 0x80 }):
            // ASCII is UTF-8 as it is: no check, no string.
            MySQLJSON.appendString(bytes, to: &out)
        case let (.bytes(bytes), .text(charset)):
            MySQLJSON.appendString(try utf8(bytes, charset, shape, c).utf8, to: &out)
        case let (.bytes(bytes), .binary(pad)):
            var padded = bytes
            if let pad, padded.count < pad { padded += [UInt8](repeating: 0, count: pad - padded.count) }
            MySQLJSON.appendString(Data(padded).base64EncodedString(), to: &out)
        case let (.bytes(bytes), .geometry):
            appendGeometry(bytes, to: &out)
        case let (.binaryJSON(bytes), .json):
            // The document itself (as a snapshot query's text is), not a string holding it.
            do {
                out += try MySQLBinaryJSON.text(bytes)
            } catch let e as MySQLProtocolError {
                throw failure(shape, c, "a MySQL JSON value that cannot be read (\(bytes.count) bytes): \(e.message) at byte \(e.offset)")
            }
        case let (.date(y, m, d), _):
            MySQLJSON.appendString(date(y, m, d), to: &out)
        case let (.datetime(y, mo, d, h, mi, s, micro), .datetime(fsp)):
            // Digits straight into the output: the most common temporal type, on every row.
            out.append(UInt8(ascii: "\""))
            MySQLJSON.appendDigits(y, 4, to: &out)
            out.append(UInt8(ascii: "-"))
            MySQLJSON.appendDigits(mo, 2, to: &out)
            out.append(UInt8(ascii: "-"))
            MySQLJSON.appendDigits(d, 2, to: &out)
            out.append(UInt8(ascii: " "))
            MySQLJSON.appendDigits(h, 2, to: &out)
            out.append(UInt8(ascii: ":"))
            MySQLJSON.appendDigits(mi, 2, to: &out)
            out.append(UInt8(ascii: ":"))
            MySQLJSON.appendDigits(s, 2, to: &out)
            if fsp > 0 {
                out.append(UInt8(ascii: "."))
                var scaled = micro
                for _ in fsp..<6 { scaled /= 10 }
                MySQLJSON.appendDigits(scaled, fsp, to: &out)
            }
            out.append(UInt8(ascii: "\""))
        case let (.timestamp(seconds, micro), .timestamp(fsp)):
            MySQLJSON.appendString(timestamp(seconds: seconds, micro: micro, fsp: fsp), to: &out)
        case let (.time(negative, h, m, s, micro), .time(fsp)):
            MySQLJSON.appendString((negative ? "-" : "") + clock(h, m, s) + fraction(micro, fsp), to: &out)
        case let (.year(y), _):
            MySQLJSON.appendInteger(Int64(y), to: &out)
        case let (.enumIndex(i), .enumeration(values, charset)):
            guard i <= values.count else { throw failure(shape, c, "ENUM index \(i) of \(values.count) values") }
            MySQLJSON.appendString(i == 0 ? "" : try utf8(values[i - 1], charset, shape, c), to: &out)
        case let (.setBits(bits), .set(values, charset)):
            guard values.count >= 64 || bits >> values.count == 0 else { throw failure(shape, c, "SET bits \(bits) beyond its \(values.count) values") }
            let chosen = try values.indices.filter { bits & (1 << UInt64($0)) != 0 }.map { try utf8(values[$0], charset, shape, c) }
            MySQLJSON.appendString(chosen.joined(separator: ","), to: &out)
        case let (.bits(bytes), .bit):
            guard bytes.count <= 8 else { throw failure(shape, c, "a BIT value of \(bytes.count) bytes") }
            out += Array(String(bytes.reduce(UInt64(0)) { $0 << 8 | UInt64($1) }).utf8)
        default:
            throw failure(shape, c, "a binlog value \(value) does not fit the column's type \(kind)")
        }
    }

    static func utf8(_ bytes: [UInt8], _ charset: MySQLTableShape.Charset, _ shape: MySQLTableShape, _ c: Int) throws -> String {
        switch charset {
        case .utf8:
            guard let text = String(validating: bytes, as: UTF8.self) else { throw failure(shape, c, "bytes that are not UTF-8 in a UTF-8 column") }
            return text
        case .latin1:
            return String(decoding: bytes.map { windows1252[Int($0)] }.flatMap { Array(String(UnicodeScalar($0)!).utf8) }, as: UTF8.self)
        case let .foundation(raw):
            guard let text = String(data: Data(bytes), encoding: String.Encoding(rawValue: raw)) else {
                throw failure(shape, c, "bytes that are not valid in the column's character set")
            }
            return text
        case .binary:
            return Data(bytes).base64EncodedString()
        }
    }

    /// MySQL's `latin1` (Windows-1252, with its five unassigned bytes mapped to C1 controls as MySQL does).
    static let windows1252: [UInt32] = (0..<256).map { b in
        let high: [UInt32] = [
            0x20AC, 0x81, 0x201A, 0x0192, 0x201E, 0x2026, 0x2020, 0x2021, 0x02C6, 0x2030, 0x0160, 0x2039, 0x0152, 0x8D, 0x017D, 0x8F,
            0x90, 0x2018, 0x2019, 0x201C, 0x201D, 0x2022, 0x2013, 0x2014, 0x02DC, 0x2122, 0x0161, 0x203A, 0x0153, 0x9D, 0x017E, 0x0178,
        ]
        return (0x80..<0xA0).contains(b) ? high[b - 0x80] : UInt32(b)
    }

    static func appendGeometry(_ bytes: [UInt8], to out: inout [UInt8]) {
        // The server's internal form: a little-endian SRID, then WKB.
        let srid = bytes.count >= 4 ? UInt32(bytes[0]) | UInt32(bytes[1]) << 8 | UInt32(bytes[2]) << 16 | UInt32(bytes[3]) << 24 : 0
        out += Array("{\"srid\":\(srid),\"wkb\":\"\(MySQLJSON.hex(bytes.dropFirst(min(4, bytes.count))))\"}".utf8)
    }

    static func pad(_ value: Int, _ width: Int) -> String {
        let text = String(value)
        return text.count >= width ? text : String(repeating: "0", count: width - text.count) + text
    }

    static func date(_ y: Int, _ m: Int, _ d: Int) -> String { pad(y, 4) + "-" + pad(m, 2) + "-" + pad(d, 2) }
    static func clock(_ h: Int, _ m: Int, _ s: Int) -> String { pad(h, 2) + ":" + pad(m, 2) + ":" + pad(s, 2) }

    /// `.ffffff` cut to `fsp` digits, as MySQL prints a column with `fsp` fractional digits.
    static func fraction(_ micro: Int, _ fsp: Int) -> String {
        fsp > 0 ? "." + String(pad(micro, 6).prefix(fsp)) : ""
    }

    /// A TIMESTAMP: `YYYY-MM-DDTHH:MM:SS[.f]Z` in UTC; the zero timestamp as MySQL prints it.
    static func timestamp(seconds: Int64, micro: Int, fsp: Int) -> String {
        if seconds == 0 && micro == 0 { return "0000-00-00 00:00:00" + fraction(0, fsp) }
        let days = Int(seconds / 86_400), rest = Int(seconds % 86_400)
        let (y, m, d) = TemporalText.civilFromDays(days)
        return date(y, m, d) + "T" + clock(rest / 3600, rest / 60 % 60, rest % 60) + fraction(micro, fsp) + "Z"
    }

    /// A number as the server wrote it, without leading zeros (ZEROFILL), checked to be one.
    static func number(_ bytes: [UInt8], _ shape: MySQLTableShape, _ c: Int) throws -> [UInt8] {
        var i = 0
        var out: [UInt8] = []
        if bytes.first == UInt8(ascii: "-") {
            out.append(UInt8(ascii: "-"))
            i = 1
        }
        while i < bytes.count - 1, bytes[i] == UInt8(ascii: "0"), bytes[i + 1] != UInt8(ascii: ".") { i += 1 }
        let digits = bytes[i...]
        var dots = 0
        guard !digits.isEmpty,
            digits.allSatisfy({ b in
                if b == UInt8(ascii: ".") { dots += 1; return true }
                return (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(b)
            }), dots <= 1, digits.first != UInt8(ascii: ".")
        else {
            throw failure(shape, c, "'\(String(decoding: bytes, as: UTF8.self))' is not a number")
        }
        out += digits
        return out
    }

    // MARK: Snapshot values (text protocol)

    /// A row read by a snapshot query (text values, connection charset utf8mb4, session time
    /// zone UTC; FLOAT columns selected as DOUBLE), rendered as the binlog's would be.
    static func json(text row: [[UInt8]?], _ shape: MySQLTableShape, keyOnly: Bool = false) throws -> [UInt8] {
        var out: [UInt8] = [UInt8(ascii: "{")]
        var first = true
        for c in keyOnly ? shape.key : Array(row.indices) where c < row.count {
            if !first { out.append(UInt8(ascii: ",")) }
            first = false
            out += shape.columns[c].jsonKey
            guard let bytes = row[c] else {
                out += Array("null".utf8)
                continue
            }
            try appendText(bytes, shape, c, to: &out)
        }
        out.append(UInt8(ascii: "}"))
        return out
    }

    static func appendText(_ bytes: [UInt8], _ shape: MySQLTableShape, _ c: Int, to out: inout [UInt8]) throws {
        let text = String(decoding: bytes, as: UTF8.self)
        switch shape.columns[c].kind {
        case .signed, .unsigned, .decimal:
            // As the binlog renders it: ZEROFILL's leading zeros are the text's, not the value's.
            out += try number(bytes, shape, c)
        case .year:
            guard let y = Int(text) else { throw failure(shape, c, "a YEAR '\(text)'") }
            out += Array(String(y).utf8)
        case .float:
            guard let d = Double(text) else { throw failure(shape, c, "a FLOAT '\(text)'") }
            out += Array(Float(d).description.utf8)
        case .double:
            guard let d = Double(text) else { throw failure(shape, c, "a DOUBLE '\(text)'") }
            out += Array(d.description.utf8)
        case .text, .enumeration, .set, .date, .datetime, .time:
            MySQLJSON.appendString(bytes, to: &out)
        case .timestamp:
            MySQLJSON.appendString(text.hasPrefix("0000-00-00") ? text : text.replacingOccurrences(of: " ", with: "T") + "Z", to: &out)
        case .binary:
            MySQLJSON.appendString(Data(bytes).base64EncodedString(), to: &out)
        case .bit:
            guard bytes.count <= 8 else { throw failure(shape, c, "a BIT value of \(bytes.count) bytes") }
            out += Array(String(bytes.reduce(UInt64(0)) { $0 << 8 | UInt64($1) }).utf8)
        case .json:
            out += bytes
        case .geometry:
            appendGeometry(bytes, to: &out)
        }
    }
}
