#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

import SluiceCore

/// A column's ``DataType`` without parameters, cheap to switch on in the decoders' hot loops.
enum ColumnKind: UInt8, BitwiseCopyable {
    case bool, int64, float64, decimal, string, binary, json, date, timestamp

    init(_ type: DataType) {
        switch type {
        case .bool: self = .bool
        case .int64: self = .int64
        case .float64: self = .float64
        case .decimal: self = .decimal
        case .string: self = .string
        case .binary: self = .binary
        case .json: self = .json
        case .date: self = .date
        case .timestamp: self = .timestamp
        }
    }
}

/// Byte-level parsers for the text forms of values, shared by the CSV and NDJSON decoders.
///
/// They take a pointer and a length (the bytes of one field, never NUL-terminated) and
/// allocate nothing on the common path.
enum ValueParsing {
    // MARK: Integers

    /// Parses `[+-]digits` into an Int64; nil when empty, not all digits, or out of range.
    @inline(__always)
    static func parseInt64(_ p: UnsafePointer<UInt8>, _ n: Int) -> Int64? {
        guard n > 0 else { return nil }
        var i = 0
        var negative = false
        let first = p[0]
        if first == UInt8(ascii: "-") || first == UInt8(ascii: "+") {
            negative = first == UInt8(ascii: "-")
            i = 1
            guard n > 1 else { return nil }
        }
        var v: UInt64 = 0
        if n - i <= 18 {
            // 18 digits cannot overflow.
            while i < n {
                let d = p[i] &- 48
                guard d < 10 else { return nil }
                v = v &* 10 &+ UInt64(d)
                i += 1
            }
            return negative ? Int64(bitPattern: 0 &- v) : Int64(bitPattern: v)
        }
        while i < n {
            let d = p[i] &- 48
            guard d < 10 else { return nil }
            let (m, o1) = v.multipliedReportingOverflow(by: 10)
            let (a, o2) = m.addingReportingOverflow(UInt64(d))
            guard !o1, !o2 else { return nil }
            v = a
            i += 1
        }
        if negative {
            guard v <= UInt64(Int64.max) + 1 else { return nil }
            return Int64(bitPattern: 0 &- v)
        }
        guard v <= UInt64(Int64.max) else { return nil }
        return Int64(v)
    }

    /// True when a number's integer part has a superfluous leading zero (`007`, `-01.5`): such
    /// text is an identifier (a ZIP code, an account number), so inference keeps it a string.
    @inline(__always)
    static func hasLeadingZero(_ p: UnsafePointer<UInt8>, _ n: Int) -> Bool {
        var i = 0
        if n > 0, p[0] == UInt8(ascii: "-") || p[0] == UInt8(ascii: "+") { i = 1 }
        return n - i >= 2 && p[i] == UInt8(ascii: "0") && p[i + 1] &- 48 < 10
    }

    // MARK: Floating point

    /// Exact powers of ten representable as doubles.
    static let powersOf10: [Double] = [
        1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11,
        1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
    ]

