/// A blocked Bloom filter of dedupe key hashes: "absent" is exact (a key added is always
/// found), "maybe" may be wrong, so a maybe is confirmed in the state store.
///
/// Each key sets 8 bits in one 512-bit block (one cache line), chosen from its hash. At the
/// 24 bits per key it is sized for, about 1 key in 3,000 not in the filter answers maybe; past
/// its capacity the rate rises (more keys go to the store) but an absent answer stays exact.
struct DedupeFilter {
    /// Bits per key at the filter's capacity.
    static let bitsPerKey = 24
    /// The most memory a filter takes: 64 MiB, full accuracy up to about 22 million live keys.
    static let maxBytes = 64 << 20

    private(set) var words: [UInt64]
    /// Keys the filter was sized for.
    let capacity: Int
    /// Keys added (a key added twice counts twice).
    private(set) var added = 0

    /// The most memory this filter may grow to.
    let limit: Int

    /// A filter for `capacity` keys (at least 65,536), within `limit` bytes.
    init(capacity: Int, limit: Int = Self.maxBytes) {
        let wanted = max(capacity, 65_536)
        self.limit = max(64, limit / 64 * 64)
        let bytes = min(self.limit, (wanted * Self.bitsPerKey + 7) / 8)
        let blocks = max(1, bytes / 64)
        words = Array(repeating: 0, count: blocks * 8)
        self.capacity = min(wanted, blocks * 512 / Self.bitsPerKey)
    }

    var byteSize: Int { words.count * 8 }
    /// Whether the filter holds more keys than it was sized for (and could grow).
    var isOverloaded: Bool { added > capacity && byteSize < limit }
    /// Whether to build the filter again: it could grow, or, at its limit, it has taken twice
    /// the keys it was sized for (many of them expired by now, which a new filter leaves out).
    /// Keys the filter held when it was built (``markBuilt()``): a filter at its limit whose
    /// store alone holds more than twice its capacity is not built again on every batch.
    private(set) var builtWith = 0
    var needsRebuild: Bool { isOverloaded || added > 2 * max(capacity, builtWith) }

    mutating func markBuilt() { builtWith = added }

    @inline(__always) private func block(_ hash: DedupeHash) -> Int {
        Int(hash.low.multipliedFullWidth(by: UInt64(words.count / 8)).high) * 8
    }

    mutating func insert(_ hash: DedupeHash) {
        let base = block(hash)
        var bits = hash.high
        words.withUnsafeMutableBufferPointer { w in
            for probe in 0..<8 {
                let bit = probe == 7 ? Int(hash.low & 511) : Int(bits & 511)
                bits >>= 9
                w[base + (bit >> 6)] |= 1 << UInt64(bit & 63)
            }
        }
        added += 1
    }

    func mayContain(_ hash: DedupeHash) -> Bool {
        let base = block(hash)
        var bits = hash.high
        return words.withUnsafeBufferPointer { w in
            for probe in 0..<8 {
                let bit = probe == 7 ? Int(hash.low & 511) : Int(bits & 511)
                bits >>= 9
                if w[base + (bit >> 6)] & (1 << UInt64(bit & 63)) == 0 { return false }
            }
            return true
        }
    }
}
