/// The kind of a scanned JSON value.
enum JSONValueKind: UInt8, BitwiseCopyable {
    /// `bigNumber`: a number neither int64 nor float64 holds as written (beyond int64, beyond
    /// float64's range or precision); only its text is exact.
    case null, bool, int, float, bigNumber, string, nested
}

/// A byte-level JSON (RFC 8259) scanner over one line of input: strings (escapes decoded to
/// UTF-8, raw UTF-8 validated), numbers (int64 when integral and in range, else float64),
/// literals, and nested objects/arrays validated and kept as raw text.
///
/// On failure it records ``errorPosition`` (an index into the input) and ``errorMessage``.
struct JSONScanner {
    let p: UnsafePointer<UInt8>
    let end: Int
    var i: Int
    private(set) var errorPosition = -1
    private(set) var errorMessage: StaticString = ""
    /// The error is invalid UTF-8 in a string (rather than a syntax error).
    private(set) var errorIsUTF8 = false

    static let maxDepth = 512
    /// Nesting deeper than this fails with "nesting too deep" (at most ``maxDepth``).
    var depthLimit = JSONScanner.maxDepth

    init(_ p: UnsafePointer<UInt8>, from start: Int, end: Int) {
        self.p = p
        i = start
        self.end = end
    }

    /// True when `p[0..<n]` is exactly one JSON value (surrounding whitespace allowed).
    static func isValidJSON(_ p: UnsafePointer<UInt8>, _ n: Int) -> Bool {
        var s = JSONScanner(p, from: 0, end: n)
        s.skipWhitespace()
        guard s.skipValue(depth: 0) else { return false }
        s.skipWhitespace()
        return s.i == n
    }

    @inline(__always)
    mutating func fail(_ message: StaticString, at position: Int? = nil) -> Bool {
        if errorPosition < 0 {
            errorPosition = position ?? i
            errorMessage = message
        }
        return false
    }

    @inline(__always)
    mutating func skipWhitespace() {
        while i < end {
            let c = p[i]
            guard c == 0x20 || c == 0x0A || c == 0x0D || c == 0x09 else { return }
            i += 1
        }
    }

    // MARK: Strings

