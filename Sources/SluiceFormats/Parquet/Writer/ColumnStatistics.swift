#if canImport(Glibc)
    import Glibc
#endif

/// Min/max/null/NaN counts of a page or column chunk, in the column's sort order:
/// signed for integers, dates, timestamps and decimals; unsigned bytewise for byte arrays;
/// numeric for doubles with NaN left out (the NaN count is kept apart).
struct ColumnStatistics {
    var nullCount: Int64 = 0
    var nanCount: Int64 = 0
    var hasValue = false
    var minInt: Int64 = .max
    var maxInt: Int64 = .min
    var minDouble: Double = .infinity
    var maxDouble: Double = -.infinity
    var hasDouble = false
    var minDecimal: Int128 = .max
    var maxDecimal: Int128 = .min
    var hasFalse = false
    var hasTrue = false
    var minBytes: [UInt8] = []
    var maxBytes: [UInt8] = []

    /// Byte-array bounds longer than this are left out of the statistics.
    static let maxBytesStatistic = 4096

    mutating func reset() { self = ColumnStatistics() }

    mutating func update(minInt lo: Int64, maxInt hi: Int64) {
        hasValue = true
        if lo < minInt { minInt = lo }
        if hi > maxInt { maxInt = hi }
    }

    mutating func update(minDouble lo: Double, maxDouble hi: Double, nans: Int, any: Bool) {
        nanCount += Int64(nans)
        if any { hasValue = true }
        guard lo <= hi else { return }  // only NaNs seen
        hasDouble = true
        if lo < minDouble || (lo == 0 && minDouble == 0 && lo.sign == .minus) { minDouble = lo }
        if hi > maxDouble || (hi == 0 && maxDouble == 0 && hi.sign == .plus) { maxDouble = hi }
    }

    mutating func update(minDecimal lo: Int128, maxDecimal hi: Int128) {
        hasValue = true
        if lo < minDecimal { minDecimal = lo }
        if hi > maxDecimal { maxDecimal = hi }
    }

    mutating func update(hasFalse f: Bool, hasTrue t: Bool) {
        if f || t { hasValue = true }
        hasFalse = hasFalse || f
        hasTrue = hasTrue || t
    }

    /// Unsigned bytewise comparison, shorter first on a common prefix: negative, zero or positive.
    ///
    /// Eight bytes at a time, inline: the writer compares every string value with its page's
    /// minimum and maximum, and for short values a call to `memcmp` cost more than the comparing.
    @inline(__always)
    static func compare(_ a: UnsafeRawBufferPointer, _ b: UnsafeRawBufferPointer) -> Int {
        let n = min(a.count, b.count)
        guard n > 0, let pa = a.baseAddress, let pb = b.baseAddress else { return a.count - b.count }
        var i = 0
        while i + 8 <= n {
            let x = pa.loadUnaligned(fromByteOffset: i, as: UInt64.self)
            let y = pb.loadUnaligned(fromByteOffset: i, as: UInt64.self)
            // Big-endian order compares as the bytes do.
            if x != y { return x.bigEndian < y.bigEndian ? -1 : 1 }
            i += 8
        }
        while i < n {
            let x = pa.load(fromByteOffset: i, as: UInt8.self), y = pb.load(fromByteOffset: i, as: UInt8.self)
            if x != y { return x < y ? -1 : 1 }
            i += 1
        }
        return a.count - b.count
    }

    mutating func update(minBytes lo: UnsafeRawBufferPointer, maxBytes hi: UnsafeRawBufferPointer) {
        if !hasValue {
            hasValue = true
            minBytes = Array(lo)
            maxBytes = Array(hi)
            return
        }
        if minBytes.withUnsafeBytes({ Self.compare(lo, $0) }) < 0 { minBytes = Array(lo) }
        if maxBytes.withUnsafeBytes({ Self.compare(hi, $0) }) > 0 { maxBytes = Array(hi) }
    }

