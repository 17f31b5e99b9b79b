import Testing
@testable import SluiceFormats

@Suite("RLE / bit-packing hybrid")
struct ParquetRLETests {
    func encode(_ values: [UInt32], bitWidth: Int) -> [UInt8] {
        let out = GrowableBytes()
        RLEHybridEncoder.encode(values, bitWidth: bitWidth, into: out)
        return out.array
    }

    func decode(_ bytes: [UInt8], bitWidth: Int, count: Int) throws -> [UInt32] {
        try bytes.withUnsafeBytes { p in
            var d = try RLEHybridDecoder(p, bitWidth: bitWidth)
            return try d.decode(count: count)
        }
    }

    @Test func bitPackingMatchesTheSpecExample() throws {
        // Encodings.md: 0…7 with bit width 3 packs to 10001000 11000110 11111010.
        let bytes = encode([0, 1, 2, 3, 4, 5, 6, 7], bitWidth: 3)
        #expect(bytes == [0x03, 0b1000_1000, 0b1100_0110, 0b1111_1010])
        #expect(try decode(bytes, bitWidth: 3, count: 8) == [0, 1, 2, 3, 4, 5, 6, 7])
    }

    @Test func runsBecomeRLE() throws {
        // 100 × 5 at width 3: header varint(100 << 1) = C8 01, value in one byte.
        let bytes = encode(Array(repeating: 5, count: 100), bitWidth: 3)
        #expect(bytes == [0xC8, 0x01, 0x05])
        // Width 9 values take two bytes, little-endian.
        #expect(encode(Array(repeating: 300, count: 8), bitWidth: 9) == [0x10, 0x2C, 0x01])
        // Width 1 definition levels, all present: one run.
        #expect(encode(Array(repeating: 1, count: 3), bitWidth: 1) == [0x03, 0b0000_0111])
    }

    @Test func literalsBorrowFromTheFollowingRunToStayWholeGroups() throws {
        // 3 literals then 10 × 7: 3 literals + 5 borrowed run values pack as one group; 5 sevens remain as RLE.
        let values: [UInt32] = [1, 2, 3] + Array(repeating: 7, count: 10)
        let bytes = encode(values, bitWidth: 3)
        #expect(bytes[0] == 0x03)  // one bit-packed group
        #expect(Array(bytes[4...]) == [0x0A, 0x07])  // RLE run of 5 sevens
        #expect(try decode(bytes, bitWidth: 3, count: values.count) == values)
    }

    @Test func decodesHandWrittenRuns() throws {
        // RLE 4 × 1, then a bit-packed group of [1,0,1,0,1,0,1,0] (width 1), reading only 10 values.
        let bytes: [UInt8] = [0x08, 0x01, 0x03, 0b0101_0101]
        #expect(try decode(bytes, bitWidth: 1, count: 10) == [1, 1, 1, 1, 1, 0, 1, 0, 1, 0])
    }

    @Test func randomSequencesRoundTrip() throws {
        var rng = SystemRandomNumberGenerator()
        for width in [0, 1, 2, 3, 7, 8, 9, 13, 16, 20, 31, 32] {
            let maxValue: UInt64 = width == 0 ? 0 : (1 << UInt64(width)) - 1
            for _ in 0..<20 {
                var values: [UInt32] = []
                let n = Int.random(in: 0...2000, using: &rng)
                while values.count < n {
                    let v = UInt32(UInt64.random(in: 0...maxValue, using: &rng))
                    let run = Bool.random(using: &rng) ? Int.random(in: 1...40, using: &rng) : 1
                    values.append(contentsOf: repeatElement(v, count: min(run, n - values.count)))
                }
                let bytes = encode(values, bitWidth: width)
                #expect(try decode(bytes, bitWidth: width, count: values.count) == values, "width \(width)")
            }
        }
    }

    @Test func truncatedDataThrows() throws {
        let bytes = encode((0..<64).map { UInt32($0 % 5) }, bitWidth: 3)
        for cut in 0..<bytes.count {
            #expect(throws: ParquetFormatError.self) { _ = try decode(Array(bytes.prefix(cut)), bitWidth: 3, count: 64) }
        }
        // A run value wider than the bit width.
        #expect(throws: ParquetFormatError.self) { _ = try decode([0x02, 0x09], bitWidth: 3, count: 1) }
    }

    @Test func bitWidths() {
        #expect(RLEHybridEncoder.bitWidth(forMax: 0) == 0)
        #expect(RLEHybridEncoder.bitWidth(forMax: 1) == 1)
        #expect(RLEHybridEncoder.bitWidth(forMax: 255) == 8)
        #expect(RLEHybridEncoder.bitWidth(forMax: 256) == 9)
    }
}
