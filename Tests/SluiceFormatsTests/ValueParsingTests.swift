import Foundation
import SluiceCore
import Testing
@testable import SluiceFormats

@Suite struct ValueParsingTests {
    func parse<T>(_ text: String, _ body: (UnsafePointer<UInt8>, Int) -> T) -> T {
        var t = text
        return t.withUTF8 { body($0.baseAddress ?? UnsafePointer(bitPattern: 1)!, $0.count) }
    }

    @Test func integers() {
        #expect(parse("0", ValueParsing.parseInt64) == 0)
        #expect(parse("-17", ValueParsing.parseInt64) == -17)
        #expect(parse("+42", ValueParsing.parseInt64) == 42)
        #expect(parse("9223372036854775807", ValueParsing.parseInt64) == .max)
        #expect(parse("-9223372036854775808", ValueParsing.parseInt64) == .min)
        #expect(parse("0009223372036854775807", ValueParsing.parseInt64) == .max)
        for bad in ["", "-", "+", "9223372036854775808", "-9223372036854775809", "99999999999999999999", "1.0", "1e3", " 1", "1 ", "0x10", "--1"] {
            #expect(parse(bad, ValueParsing.parseInt64) == nil, "\(bad)")
        }
    }

    @Test func leadingZeros() {
        #expect(parse("007", ValueParsing.hasLeadingZero))
        #expect(parse("-01.5", ValueParsing.hasLeadingZero))
        #expect(!parse("0", ValueParsing.hasLeadingZero))
        #expect(!parse("0.5", ValueParsing.hasLeadingZero))
        #expect(!parse("10", ValueParsing.hasLeadingZero))
    }

    @Test func booleans() {
        #expect(parse("true", ValueParsing.parseBool) == true)
        #expect(parse("TRUE", ValueParsing.parseBool) == true)
        #expect(parse("False", ValueParsing.parseBool) == false)
        for bad in ["", "t", "yes", "1", "truee", "fals"] { #expect(parse(bad, ValueParsing.parseBool) == nil) }
    }

    @Test func floatsAreCorrectlyRounded() {
        let cases = [
            "0", "-0", "1", "1.5", "0.1", "0.2", "0.3", "-2.5e-3", "1e22", "1e23", "9007199254740993", "9007199254740992",
            "2.2250738585072011e-308", "2.2250738585072014e-308", "4.9e-324", "1.7976931348623157e308", "1e308",
            "123456789012345678901234567890", "0.000000000000000000000000000001", "3.141592653589793238462643383279",
            "1.00000000000000011102230246251565404236316680908203125", "7.038531e-26", "1.5e-10", ".5", "5.", "1E5",
            "+3.25", "12345678901234567", "4503599627370497.5", "89255.0e-22", "1e-400", "1e400",
        ]
        for text in cases {
            let parsed = parse(text, ValueParsing.parseDouble)
            #expect(parsed?.bitPattern == Double(text)?.bitPattern, "\(text)")
        }
        var rng = SystemRandomNumberGenerator()
        for _ in 0..<20_000 {
            let d = Double(bitPattern: rng.next() & 0x7FEF_FFFF_FFFF_FFFF)
            for text in [d.description, String(format: "%.17g", d), String(format: "%.6e", d), String(format: "%.3f", d)] {
                #expect(parse(text, ValueParsing.parseDouble)?.bitPattern == Double(text)?.bitPattern, "\(text)")
            }
        }
        for _ in 0..<20_000 {
            let text = "\(Int.random(in: -999_999...999_999)).\(Int.random(in: 0...99_999_999))e\(Int.random(in: -30...30))"
            #expect(parse(text, ValueParsing.parseDouble)?.bitPattern == Double(text)?.bitPattern, "\(text)")
        }
    }

    @Test func floatsWithLongSignificandsAndSmallExponents() {
        // The 64-bit significand path (up to 19 digits, |exponent| ≤ 27) and its halfway cases.
        var cases = [
            "9007199254740993", "9007199254740995", "18014398509481985", "1.8014398509481985e3",
            "9223372036854775807", "18446744073709551615", "9999999999999999999e27", "1e-27", "0.30000000000000004",
            "2.9999999999999996", "123456789012345678e-27", "4611686018427387905", "36028797018963969e-10",
        ]
        for _ in 0..<50_000 {
            let m = UInt64.random(in: 0...9_999_999_999_999_999_999)
            cases.append("\(m)e\(Int.random(in: -27...27))")
            let digits = String(m)
            let point = Int.random(in: 0...digits.count)
            cases.append(String(digits.prefix(point)) + "." + String(digits.dropFirst(point)) + "0")
        }
        for _ in 0..<2_000 {
            // Exactly halfway between two doubles: an odd multiple of 2^-1 ulp.
            let base = UInt64.random(in: (1 << 52)...(1 << 53)) | 1
            cases.append(String(base << 1 | 1))
            cases.append(String((base << 1 | 1) << 9))
        }
        for text in cases {
            #expect(parse(text, ValueParsing.parseDouble)?.bitPattern == Double(text)?.bitPattern, "\(text)")
        }
    }

    @Test func specialFloatsAndInvalidText() {
        #expect(parse("NaN", ValueParsing.parseDouble)?.isNaN == true)
        #expect(parse("inf", ValueParsing.parseDouble) == .infinity)
        #expect(parse("-Infinity", ValueParsing.parseDouble) == -.infinity)
        #expect(parse("-0.0", ValueParsing.parseDouble)?.sign == .minus)
        for bad in ["", ".", "-", "e5", "1e", "1e+", "1.2.3", "1,5", " 1", "1 ", "0x1p3", "infinit", "nana", "1f"] {
            #expect(parse(bad, ValueParsing.parseDouble) == nil, "\(bad)")
        }
    }

    @Test func utf8Validation() {
        let valid: [[UInt8]] = [[], Array("plain ascii text longer than 8".utf8), Array("é😀中".utf8), [0xF4, 0x8F, 0xBF, 0xBF], [0xEF, 0xBF, 0xBD]]
        for bytes in valid {
            #expect(bytes.withUnsafeBufferPointer { ValueParsing.isValidUTF8($0.baseAddress ?? UnsafePointer(bitPattern: 1)!, $0.count) })
        }
        let invalid: [[UInt8]] = [
            [0x80], [0xC1, 0x80], [0xE0, 0x80, 0x80], [0xED, 0xBF, 0xBF], [0xF0, 0x80, 0x80, 0x80],
            [0xF5, 0x80, 0x80, 0x80], Array("12345678".utf8) + [0xC3], [0xE2, 0x28, 0xA1],
        ]
        for bytes in invalid {
            #expect(!bytes.withUnsafeBufferPointer { ValueParsing.isValidUTF8($0.baseAddress!, $0.count) }, "\(bytes)")
        }
    }

    @Test func base64() {
        for n in 0..<20 {
            let bytes = (0..<n).map { UInt8(truncatingIfNeeded: $0 * 37 + 11) }
            var text: [UInt8] = []
            bytes.withUnsafeBufferPointer { Base64.encode($0.baseAddress ?? UnsafePointer(bitPattern: 1)!, n, into: &text) }
            var decoded = [UInt8](repeating: 0, count: text.count + 4)
            let length = text.withUnsafeBufferPointer { t in
                decoded.withUnsafeMutableBufferPointer { Base64.decode(t.baseAddress ?? UnsafePointer(bitPattern: 1)!, t.count, into: $0.baseAddress!) }
            }
            #expect(length == n)
            #expect(Array(decoded.prefix(n)) == bytes)
        }
        var out: [UInt8] = []
        Array("foobar".utf8).withUnsafeBufferPointer { Base64.encode($0.baseAddress!, 6, into: &out) }
        #expect(String(decoding: out, as: UTF8.self) == "Zm9vYmFy")
        for bad in ["Zm9=v", "a", "Zm9v!", "Zg===", "Zm9!", "Z=9v"] {
            var scratch = [UInt8](repeating: 0, count: 16)
            let r = parse(bad) { p, n in scratch.withUnsafeMutableBufferPointer { Base64.decode(p, n, into: $0.baseAddress!) } }
            #expect(r == nil, "\(bad)")
        }
    }
}

@Suite struct TimestampParsingTests {
    func both(_ text: String) -> (Int64?, Int64?) {
        var t = text
        return t.withUTF8 { b in
            (ValueParsing.parseTimestamp(b.baseAddress ?? UnsafePointer(bitPattern: 1)!, b.count), TemporalText.parseTimestamp(b))
        }
    }