    mutating func merge(_ o: ColumnStatistics, kind: ParquetColumnSpec.Kind) {
        nullCount += o.nullCount
        guard o.hasValue || o.nanCount > 0 else { return }
        switch kind {
        case .boolean: update(hasFalse: o.hasFalse, hasTrue: o.hasTrue)
        case .int64, .int32, .decimalInt64: update(minInt: o.minInt, maxInt: o.maxInt)
        case .double:
            update(
                minDouble: o.hasDouble ? o.minDouble : .infinity, maxDouble: o.hasDouble ? o.maxDouble : -.infinity,
                nans: Int(o.nanCount), any: o.hasValue)
        case .decimalFixed: update(minDecimal: o.minDecimal, maxDecimal: o.maxDecimal)
        case .bytes:
            o.minBytes.withUnsafeBytes { lo in o.maxBytes.withUnsafeBytes { hi in update(minBytes: lo, maxBytes: hi) } }
        }
    }

    /// The Thrift `Statistics` for this column's physical encoding.
    func encoded(kind: ParquetColumnSpec.Kind) -> ParquetStatistics {
        var s = ParquetStatistics()
        s.nullCount = nullCount
        if kind == .double { s.nanCount = nanCount }
        guard hasValue else { return s }
        switch kind {
        case .boolean:
            s.minValue = [hasFalse ? 0 : 1]
            s.maxValue = [hasTrue ? 1 : 0]
        case .int64, .decimalInt64:
            s.minValue = Self.littleEndian(minInt)
            s.maxValue = Self.littleEndian(maxInt)
        case .int32:
            s.minValue = Self.littleEndian(Int32(truncatingIfNeeded: minInt))
            s.maxValue = Self.littleEndian(Int32(truncatingIfNeeded: maxInt))
        case .double:
            guard hasDouble else { return s }  // every value NaN: no bounds
            // A zero bound is written as -0.0 for the minimum and +0.0 for the maximum.
            let lo = minDouble == 0 ? -0.0 : minDouble
            let hi = maxDouble == 0 ? 0.0 : maxDouble
            s.minValue = Self.littleEndian(lo.bitPattern)
            s.maxValue = Self.littleEndian(hi.bitPattern)
        case let .decimalFixed(width):
            s.minValue = DecimalBytes.bigEndian(minDecimal, width: width)
            s.maxValue = DecimalBytes.bigEndian(maxDecimal, width: width)
        case .bytes:
            guard minBytes.count <= Self.maxBytesStatistic, maxBytes.count <= Self.maxBytesStatistic else { return s }
            s.minValue = minBytes
            s.maxValue = maxBytes
        }
        return s
    }

    static func littleEndian<T: FixedWidthInteger>(_ v: T) -> [UInt8] {
        withUnsafeBytes(of: v.littleEndian) { Array($0) }
    }
}

/// Big-endian two's complement bytes of decimals.
enum DecimalBytes {
    static func bigEndian(_ v: Int128, width: Int) -> [UInt8] {
        (0..<width).map { UInt8(truncatingIfNeeded: v >> (8 * (width - 1 - $0))) }
    }

    /// Writes `v` as `width` big-endian bytes at `p`.
    @inline(__always)
    static func store(_ v: Int128, width: Int, at p: UnsafeMutableRawPointer) {
        let be = UInt128(bitPattern: v).bigEndian
        withUnsafeBytes(of: be) { src in
            p.copyMemory(from: src.baseAddress! + (16 - width), byteCount: width)
        }
    }

    /// Whether `v` fits `width` bytes of two's complement.
    @inline(__always)
    static func fits(_ v: Int128, width: Int) -> Bool {
        if width >= 16 { return true }
        let top = v >> (8 * width - 1)
        return top == 0 || top == -1
    }

    /// Reads big-endian two's complement bytes (sign-extended; up to 16 significant bytes).
    static func load(_ p: UnsafeRawBufferPointer) throws -> Int128 {
        var bytes = p
        // Leading sign-extension bytes beyond 16 are allowed when they carry no information.
        while bytes.count > 16 {
            let lead = bytes[0], next = bytes[1]
            guard (lead == 0 && next & 0x80 == 0) || (lead == 0xFF && next & 0x80 != 0) else {
                throw ParquetFormatError("decimal of \(p.count) bytes does not fit 128 bits", unsupported: true)
            }
            bytes = UnsafeRawBufferPointer(rebasing: bytes[1...])
        }
        guard !bytes.isEmpty else { return 0 }
        var v: Int128 = bytes[0] & 0x80 != 0 ? -1 : 0
        for b in bytes { v = (v << 8) | Int128(b) }
        return v
    }
}