    /// Parses `[+-](digits[.digits]|.digits)([eE][+-]digits)` (and `nan`, `inf`, `infinity` in any
    /// case) into a correctly rounded Double. Uses the exact fast path when the significand fits in
    /// 53 bits and the power of ten is exact, `strtod` otherwise.
    static func parseDouble(_ p: UnsafePointer<UInt8>, _ n: Int) -> Double? {
        guard n > 0 else { return nil }
        var i = 0
        var negative = false
        if p[0] == UInt8(ascii: "-") || p[0] == UInt8(ascii: "+") {
            negative = p[0] == UInt8(ascii: "-")
            i = 1
        }
        var mantissa: UInt64 = 0
        var digits = 0
        var exp10 = 0
        var truncated = false
        // Integer part: leading zeros, up to 19 significant digits, then any more (they scale).
        let intStart = i
        while i < n, p[i] == UInt8(ascii: "0") { i += 1 }
        while i < n, digits < 19 {
            let d = p[i] &- 48
            guard d < 10 else { break }
            mantissa = mantissa &* 10 &+ UInt64(d)
            digits += 1
            i += 1
        }
        while i < n {
            let d = p[i] &- 48
            guard d < 10 else { break }
            exp10 += 1
            if d != 0 { truncated = true }
            i += 1
        }
        var anyDigit = i > intStart
        if i < n, p[i] == UInt8(ascii: ".") {
            i += 1
            let fracStart = i
            if digits == 0 {
                // 0.000ddd: zeros before the first significant digit only scale.
                while i < n, p[i] == UInt8(ascii: "0") { i += 1 }
                exp10 -= i - fracStart
            }
            while i < n, digits < 19 {
                let d = p[i] &- 48
                guard d < 10 else { break }
                mantissa = mantissa &* 10 &+ UInt64(d)
                digits += 1
                exp10 -= 1
                i += 1
            }
            while i < n {
                let d = p[i] &- 48
                guard d < 10 else { break }
                if d != 0 { truncated = true }
                i += 1
            }
            anyDigit = anyDigit || i > fracStart
        }
        guard anyDigit else { return parseSpecial(p, n, from: i, negative: negative) }
        if i < n, p[i] | 0x20 == UInt8(ascii: "e") {
            i += 1
            var expNegative = false
            if i < n, p[i] == UInt8(ascii: "-") || p[i] == UInt8(ascii: "+") {
                expNegative = p[i] == UInt8(ascii: "-")
                i += 1
            }
            var e = 0, expDigits = 0
            while i < n {
                let d = p[i] &- 48
                guard d < 10 else { break }
                if e < 100_000 { e = e * 10 + Int(d) }
                expDigits += 1
                i += 1
            }
            guard expDigits > 0 else { return nil }
            exp10 += expNegative ? -e : e
        }
        guard i == n else { return nil }
        if mantissa == 0 { return negative ? -0.0 : 0.0 }
        if !truncated && mantissa <= 1 << 53 {
            if exp10 >= 0 && exp10 <= 22 {
                let v = Double(mantissa) * powersOf10[exp10]
                return negative ? -v : v
            }
            if exp10 < 0 && exp10 >= -22 {
                let v = Double(mantissa) / powersOf10[-exp10]
                return negative ? -v : v
            }
        }
        #if arch(x86_64) && !os(Windows)
            if !truncated && exp10 >= -27 && exp10 <= 27, let v = extendedPrecision(mantissa, exp10) {
                return negative ? -v : v
            }
        #endif
        return strtodFallback(p, n)
    }

    #if arch(x86_64) && !os(Windows)
        /// Exact powers of ten as 80-bit floats (10^27 = 5^27 * 2^27 and 5^27 < 2^64).
        static let extendedPowersOf10: [Float80] = (0...27).map { k in
            var v: Float80 = 1
            for _ in 0..<k { v *= 10 }
            return v
        }

        /// `mantissa * 10^exp10` for a significand of up to 64 bits and |exp10| ≤ 27: the x87
        /// product or quotient is rounded once to 64 bits; rounding that to 53 bits gives the correctly
        /// rounded double unless it lies within one 64-bit ulp of a halfway point between two doubles
        /// (then nil, and the caller falls back to `strtod`).
        @inline(__always)
        static func extendedPrecision(_ mantissa: UInt64, _ exp10: Int) -> Double? {
            let m = Float80(mantissa)
            let a = exp10 >= 0 ? m * extendedPowersOf10[exp10] : m / extendedPowersOf10[-exp10]
            let low = a.significandBitPattern & 0x7FF
            if low &- 0x3FF <= 2 { return nil }
            return Double(a)
        }
    #endif

    /// `nan`, `inf`, `infinity` (case-insensitive) after an optional sign.
    static func parseSpecial(_ p: UnsafePointer<UInt8>, _ n: Int, from i: Int, negative: Bool) -> Double? {
        let rest = n - i
        func matches(_ word: StaticString) -> Bool {
            guard rest == word.utf8CodeUnitCount else { return false }
            let w = word.utf8Start
            for k in 0..<rest where p[i + k] | 0x20 != w[k] { return false }
            return true
        }
        if matches("nan") { return .nan }
        if matches("inf") || matches("infinity") { return negative ? -.infinity : .infinity }
        return nil
    }

