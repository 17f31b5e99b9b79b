import SluiceCore
import Testing

/// The builder keeps a validity bitmap only from a batch's first null on; these pin that the
/// lazily started bitmap says the same as one written value by value.
@Suite struct ColumnBuilderTests {
    /// Nulls at the positions of `nulls` among `count` int64 values, appended in order.
    func built(count: Int, nulls: Set<Int>) -> Column {
        var b = ColumnBuilder(type: .int64, capacity: 16)
        for i in 0..<count {
            if nulls.contains(i) { b.appendNull() } else { b.append(Int64(i)) }
        }
        return b.finish()
    }

    @Test func aColumnWithoutNullsHasNoBitmap() {
        let c = built(count: 200, nulls: [])
        #expect(c.validity == nil)
        #expect(c.nullCount == 0)
        #expect((0..<200).map { c.value(at: $0) } == (0..<200).map { .int64(Int64($0)) })
    }

    @Test(arguments: [0, 1, 63, 64, 65, 127, 128, 130, 199])
    func firstNullAfterAnyNumberOfValues(at first: Int) {
        let nulls = Set([first, first + 3, 199].filter { $0 < 200 })
        let c = built(count: 200, nulls: nulls)
        #expect(c.nullCount == nulls.count)
        #expect(c.validity?.count == 200)
        for i in 0..<200 {
            #expect(c.isNull(i) == nulls.contains(i), "row \(i)")
            if !nulls.contains(i) { #expect(c.value(at: i) == .int64(Int64(i))) }
        }
    }

    @Test func theNextBatchStartsWithoutTheBitmap() {
        var b = ColumnBuilder(type: .string)
        b.appendBytes(Array("a".utf8))
        b.appendNull()
        let first = b.finish()
        #expect(first.isNull(1) && !first.isNull(0))
        b.appendBytes(Array("b".utf8))
        b.appendBytes(Array("c".utf8))
        let second = b.finish()
        #expect(second.validity == nil)
        #expect(second.value(at: 1) == .string("c"))
    }

    @Test func removingTheOnlyNullDropsTheBitmap() {
        var b = ColumnBuilder(type: .float64)
        b.append(1.5)
        b.appendNull()
        b.removeLast()
        b.append(2.5)
        let c = b.finish()
        #expect(c.validity == nil)
        #expect(c.value(at: 1) == .float64(2.5))

        b.appendNull()
        b.append(3.0)
        b.removeLast()
        let d = b.finish()
        #expect(d.count == 1 && d.isNull(0))
    }

    @Test func appendValidFillsWordsAcrossBoundaries() {
        for (before, n) in [(0, 0), (0, 64), (3, 61), (3, 62), (63, 1), (63, 130), (10, 500)] {
            var lazy = ValidityBitmap()
            var plain = ValidityBitmap()
            for _ in 0..<before {
                lazy.append(false)
                plain.append(false)
            }
            lazy.appendValid(n)
            for _ in 0..<n { plain.append(true) }
            lazy.append(false)
            plain.append(false)
            #expect(lazy == plain, "\(before) then \(n)")
        }
    }
}
