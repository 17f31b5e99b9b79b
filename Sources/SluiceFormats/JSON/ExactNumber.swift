import SluiceCore

/// Exactness of JSON number text against float64 and decimal, on the bytes as written.
///
/// The README promises that a value is exact or refused. A JSON number is read as int64 when it
/// is an integer in range, as float64 when float64 holds it as written, and otherwise as text
/// that only a decimal (or a string column) keeps exactly: ``JSONValueKind/bigNumber``.
enum ExactNumber {
    /// A number as `0.d₁d₂…dₙ × 10^exponent` with no leading or trailing zero digit
    /// (zero: no digits), and its sign.
    struct Normalized: Equatable {
        var negative: Bool
        var digits: [UInt8]
        var exponent: Int
    }

    /// Normalizes JSON (or Swift `Double.description`) number text; nil for anything else.
    static func normalize(_ text: UnsafeBufferPointer<UInt8>) -> Normalized? {
        var i = 0
        var negative = false
        if i < text.count, text[i] == UInt8(ascii: "-") || text[i] == UInt8(ascii: "+") {
            negative = text[i] == UInt8(ascii: "-")
            i += 1
        }
        // Every mantissa digit, and how many come before the point.
        var all: [UInt8] = []
        var beforePoint: Int?
        while i < text.count {
            let c = text[i]
            if c &- 48 < 10 {
                all.append(c &- 48)
            } else if c == UInt8(ascii: "."), beforePoint == nil {
                beforePoint = all.count
            } else {
                break
            }
            i += 1
        }
        guard !all.isEmpty else { return nil }
        var exponent = 0
        if i < text.count, text[i] | 0x20 == UInt8(ascii: "e") {
            i += 1
            var negativeExponent = false
            if i < text.count, text[i] == UInt8(ascii: "-") || text[i] == UInt8(ascii: "+") {
                negativeExponent = text[i] == UInt8(ascii: "-")
                i += 1
            }
            var e = 0
            var any = false
            while i < text.count, text[i] &- 48 < 10 {
                if e < 100_000_000 { e = e * 10 + Int(text[i] &- 48) }
                any = true
                i += 1
            }
            guard any else { return nil }
            exponent = negativeExponent ? -e : e
        }
        guard i == text.count else { return nil }
        guard let first = all.firstIndex(where: { $0 != 0 }) else { return Normalized(negative: false, digits: [], exponent: 0) }
        var digits = Array(all[first...])
        while digits.last == 0 { digits.removeLast() }
        return Normalized(negative: negative, digits: digits, exponent: exponent + (beforePoint ?? all.count) - first)
    }

    /// Whether `d` is the number `text` denotes (compared with `d`'s shortest round-trip text).
    static func sameNumber(_ text: UnsafeBufferPointer<UInt8>, _ d: Double) -> Bool {
        guard d.isFinite, let written = normalize(text) else { return false }
        var shortest = d.description
        guard let stored = shortest.withUTF8({ normalize($0) }) else { return false }
        return written == stored
    }

    /// Whether float64 `d`, parsed from the `n` bytes at `p`, is the number they denote. Words
    /// (`NaN`, `Infinity`) are taken as what they say; up to 15 significant digits in float64's
    /// normal range are exact; anything else is compared with `d`'s shortest text.
    static func isExact(_ p: UnsafePointer<UInt8>, _ n: Int, _ d: Double) -> Bool {
        var digits = 0
        for k in 0..<n {
            let c = p[k]
            if c | 0x20 == UInt8(ascii: "e") { break }
            if c &- 48 < 10 { digits += 1 }
        }
        if digits == 0 { return true }
        if digits <= 15, d.isNormal || (d == 0 && !hasNonzeroDigit(p, n)) { return true }
        return sameNumber(UnsafeBufferPointer(start: p, count: n), d)
    }

    /// Whether the number text has a nonzero digit before any exponent (it is not zero).
    static func hasNonzeroDigit(_ p: UnsafePointer<UInt8>, _ n: Int) -> Bool {
        for k in 0..<n {
            let c = p[k]
            if c | 0x20 == UInt8(ascii: "e") { return false }
            if c &- 49 < 9 { return true }
        }
        return false
    }

    /// The number as the unscaled value of a decimal(`precision`, `scale`), exactly, or nil when
    /// it has more fraction digits than `scale` or more digits than `precision` (exponents and
    /// trailing zeros are taken as written: `1.50` and `1.5e0` fit scale 1).
    static func decimal(_ text: UnsafeBufferPointer<UInt8>, precision: Int, scale: Int) -> Int128? {
        guard let n = normalize(text) else { return nil }
        if n.digits.isEmpty { return 0 }
        let zeros = n.exponent - n.digits.count + scale  // zeros after the digits in the unscaled value
        guard zeros >= 0, n.digits.count + zeros <= precision else { return nil }
        var value: Int128 = 0
        for d in n.digits { value = value * 10 + Int128(d) }
        for _ in 0..<zeros { value *= 10 }
        return n.negative ? -value : value
    }

    /// The decimal type that holds the number exactly with the fewest fraction digits, or nil
    /// when no decimal (at most 38 digits) does.
    static func decimalType(_ text: UnsafeBufferPointer<UInt8>) -> DataType? {
        guard let n = normalize(text) else { return nil }
        if n.digits.isEmpty { return .decimal(precision: 38, scale: 0) }
        let scale = max(0, n.digits.count - n.exponent)
        let integerDigits = max(0, n.exponent)
        guard scale <= 38, integerDigits + scale <= 38 else { return nil }
        return .decimal(precision: 38, scale: scale)
    }
}