    /// Scans the string whose opening quote is at `i`. The decoded bytes are either the raw
    /// input (`start` is an input index, `inScratch` false) or, when the string has escapes,
    /// written to `out + used` (`start` is a scratch index). `out` must have room for as many bytes
    /// as the raw string. Returns false on a syntax or UTF-8 error.
    @inline(__always)
    mutating func scanString(
        out: UnsafeMutablePointer<UInt8>, used: inout Int,
        start: inout Int, length: inout Int, inScratch: inout Bool
    ) -> Bool {
        i += 1  // opening quote
        let contentStart = i
        // Fast path: no escapes.
        while true {
            // Skip 8 plain bytes at a time (no quote, backslash, control or non-ASCII byte).
            while i + 8 <= end {
                let x = UnsafeRawPointer(p + i).loadUnaligned(as: UInt64.self)
                if Self.hasSpecialByte(x) { break }
                i += 8
            }
            guard i < end else { return fail("unterminated string") }
            let c = p[i]
            if c == UInt8(ascii: "\"") {
                start = contentStart
                length = i - contentStart
                inScratch = false
                i += 1
                return true
            }
            if c == UInt8(ascii: "\\") { break }
            if c < 0x20 { return fail("control character in a string (escape it)") }
            if c >= 0x80 {
                let n = ValueParsing.utf8SequenceLength(p, end, at: i)
                if n == 0 { errorIsUTF8 = errorPosition < 0; return fail("invalid UTF-8 in a string") }
                i += n
            } else {
                i += 1
            }
        }
        // Slow path: copy what was scanned, then decode escapes.
        var o = used
        out.advanced(by: o).update(from: p + contentStart, count: i - contentStart)
        o += i - contentStart
        while true {
            guard i < end else { return fail("unterminated string") }
            let c = p[i]
            if c == UInt8(ascii: "\"") {
                i += 1
                break
            }
            if c == UInt8(ascii: "\\") {
                guard i + 1 < end else { return fail("unterminated string") }
                let e = p[i + 1]
                i += 2
                switch e {
                case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): out[o] = e; o += 1
                case UInt8(ascii: "b"): out[o] = 0x08; o += 1
                case UInt8(ascii: "f"): out[o] = 0x0C; o += 1
                case UInt8(ascii: "n"): out[o] = 0x0A; o += 1
                case UInt8(ascii: "r"): out[o] = 0x0D; o += 1
                case UInt8(ascii: "t"): out[o] = 0x09; o += 1
                case UInt8(ascii: "u"):
                    guard var scalar = hex4(at: i) else { return fail("invalid \\u escape", at: i - 2) }
                    i += 4
                    if scalar >= 0xD800 && scalar < 0xDC00 {
                        guard i + 6 <= end, p[i] == UInt8(ascii: "\\"), p[i + 1] == UInt8(ascii: "u"),
                            let low = hex4(at: i + 2), low >= 0xDC00 && low < 0xE000
                        else {
                            return fail("unpaired UTF-16 surrogate in a \\u escape", at: i - 6)
                        }
                        scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                        i += 6
                    } else if scalar >= 0xDC00 && scalar < 0xE000 {
                        return fail("unpaired UTF-16 surrogate in a \\u escape", at: i - 6)
                    }
                    o += Self.writeUTF8(scalar, to: out + o)
                default:
                    return fail("invalid escape in a string", at: i - 2)
                }
                continue
            }
            if c < 0x20 { return fail("control character in a string (escape it)") }
            if c >= 0x80 {
                let n = ValueParsing.utf8SequenceLength(p, end, at: i)
                if n == 0 { errorIsUTF8 = errorPosition < 0; return fail("invalid UTF-8 in a string") }
                for k in 0..<n { out[o + k] = p[i + k] }
                o += n
                i += n
            } else {
                out[o] = c
                o += 1
                i += 1
            }
        }
        start = used
        length = o - used
        inScratch = true
        used = o
        return true
    }

    /// True when a word of 8 bytes holds `"`, `\`, a byte below 0x20 or a byte ≥ 0x80.
    @inline(__always)
    static func hasSpecialByte(_ x: UInt64) -> Bool {
        let ones: UInt64 = 0x0101_0101_0101_0101, highs: UInt64 = 0x8080_8080_8080_8080
        let quote = x ^ (ones &* 0x22), backslash = x ^ (ones &* 0x5C)
        let zeroQuote = (quote &- ones) & ~quote
        let zeroBackslash = (backslash &- ones) & ~backslash
        let control = (x &- ones &* 0x20) & ~x
        return ((zeroQuote | zeroBackslash | control) & highs) | (x & highs) != 0
    }

    @inline(__always)
    func hex4(at k: Int) -> UInt32? {
        guard k + 4 <= end else { return nil }
        var v: UInt32 = 0
        for j in k..<(k + 4) {
            let c = p[j]
            let d: UInt8
            switch c {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): d = c - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): d = c - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): d = c - UInt8(ascii: "A") + 10
            default: return nil
            }
            v = v << 4 | UInt32(d)
        }
        return v
    }

    @inline(__always)
    static func writeUTF8(_ scalar: UInt32, to out: UnsafeMutablePointer<UInt8>) -> Int {
        if scalar < 0x80 {
            out[0] = UInt8(scalar)
            return 1
        }
        if scalar < 0x800 {
            out[0] = UInt8(0xC0 | (scalar >> 6))
            out[1] = UInt8(0x80 | (scalar & 0x3F))
            return 2
        }
        if scalar < 0x10000 {
            out[0] = UInt8(0xE0 | (scalar >> 12))
            out[1] = UInt8(0x80 | ((scalar >> 6) & 0x3F))
            out[2] = UInt8(0x80 | (scalar & 0x3F))
            return 3
        }
        out[0] = UInt8(0xF0 | (scalar >> 18))
        out[1] = UInt8(0x80 | ((scalar >> 12) & 0x3F))
        out[2] = UInt8(0x80 | ((scalar >> 6) & 0x3F))
        out[3] = UInt8(0x80 | (scalar & 0x3F))
        return 4
    }

    /// Skips a string without decoding it (validating escapes and UTF-8).
    mutating func skipString() -> Bool {
        i += 1
        while true {
            while i + 8 <= end {
                let x = UnsafeRawPointer(p + i).loadUnaligned(as: UInt64.self)
                if Self.hasSpecialByte(x) { break }
                i += 8
            }
            guard i < end else { return fail("unterminated string") }
            let c = p[i]
            if c == UInt8(ascii: "\"") {
                i += 1
                return true
            }
            if c == UInt8(ascii: "\\") {
                guard i + 1 < end else { return fail("unterminated string") }
                switch p[i + 1] {
                case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"), UInt8(ascii: "b"),
                    UInt8(ascii: "f"), UInt8(ascii: "n"), UInt8(ascii: "r"), UInt8(ascii: "t"):
                    i += 2
                case UInt8(ascii: "u"):
                    guard let scalar = hex4(at: i + 2) else { return fail("invalid \\u escape") }
                    if scalar >= 0xD800 && scalar < 0xDC00 {
                        guard i + 12 <= end, p[i + 6] == UInt8(ascii: "\\"), p[i + 7] == UInt8(ascii: "u"),
                            let low = hex4(at: i + 8), low >= 0xDC00 && low < 0xE000
                        else {
                            return fail("unpaired UTF-16 surrogate in a \\u escape")
                        }
                        i += 12
                    } else if scalar >= 0xDC00 && scalar < 0xE000 {
                        return fail("unpaired UTF-16 surrogate in a \\u escape")
                    } else {
                        i += 6
                    }
                default:
                    return fail("invalid escape in a string")
                }
                continue
            }
            if c < 0x20 { return fail("control character in a string (escape it)") }
            if c >= 0x80 {
                let n = ValueParsing.utf8SequenceLength(p, end, at: i)
                if n == 0 { errorIsUTF8 = errorPosition < 0; return fail("invalid UTF-8 in a string") }
                i += n
            } else {
                i += 1
            }
        }
    }

    // MARK: Numbers

    /// Scans a number at `i`. Sets `kind` and the value bits: `.int` (Int64 bit pattern) for an
    /// integer in int64's range, `.float` (Double bit pattern) when float64 holds the number as
    /// written (its shortest float64 text denotes the same number), else `.bigNumber` (no bits:
    /// only the text is exact). Nothing is rounded silently.
    @inline(__always)
    mutating func scanNumber(kind: inout JSONValueKind, bits: inout UInt64) -> Bool {
        let start = i
        var negative = false
        if p[i] == UInt8(ascii: "-") {
            negative = true
            i += 1
        }
        guard i < end else { return fail("invalid number", at: start) }
        var v: UInt64 = 0
        var digits = 0
        let first = p[i]
        if first == UInt8(ascii: "0") {
            i += 1
            digits = 1
        } else if first &- 49 < 9 {
            while i < end {
                let d = p[i] &- 48
                guard d < 10 else { break }
                v = v &* 10 &+ UInt64(d)
                digits += 1
                i += 1
            }
        } else {
            return fail("invalid value", at: start)
        }
        var float = false
        var fractionDigits = 0
        if i < end, p[i] == UInt8(ascii: ".") {
            i += 1
            let fracStart = i
            while i < end, p[i] &- 48 < 10 { i += 1 }
            guard i > fracStart else { return fail("invalid number: digits expected after '.'", at: start) }
            fractionDigits = i - fracStart
            float = true
        }
        if i < end, p[i] | 0x20 == UInt8(ascii: "e") {
            i += 1
            if i < end, p[i] == UInt8(ascii: "+") || p[i] == UInt8(ascii: "-") { i += 1 }
            let expStart = i
            while i < end, p[i] &- 48 < 10 { i += 1 }
            guard i > expStart else { return fail("invalid number: digits expected in the exponent", at: start) }
            float = true
        }
        if !float {
            if digits <= 18 {
                kind = .int
                bits = negative ? 0 &- v : v
                return true
            }
            if let exact = ValueParsing.parseInt64(p + start, i - start) {
                kind = .int
                bits = UInt64(bitPattern: exact)
                return true
            }
            kind = .bigNumber
            return true
        }
        guard let d = ValueParsing.parseDouble(p + start, i - start) else { return fail("invalid number", at: start) }
        // Up to 15 significant digits in float64's normal range convert exactly as written;
        // longer or extreme numbers are compared with their float64's shortest text.
        let exact =
            (digits + fractionDigits <= 15 && (d.isNormal || (d == 0 && v == 0 && !ExactNumber.hasNonzeroDigit(p + start, i - start))))
            || ExactNumber.sameNumber(UnsafeBufferPointer(start: p + start, count: i - start), d)
        if exact {
            kind = .float
            bits = d.bitPattern
        } else {
            kind = .bigNumber
        }
        return true
    }

    // MARK: Values

    /// Matches a literal word at `i`.
    @inline(__always)
    mutating func literal(_ word: StaticString) -> Bool {
        let n = word.utf8CodeUnitCount
        guard i + n <= end else { return fail("invalid value") }
        let w = word.utf8Start
        for k in 0..<n where p[i + k] != w[k] { return fail("invalid value") }
        i += n
        return true
    }

    /// Skips (validates) any value at `i`.
    mutating func skipValue(depth: Int) -> Bool {
        guard i < end else { return fail("value expected") }
        switch p[i] {
        case UInt8(ascii: "{"):
            guard depth < depthLimit else { return fail("nesting too deep") }
            i += 1
            skipWhitespace()
            if i < end, p[i] == UInt8(ascii: "}") {
                i += 1
                return true
            }
            while true {
                guard i < end, p[i] == UInt8(ascii: "\"") else { return fail("object key (a string) expected") }
                guard skipString() else { return false }
                skipWhitespace()
                guard i < end, p[i] == UInt8(ascii: ":") else { return fail("':' expected after an object key") }
                i += 1
                skipWhitespace()
                guard skipValue(depth: depth + 1) else { return false }
                skipWhitespace()
                guard i < end else { return fail("unterminated object") }
                if p[i] == UInt8(ascii: ",") {
                    i += 1
                    skipWhitespace()
                    continue
                }
                if p[i] == UInt8(ascii: "}") {
                    i += 1
                    return true
                }
                return fail("',' or '}' expected in an object")
            }
        case UInt8(ascii: "["):
            guard depth < depthLimit else { return fail("nesting too deep") }
            i += 1
            skipWhitespace()
            if i < end, p[i] == UInt8(ascii: "]") {
                i += 1
                return true
            }
            while true {
                guard skipValue(depth: depth + 1) else { return false }
                skipWhitespace()
                guard i < end else { return fail("unterminated array") }
                if p[i] == UInt8(ascii: ",") {
                    i += 1
                    skipWhitespace()
                    continue
                }
                if p[i] == UInt8(ascii: "]") {
                    i += 1
                    return true
                }
                return fail("',' or ']' expected in an array")
            }
        case UInt8(ascii: "\""):
            return skipString()
        case UInt8(ascii: "t"):
            return literal("true")
        case UInt8(ascii: "f"):
            return literal("false")
        case UInt8(ascii: "n"):
            return literal("null")
        default:
            var kind = JSONValueKind.null, bits: UInt64 = 0
            return scanNumber(kind: &kind, bits: &bits)
        }
    }
}
