import Testing

@testable import SluiceServer

@Suite struct PushSupportTests {
    /// `<12 hex digits>-<10 hex digits>`, the counter counting up by one.
    @Test func requestIDsArePrefixAndACountingHexNumber() throws {
        let first = RequestID.next()
        let second = RequestID.next()
        for id in [first, second] {
            #expect(id.utf8.count == 23, "\(id)")
            #expect(id.utf8.allSatisfy { "0123456789abcdef-".utf8.contains($0) }, "\(id)")
        }
        let (a, b) = (first.split(separator: "-"), second.split(separator: "-"))
        #expect(a.count == 2 && b.count == 2 && a[0] == b[0] && a[0].count == 12)
        let n = try #require(UInt64(a[1], radix: 16)), m = try #require(UInt64(b[1], radix: 16))
        #expect(m >= n + 1)  // other tests may take ids in between
        let hex = String(n, radix: 16)
        #expect(a[1] == String(repeating: "0", count: max(0, 10 - hex.count)) + hex)
    }
}
