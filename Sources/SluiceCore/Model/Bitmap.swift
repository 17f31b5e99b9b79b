/// A growable validity bitmap: bit `i` is set when value `i` is present (not null).
///
/// Stored as 64-bit words, least significant bit first, like Arrow's validity buffers.
public struct ValidityBitmap: Sendable, Hashable {
    @usableFromInline var _words: [UInt64] = []
    @usableFromInline var _count: Int = 0
    @usableFromInline var _nullCount: Int = 0

    public var words: [UInt64] { _words }
    public var count: Int { _count }
    /// Number of cleared bits (nulls).
    public var nullCount: Int { _nullCount }

    public init() {}

    public init(repeating valid: Bool, count: Int) {
        _count = count
        _words = Array(repeating: valid ? ~0 : 0, count: (count + 63) / 64)
        _nullCount = valid ? 0 : count
    }

    @inlinable public mutating func reserveCapacity(_ n: Int) { _words.reserveCapacity((n + 63) / 64) }

    @inlinable public mutating func append(_ valid: Bool) {
        let bit = _count & 63
        if bit == 0 { _words.append(0) }
        if valid { _words[_words.count - 1] |= (1 << UInt64(bit)) } else { _nullCount += 1 }
        _count += 1
    }

    /// Appends `n` set bits (`n` present values), a word at a time.
    public mutating func appendValid(_ n: Int) {
        var left = n
        while left > 0 {
            let bit = _count & 63
            if bit == 0 { _words.append(0) }
            let take = Swift.min(64 - bit, left)
            let run: UInt64 = take == 64 ? ~0 : (1 << UInt64(take)) - 1
            _words[_words.count - 1] |= run << UInt64(bit)
            _count += take
            left -= take
        }
    }

    public subscript(i: Int) -> Bool {
        precondition(i >= 0 && i < count, "bitmap index \(i) out of range 0..<\(count)")
        return _words[i >> 6] & (1 << UInt64(i & 63)) != 0
    }
}
