/// Decoders for DELTA_BINARY_PACKED, DELTA_LENGTH_BYTE_ARRAY, DELTA_BYTE_ARRAY and
/// BYTE_STREAM_SPLIT (Encodings.md), for reading files other writers produce.
enum DeltaDecoders {
    private struct Cursor {
        let p: UnsafeRawBufferPointer
        var pos = 0

        mutating func varint() throws -> UInt64 {
            var result: UInt64 = 0
            var shift: UInt64 = 0
            while true {
                guard pos < p.count else { throw ParquetFormatError("delta-encoded data ends inside a header") }
                let b = p[pos]
                pos += 1
                guard shift < 64 else { throw ParquetFormatError("delta-encoded varint longer than 10 bytes") }
                result |= UInt64(b & 0x7F) << shift
                if b & 0x80 == 0 { return result }
                shift += 7
            }
        }

        mutating func zigzag() throws -> Int64 {
            let z = try varint()
            return Int64(bitPattern: (z >> 1) ^ (0 &- (z & 1)))
        }
    }

    /// Decodes DELTA_BINARY_PACKED integers (wrapping arithmetic); returns the values and the bytes used.
    static func binaryPacked(_ p: UnsafeRawBufferPointer, expected: Int) throws -> ([Int64], Int) {
        var c = Cursor(p: p)
        let blockSize = try c.varint()
        let miniblocks = try c.varint()
        let total = try c.varint()
        let first = try c.zigzag()
        guard blockSize > 0, blockSize % 128 == 0, miniblocks > 0, blockSize % miniblocks == 0,
            (blockSize / miniblocks) % 32 == 0, blockSize <= 1 << 20
        else {
            throw ParquetFormatError("invalid DELTA_BINARY_PACKED header (block \(blockSize), miniblocks \(miniblocks))")
        }
        guard total == UInt64(expected) else {
            throw ParquetFormatError("DELTA_BINARY_PACKED holds \(total) values where the page has \(expected)")
        }
        let count = Int(total)
        var values = [Int64]()
        values.reserveCapacity(count)
        if count == 0 { return (values, c.pos) }
        values.append(first)
        let perMiniblock = Int(blockSize / miniblocks)
        var previous = first
        while values.count < count {
            let minDelta = try c.zigzag()
            guard Int(miniblocks) <= p.count - c.pos else { throw ParquetFormatError("DELTA_BINARY_PACKED data ends inside a block header") }
            let widthsAt = c.pos
            c.pos += Int(miniblocks)
            for m in 0..<Int(miniblocks) where values.count < count {
                let width = Int(p[widthsAt + m])
                guard width <= 64 else { throw ParquetFormatError("DELTA_BINARY_PACKED bit width \(width) exceeds 64") }
                let take = min(perMiniblock, count - values.count)
                let needed = (take * width + 7) / 8
                guard needed <= p.count - c.pos else { throw ParquetFormatError("DELTA_BINARY_PACKED data ends inside a miniblock") }
                for k in 0..<take {
                    let delta = readBits(p, bitOffset: c.pos * 8 + k * width, width: width)
                    previous = previous &+ minDelta &+ Int64(bitPattern: delta)
                    values.append(previous)
                }
                c.pos += min(perMiniblock * width / 8, p.count - c.pos)
            }
        }
        return (values, c.pos)
    }

    /// `width` bits (≤ 64) at `bitOffset`, least significant bit first; bounds were checked by the caller.
    @inline(__always)
    private static func readBits(_ p: UnsafeRawBufferPointer, bitOffset: Int, width: Int) -> UInt64 {
        if width == 0 { return 0 }
        var result: UInt64 = 0
        var got = 0
        var byte = bitOffset >> 3
        var shift = bitOffset & 7
        while got < width {
            let available = 8 - shift
            let bits = UInt64(p[byte] >> UInt8(shift))
            result |= bits << UInt64(got)
            got += available
            byte += 1
            shift = 0
        }
        return width == 64 ? result : result & ((1 << UInt64(width)) - 1)
    }

    /// Decodes DELTA_LENGTH_BYTE_ARRAY; returns offsets/data and the bytes used.
    static func lengthByteArray(_ p: UnsafeRawBufferPointer, count: Int) throws -> ([Int32], [UInt8], Int) {
        let (lengths, used) = try binaryPacked(p, expected: count)
        var offsets = [Int32](repeating: 0, count: count + 1)
        var total = 0
        for i in 0..<count {
            let n = lengths[i]
            guard n >= 0, n <= Int64(p.count) else { throw ParquetFormatError("DELTA_LENGTH_BYTE_ARRAY length \(n) out of range") }
            total += Int(n)
            guard total <= p.count - used else { throw ParquetFormatError("DELTA_LENGTH_BYTE_ARRAY data runs past its page") }
            offsets[i + 1] = Int32(total)
        }
        return (offsets, Array(p[used..<(used + total)]), used + total)
    }

    /// Decodes DELTA_BYTE_ARRAY (prefix lengths, then suffixes as DELTA_LENGTH_BYTE_ARRAY).
    static func byteArray(_ p: UnsafeRawBufferPointer, count: Int) throws -> ([Int32], [UInt8]) {
        let (prefixes, used) = try binaryPacked(p, expected: count)
        let (suffixOffsets, suffixData, _) = try lengthByteArray(UnsafeRawBufferPointer(rebasing: p[used...]), count: count)
        var offsets = [Int32](repeating: 0, count: count + 1)
        var data: [UInt8] = []
        data.reserveCapacity(suffixData.count)
        var previousStart = 0, previousLength = 0
        for i in 0..<count {
            let prefix = prefixes[i]
            guard prefix >= 0, prefix <= Int64(previousLength) else {
                throw ParquetFormatError("DELTA_BYTE_ARRAY prefix \(prefix) longer than the previous value")
            }
            let start = data.count
            if prefix > 0 { data.append(contentsOf: data[previousStart..<(previousStart + Int(prefix))]) }
            data.append(contentsOf: suffixData[Int(suffixOffsets[i])..<Int(suffixOffsets[i + 1])])
            guard data.count <= Int(Int32.max) else {
                throw ParquetFormatError("column chunk holds more than 2 GiB of byte-array data", unsupported: true)
            }
            previousStart = start
            previousLength = data.count - start
            offsets[i + 1] = Int32(data.count)
        }
        return (offsets, data)
    }

    /// Re-interleaves BYTE_STREAM_SPLIT data into PLAIN order.
    static func byteStreamSplit(_ p: UnsafeRawBufferPointer, count: Int, width: Int) throws -> [UInt8] {
        let (size, overflow) = count.multipliedReportingOverflow(by: width)
        guard !overflow, size <= p.count else { throw ParquetFormatError("BYTE_STREAM_SPLIT page too short for \(count) values") }
        var out = [UInt8](repeating: 0, count: size)
        for k in 0..<width {
            for i in 0..<count { out[i * width + k] = p[k * count + i] }
        }
        return out
    }
}
