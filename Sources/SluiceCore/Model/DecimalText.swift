/// Text form of unscaled decimals.
public enum DecimalText {
    /// Formats an unscaled value with `scale` digits after the point: `format(12345, scale: 2)` is `123.45`.
    public static func format(_ unscaled: Int128, scale: Int) -> String {
        let negative = unscaled < 0
        var digits = String(negative ? (0 - unscaled).magnitude : unscaled.magnitude)
        if scale > 0 {
            if digits.count <= scale { digits = String(repeating: "0", count: scale - digits.count + 1) + digits }
            digits.insert(".", at: digits.index(digits.endIndex, offsetBy: -scale))
        }
        return negative ? "-" + digits : digits
    }

    /// Parses decimal text into an unscaled value at `scale`; nil when it has more fraction digits
    /// than `scale`, exceeds `precision` digits, or is not a number.
    public static func parse(_ p: UnsafeBufferPointer<UInt8>, precision: Int, scale: Int) -> Int128? {
        var i = 0, negative = false
        if i < p.count, p[i] == UInt8(ascii: "-") || p[i] == UInt8(ascii: "+") { negative = p[i] == UInt8(ascii: "-"); i += 1 }
        var value: Int128 = 0, intDigits = 0, fracDigits = 0, seenPoint = false, any = false
        while i < p.count {
            let c = p[i]
            if c == UInt8(ascii: ".") {
                if seenPoint { return nil }
                seenPoint = true
            } else if c &- 48 < 10 {
                any = true
                if seenPoint { fracDigits += 1; if fracDigits > scale { return nil } } else if value != 0 || c != 48 { intDigits += 1 }
                // Checked before the digit is added: 39 digits overflow Int128 (found by fuzzing).
                if intDigits > precision - scale { return nil }
                value = value * 10 + Int128(c &- 48)
            } else {
                return nil
            }
            i += 1
        }
        guard any else { return nil }
        for _ in fracDigits..<scale { value *= 10 }
        return negative ? -value : value
    }
}