    @Test func fastPathAgreesWithTemporalText() {
        var cases = [
            "2024-01-02T03:04:05Z", "2024-01-02 03:04:05", "2024-01-02t03:04:05z", "2024-02-29T23:59:60Z", "2023-02-29T00:00:00Z",
            "1969-12-31T23:59:59.999999Z", "2024-01-02T03:04:05.1234567891+05:30", "2024-01-02T03:04:05,5-08:00",
            "2024-01-02T03:04:05+0530", "2024-01-02T03:04:05+05", "2024-01-02T03:04Z", "2024-01-02T03:04", "2024-01-02T24:00:00Z",
            "2024-13-02T03:04:05Z", "2024-00-02T03:04:05Z", "2024-01-32T03:04:05Z", "2024-01-02T03:60:05Z", "2024-01-02T03:04:61Z",
            "2024-01-02T03:04:05.", "2024-01-02T03:04:05.Z", "2024-01-02T03:04:05ZZ", "2024-01-02T03:04:05+99:99", "0000-01-01T00:00:00Z",
            "9999-12-31T23:59:59.999999Z", "2024-01-02X03:04:05Z", "2024-01-02T03:04:05 ", "+024-01-02T03:04:05Z", "2024-01-02",
            "2024-01-02T03:04:05+05:3", "2024-01-02T03:04:05+05:300", "abcd-ef-ghTij:kl:mnZ", "2024-01-02T03:04:05-00:00",
        ]
        let pieces = ["0", "1", "9", "2", "-", ":", "T", " ", ".", "Z", "+", "5"]
        for _ in 0..<20_000 {
            var chars = Array("2024-06-15T12:34:56.789+02:00")
            for _ in 0..<Int.random(in: 1...3) {
                chars[Int.random(in: 0..<chars.count)] = Character(pieces.randomElement()!)
            }
            cases.append(String(chars.prefix(Int.random(in: 16...chars.count))))
        }
        for text in cases {
            let (fast, reference) = both(text)
            #expect(fast == reference, "\(text)")
        }
    }
}
