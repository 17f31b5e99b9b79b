/// The RLE / bit-packing hybrid encoding (Encodings.md, "RLE = 3"), without the 4-byte length prefix.
///
/// Runs of 8 or more equal values become RLE runs; everything between them is bit-packed in
/// groups of 8. A literal stretch whose length is not a multiple of 8 borrows up to 7 values from
/// the run that follows, so only the very last bit-packed run is padded (with zeros).
enum RLEHybridEncoder {
    /// Longest bit-packed run emitted (63 groups keeps the header to one byte, as most writers do).
    static let maxGroupsPerBitPackedRun = 63

    static func encode<T: FixedWidthInteger & UnsignedInteger>(
        _ values: UnsafeBufferPointer<T>, bitWidth: Int,
        into out: GrowableBytes
    ) {
        precondition(bitWidth >= 0 && bitWidth <= 32)
        let n = values.count
        var literalStart = 0
        var i = 0
        while i < n {
            let v = values[i]
            var j = i + 1
            while j < n && values[j] == v { j += 1 }
            if j - i >= 8 {
                var rleStart = i
                let literal = i - literalStart
                if literal > 0 {
                    let pad = (8 - literal % 8) % 8
                    bitPack(values, from: literalStart, count: literal + pad, bitWidth: bitWidth, into: out)
                    rleStart = i + pad
                }
                repeated(UInt32(truncatingIfNeeded: v), count: j - rleStart, bitWidth: bitWidth, into: out)
                literalStart = j
            }
            i = j
        }
        if literalStart < n {
            bitPack(values, from: literalStart, count: n - literalStart, bitWidth: bitWidth, into: out)
        }
    }

    static func encode(_ values: [UInt32], bitWidth: Int, into out: GrowableBytes) {
        values.withUnsafeBufferPointer { encode($0, bitWidth: bitWidth, into: out) }
    }

    static func encode(_ values: [UInt8], bitWidth: Int, into out: GrowableBytes) {
        values.withUnsafeBufferPointer { encode($0, bitWidth: bitWidth, into: out) }
    }

    /// An RLE run: header `count << 1`, then the value in ceil(bitWidth / 8) little-endian bytes.
    static func repeated(_ value: UInt32, count: Int, bitWidth: Int, into out: GrowableBytes) {
        precondition(count > 0 && count <= Int(Int32.max))
        writeVarint(UInt64(count) << 1, into: out)
        let valueBytes = (bitWidth + 7) / 8
        for b in 0..<valueBytes { out.append(byte: UInt8(truncatingIfNeeded: value >> (8 * UInt32(b)))) }
    }

    /// Bit-packed runs of `count` values (zero-padded to a multiple of 8), LSB first.
    static func bitPack<T: FixedWidthInteger & UnsignedInteger>(
        _ values: UnsafeBufferPointer<T>, from start: Int, count: Int,
        bitWidth: Int, into out: GrowableBytes
    ) {
        var start = start
        var left = count
        let maxValues = maxGroupsPerBitPackedRun * 8
        while left > 0 {
            let take = min(left, maxValues)
            let groups = (take + 7) / 8
            writeVarint(UInt64(groups) << 1 | 1, into: out)
            let byteCount = groups * bitWidth
            let dst = out.writableTail(minimum: byteCount + 8)
            var acc: UInt64 = 0
            var accBits = 0
            var written = 0
            let end = start + take
            let mask: UInt64 = bitWidth == 64 ? ~0 : (1 << UInt64(bitWidth)) - 1
            for k in 0..<(groups * 8) {
                let idx = start + k
                let v: UInt64 = idx < end ? UInt64(truncatingIfNeeded: values[idx]) & mask : 0
                acc |= v << UInt64(accBits)
                accBits += bitWidth
                while accBits >= 8 {
                    dst.storeBytes(of: UInt8(truncatingIfNeeded: acc), toByteOffset: written, as: UInt8.self)
                    written += 1
                    acc >>= 8
                    accBits -= 8
                }
            }
            // groups * 8 * bitWidth bits is a whole number of bytes, so nothing is left over.
            out.commit(written)
            start += take
            left -= take
        }
    }

    static func writeVarint(_ value: UInt64, into out: GrowableBytes) {
        var v = value
        while v >= 0x80 {
            out.append(byte: UInt8(truncatingIfNeeded: v) | 0x80)
            v >>= 7
        }
        out.append(byte: UInt8(v))
    }

    /// The number of bits needed for values up to `maxValue`.
    static func bitWidth(forMax maxValue: UInt64) -> Int {
        maxValue == 0 ? 0 : 64 - maxValue.leadingZeroBitCount
    }
}
