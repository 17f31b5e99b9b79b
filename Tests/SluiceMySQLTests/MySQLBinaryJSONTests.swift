import Foundation
import SluiceMySQL
import Testing

/// MySQL's binary JSON, byte by byte as `json_binary.h` lays it out (no MySQL 8 server could be
/// installed here: the documents are built by hand from the format's description).
@Suite struct MySQLBinaryJSONTests {
    func text(_ hex: String) throws -> String {
        let bytes = stride(from: 0, to: hex.count, by: 2).map { i -> UInt8 in
            let start = hex.index(hex.startIndex, offsetBy: i)
            return UInt8(hex[start..<hex.index(start, offsetBy: 2)], radix: 16)!
        }
        return String(decoding: try MySQLBinaryJSON.text(bytes), as: UTF8.self)
    }

    func hex(_ bytes: [UInt8]) -> String { bytes.map { String(format: "%02x", $0) }.joined() }

    @Test func objectsAndArraysPrintAsMySQLPrintsThem() throws {
        // {"a": 1, "b": [true, null]}: a small object, an inlined int16, a nested small array.
        let object = "00" + "0200" + "1e00" + "12000100" + "13000100" + "050100" + "021400" + "6162" + "0200" + "0a00" + "040100" + "040000"
        #expect(try text(object) == #"{"a": 1, "b": [true, null]}"#)
        // A value placed before its key (offsets are followed, not assumed in order).
        #expect(try text("00" + "0100" + "0e00" + "0d000100" + "0c0b00" + "0178" + "61") == #"{"a": "x"}"#)
        // A large array: an int32 inlined (large containers inline 32-bit values), a string.
        #expect(try text("03" + "02000000" + "14000000" + "0770110100" + "0c12000000" + "0178") == #"[70000, "x"]"#)
        // A small array keeps an int32 out of line.
        #expect(try text("02" + "0100" + "0b00" + "070700" + "70110100") == "[70000]")
        #expect(try text("02" + "0000" + "0400") == "[]")
        #expect(try text("00" + "0000" + "0400") == "{}")
        #expect(try text("") == "null")
    }

    @Test func scalarsKeepTheirValues() throws {
        #expect(try text("09" + "ffffffffffffffff") == "-1")
        #expect(try text("0a" + "ffffffffffffffff") == "18446744073709551615")
        #expect(try text("09" + "0000000000000080") == "-9223372036854775808")
        #expect(try text("05" + "0080") == "-32768")
        #expect(try text("06" + "ffff") == "65535")
        #expect(try text("08" + "ffffffff") == "4294967295")
        #expect(try text("0b" + hex(withUnsafeBytes(of: (2.5).bitPattern.littleEndian, Array.init))) == "2.5")
        // A whole double keeps its point, as MySQL prints it (1.0, not 1).
        #expect(try text("0b" + hex(withUnsafeBytes(of: (3.0).bitPattern.littleEndian, Array.init))) == "3.0")
        #expect(try text("0b" + hex(withUnsafeBytes(of: (0.1).bitPattern.littleEndian, Array.init))) == "0.1")
        #expect(try text("0400") == "null")
        #expect(try text("0401") == "true")
        #expect(try text("0402") == "false")
        // Strings: MySQL's escapes; everything else as UTF-8.
        let s = Array("q\"\\\n\t\u{01}é/😀".utf8)
        #expect(try text("0c" + String(format: "%02x", s.count) + hex(s)) == #""q\"\\\n\t\u0001é/😀""#)
        // A length over two bytes of 7 bits: 200 bytes.
        let long = [UInt8](repeating: UInt8(ascii: "z"), count: 200)
        #expect(try text("0c" + "c801" + hex(long)) == "\"" + String(repeating: "z", count: 200) + "\"")
    }

