import SluiceCore
import Testing

@testable import SluicePostgres

/// numeric's binary form, built by integer division, matches the one built from the digits as text.
@Suite struct PostgresCopyEncoderTests {
    @Test func numericsEncodeAsTheirDigitsSay() {
        var generator = SystemRandomNumberGenerator()
        var values: [(Int128, Int)] = [(0, 0), (0, 4), (1, 0), (-1, 0), (10_000, 0), (1, 38), (-5, 3), (12345, 2), (100_000_000, 8)]
        let largest = Int128(String(repeating: "9", count: 38))!
        values += [(largest, 0), (-largest, 0), (largest, 3), (largest, 37), (largest, 38), (largest / 7, 5)]
        for _ in 0..<20_000 {
            let digits = Int.random(in: 1...38, using: &generator)
            let text = (0..<digits).map { _ in String(Int.random(in: 0...9, using: &generator)) }.joined()
            var value = Int128(text)!
            if Bool.random(using: &generator) { value = -value }
            values.append((value, Int.random(in: 0...digits, using: &generator)))
        }
        for (value, scale) in values {
            var fast: [UInt8] = [], text: [UInt8] = []
            PostgresCopyEncoder.appendNumeric(value, scale: scale, &fast)
            PostgresCopyEncoder.appendNumericText(value, scale: scale, &text)
            #expect(fast == text, "\(value) scale \(scale)")
            if fast != text { break }
        }
    }
}
