/// Decodes the RLE / bit-packing hybrid encoding, checking every run against the bytes available.
struct RLEHybridDecoder {
    let data: UnsafeRawBufferPointer
    let bitWidth: Int
    private(set) var position = 0

    init(_ data: UnsafeRawBufferPointer, bitWidth: Int) throws {
        guard bitWidth >= 0 && bitWidth <= 32 else {
            throw ParquetFormatError("RLE bit width \(bitWidth) out of range 0…32")
        }
        self.data = data
        self.bitWidth = bitWidth
    }

    private mutating func varint() throws -> UInt64 {
        var result: UInt64 = 0
        var shift: UInt64 = 0
        while true {
            guard position < data.count else { throw ParquetFormatError("RLE data ends inside a run header") }
            let b = data[position]
            position += 1
            guard shift < 64 else { throw ParquetFormatError("RLE run header longer than 10 bytes") }
            result |= UInt64(b & 0x7F) << shift
            if b & 0x80 == 0 { return result }
            shift += 7
        }
    }

    /// Decodes exactly `count` values into `out`.
    mutating func decode(count: Int, into out: UnsafeMutablePointer<UInt32>) throws {
        var produced = 0
        let valueBytes = (bitWidth + 7) / 8
        let maxValue: UInt64 = (1 << UInt64(bitWidth)) - 1
        while produced < count {
            let header = try varint()
            if header & 1 == 0 {
                let runLength = header >> 1
                guard valueBytes <= data.count - position else { throw ParquetFormatError("RLE data ends inside a run value") }
                var value: UInt64 = 0
                for b in 0..<valueBytes { value |= UInt64(data[position + b]) << (8 * UInt64(b)) }
                position += valueBytes
                guard value <= maxValue else {
                    throw ParquetFormatError("RLE run value \(value) does not fit bit width \(bitWidth)")
                }
                let take = Int(min(runLength, UInt64(count - produced)))
                let v = UInt32(value)
                for k in 0..<take { out[produced + k] = v }
                produced += take
            } else {
                let groups = header >> 1
                guard groups <= UInt64(Int32.max) else { throw ParquetFormatError("RLE bit-packed run too long") }
                let runValues = Int(groups) * 8
                let runBytes = Int(groups) * bitWidth
                let take = min(runValues, count - produced)
                let needed = (take * bitWidth + 7) / 8
                let available = data.count - position
                guard needed <= available else { throw ParquetFormatError("RLE data ends inside a bit-packed run") }
                unpack(from: position, count: take, into: out + produced)
                position += min(runBytes, available)
                produced += take
            }
        }
    }

    mutating func decode(count: Int) throws -> [UInt32] {
        try [UInt32](unsafeUninitializedCapacity: count) { buffer, initialized in
            if count > 0 { try decode(count: count, into: buffer.baseAddress!) }
            initialized = count
        }
    }

    private func unpack(from start: Int, count: Int, into out: UnsafeMutablePointer<UInt32>) {
        if bitWidth == 0 {
            for k in 0..<count { out[k] = 0 }
            return
        }
        let mask: UInt64 = (1 << UInt64(bitWidth)) - 1
        var acc: UInt64 = 0
        var accBits = 0
        var p = start
        for k in 0..<count {
            while accBits < bitWidth {
                acc |= UInt64(data[p]) << UInt64(accBits)
                p += 1
                accBits += 8
            }
            out[k] = UInt32(truncatingIfNeeded: acc & mask)
            acc >>= UInt64(bitWidth)
            accBits -= bitWidth
        }
    }

    /// Bytes consumed so far.
    var consumed: Int { position }
}