    @Test func opaqueValuesPrintAsMySQLPrintsThem() throws {
        // [123.45 (DECIMAL(5,2)), 2015-01-15 23:24:25.5 (DATETIME)]
        #expect(try text("0202001b000f0a000f1100f6050502807b2d0c0820a10719761f9519") == #"[123.45, "2015-01-15 23:24:25.500000"]"#)
        func packed(_ v: Int64) -> String { hex(withUnsafeBytes(of: v.littleEndian, Array.init)) }
        let ymd = Int64((2024 * 13 + 2) << 5 | 29)
        #expect(try text("0f0a08" + packed((ymd << 17) << 24)) == #""2024-02-29""#)
        let hms = Int64(838 << 12 | 59 << 6 | 59)
        #expect(try text("0f0b08" + packed(-(hms << 24 + 1))) == #""-838:59:59.000001""#)
        #expect(try text("0f0708" + packed((ymd << 17 | Int64(1 << 12)) << 24)) == #""2024-02-29 01:00:00.000000""#)
        // Any other type keeps MySQL's base64 form (strings of other types too).
        #expect(try text("0ffd026869") == #""base64:type253:aGk=""#)
        #expect(try text("0ffc020102") == #""base64:type252:AQI=""#)
    }

    @Test func damagedDocumentsAreRefused() throws {
        let damaged: [(String, Comment)] = [
            ("0d00", "an unknown type"),
            ("0403", "an unknown literal"),
            ("09ffff", "a cut int64"),
            ("0c05616263", "a string longer than the document"),
            ("0c02c328", "a string that is not UTF-8"),
            ("0cffffffffff01", "a length over 32 bits"),
            ("02" + "0100" + "0700" + "0c0900", "a value offset past the array"),
            ("02" + "0100" + "0700" + "0c0000", "a value offset inside the header"),
            ("00" + "0100" + "0900" + "0700ff00" + "040100", "a key running past the object"),
            ("02" + "ff00" + "0400", "more entries than bytes"),
            ("02" + "0100" + "ff00" + "040100", "a size beyond the document"),
            ("0ff6020502", "a DECIMAL without digits"),
            ("0f0c0400000000", "a DATETIME of 4 bytes"),
            ("0b" + "000000000000f87f", "NaN"),
        ]
        for (hex, comment) in damaged {
            #expect(throws: MySQLProtocolError.self, comment) { _ = try text(hex) }
        }
        // Nesting beyond MySQL's limit of 100 is refused, not a stack overflow.
        func nested(_ depth: Int) -> [UInt8] {
            var document: [UInt8] = [0x09, 1, 0, 0, 0, 0, 0, 0, 0]
            for _ in 0..<depth {
                let size = 4 + 3 + document.count - 1
                document = [0x02, 0x01, 0x00, UInt8(size & 0xFF), UInt8(size >> 8), document[0], 0x07, 0x00] + document.dropFirst()
            }
            return document
        }
        #expect(try MySQLBinaryJSON.text(nested(100)) == Array((String(repeating: "[", count: 100) + "1" + String(repeating: "]", count: 100)).utf8))
        #expect(throws: MySQLProtocolError.self) { _ = try MySQLBinaryJSON.text(nested(101)) }
        // Entries that share their bytes: each level's two entries point at the same child, so
        // 35 levels (under 400 bytes) would print 2^35 values. Refused, quickly.
        var shared: [UInt8] = [0x09, 1, 0, 0, 0, 0, 0, 0, 0]
        for _ in 0..<35 {
            let size = 4 + 6 + shared.count - 1
            shared = [0x02, 0x02, 0x00, UInt8(size & 0xFF), UInt8(size >> 8), shared[0], 0x0A, 0x00, shared[0], 0x0A, 0x00] + shared.dropFirst()
        }
        #expect(shared.count < 400)
        #expect(throws: MySQLProtocolError.self) { _ = try MySQLBinaryJSON.text(shared) }
        // One large string referenced by many entries (quadratic): refused too.
        let string: [UInt8] = [0x0C, 0xE8, 0x07] + [UInt8](repeating: UInt8(ascii: "s"), count: 1000)
        let entries = 300
        let header = 4 + 3 * entries
        var many: [UInt8] = [
            0x02, UInt8(entries & 0xFF), UInt8(entries >> 8), UInt8((header + string.count - 1) & 0xFF), UInt8((header + string.count - 1) >> 8),
        ]
        for _ in 0..<entries { many += [0x0C, UInt8(header & 0xFF), UInt8(header >> 8)] }
        many += string.dropFirst()
        #expect(throws: MySQLProtocolError.self) { _ = try MySQLBinaryJSON.text(many) }
    }
}