    /// Correctly rounded conversion by the C library, on a NUL-terminated copy of validated text.
    static func strtodFallback(_ p: UnsafePointer<UInt8>, _ n: Int) -> Double? {
        withUnsafeTemporaryAllocation(of: CChar.self, capacity: n + 1) { buf -> Double? in
            let base = buf.baseAddress!
            UnsafeMutableRawPointer(base).copyMemory(from: p, byteCount: n)
            base[n] = 0
            var endPointer: UnsafeMutablePointer<CChar>?
            let v = strtod(base, &endPointer)
            guard let endPointer, endPointer - base == n else { return nil }
            return v
        }
    }

    // MARK: Booleans

    /// `true` / `false`, case-insensitive.
    @inline(__always)
    static func parseBool(_ p: UnsafePointer<UInt8>, _ n: Int) -> Bool? {
        if n == 4 {
            if p[0] | 0x20 == UInt8(ascii: "t"), p[1] | 0x20 == UInt8(ascii: "r"),
                p[2] | 0x20 == UInt8(ascii: "u"), p[3] | 0x20 == UInt8(ascii: "e")
            {
                return true
            }
        } else if n == 5 {
            if p[0] | 0x20 == UInt8(ascii: "f"), p[1] | 0x20 == UInt8(ascii: "a"), p[2] | 0x20 == UInt8(ascii: "l"),
                p[3] | 0x20 == UInt8(ascii: "s"), p[4] | 0x20 == UInt8(ascii: "e")
            {
                return false
            }
        }
        return nil
    }

    // MARK: UTF-8

    /// True when the bytes are well-formed UTF-8 (no overlong forms, surrogates or values past U+10FFFF).
    @inline(__always)
    static func isValidUTF8(_ p: UnsafePointer<UInt8>, _ n: Int) -> Bool {
        var i = 0
        while i + 8 <= n {
            if UnsafeRawPointer(p + i).loadUnaligned(as: UInt64.self) & 0x8080_8080_8080_8080 != 0 {
                return validateUTF8Slow(p, n, from: i)
            }
            i += 8
        }
        while i < n {
            if p[i] >= 0x80 { return validateUTF8Slow(p, n, from: i) }
            i += 1
        }
        return true
    }

    static func validateUTF8Slow(_ p: UnsafePointer<UInt8>, _ n: Int, from start: Int) -> Bool {
        var i = start
        while i < n {
            let c = p[i]
            if c < 0x80 { i += 1; continue }
            let length = utf8SequenceLength(p, n, at: i)
            if length == 0 { return false }
            i += length
        }
        return true
    }

    /// Length of the well-formed multi-byte UTF-8 sequence starting at `i` (lead byte ≥ 0x80), or 0.
    @inline(__always)
    static func utf8SequenceLength(_ p: UnsafePointer<UInt8>, _ n: Int, at i: Int) -> Int {
        let c = p[i]
        if c < 0xC2 { return 0 }
        if c < 0xE0 {
            guard i + 1 < n, p[i + 1] & 0xC0 == 0x80 else { return 0 }
            return 2
        }
        if c < 0xF0 {
            guard i + 2 < n else { return 0 }
            let c1 = p[i + 1], c2 = p[i + 2]
            guard c1 & 0xC0 == 0x80, c2 & 0xC0 == 0x80 else { return 0 }
            if c == 0xE0 && c1 < 0xA0 { return 0 }  // overlong
            if c == 0xED && c1 >= 0xA0 { return 0 }  // surrogate
            return 3
        }
        if c < 0xF5 {
            guard i + 3 < n else { return 0 }
            let c1 = p[i + 1], c2 = p[i + 2], c3 = p[i + 3]
            guard c1 & 0xC0 == 0x80, c2 & 0xC0 == 0x80, c3 & 0xC0 == 0x80 else { return 0 }
            if c == 0xF0 && c1 < 0x90 { return 0 }  // overlong
            if c == 0xF4 && c1 >= 0x90 { return 0 }  // past U+10FFFF
            return 4
        }
        return 0
    }

    // MARK: Messages

    /// A short, printable rendering of raw bytes for reject messages.
    static func preview(_ p: UnsafePointer<UInt8>, _ n: Int, limit: Int = 64) -> String {
        let shown = min(n, limit)
        var text = String(decoding: UnsafeBufferPointer(start: p, count: shown), as: UTF8.self)
        if shown < n { text += "…" }
        return text
    }
}
