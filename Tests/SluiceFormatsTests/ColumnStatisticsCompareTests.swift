import Testing

@testable import SluiceFormats

/// The writer's byte comparison (min and max of string pages) orders as unsigned bytes do, a
/// shorter value first on a common prefix, at every length around the 8-byte steps it takes.
@Suite struct ColumnStatisticsCompareTests {
    @Test func ordersAsUnsignedBytesWithShorterFirst() {
        var state: UInt64 = 7
        func next() -> UInt64 {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return state >> 33
        }
        // Few distinct bytes (one above 0x7F), so long common prefixes are frequent.
        let alphabet: [UInt8] = [0x00, 0x41, 0x42, 0x7F, 0x80, 0xFF]
        for _ in 0..<20_000 {
            let prefix = (0..<Int(next() % 20)).map { _ in alphabet[Int(next()) % alphabet.count] }
            let a = prefix + (0..<Int(next() % 12)).map { _ in alphabet[Int(next()) % alphabet.count] }
            let b = prefix + (0..<Int(next() % 12)).map { _ in alphabet[Int(next()) % alphabet.count] }
            let expected = a.lexicographicallyPrecedes(b) ? -1 : (a == b ? 0 : 1)
            let got = a.withUnsafeBytes { pa in b.withUnsafeBytes { pb in ColumnStatistics.compare(pa, pb) } }
            #expect(got.signum() == expected, "\(a) vs \(b)")
        }
    }

    @Test func emptyValuesComeFirst() {
        let empty: [UInt8] = []
        let one: [UInt8] = [0]
        #expect(empty.withUnsafeBytes { e in one.withUnsafeBytes { ColumnStatistics.compare(e, $0) } } < 0)
        #expect(empty.withUnsafeBytes { e in empty.withUnsafeBytes { ColumnStatistics.compare(e, $0) } } == 0)
    }
}
