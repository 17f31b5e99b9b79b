#if os(Linux)
    import CLinux
#endif

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

    /// The latest TTL cutoff (seconds since 1970) of a read that filled this filter: keys
    /// accepted before it may be missing from it, so a later cutoff must not be earlier (a TTL
    /// made longer) for the filter to be used again.
    var coveredSince = -Double.infinity

    /// A filter for `capacity` keys (at least 65,536), within `limit` bytes.
    init(capacity: Int, limit: Int = Self.maxBytes) {
        let wanted = max(capacity, 65_536)
        self.limit = max(64, limit / 64 * 64)
        let bytes = min(self.limit, (wanted * Self.bitsPerKey + 7) / 8)
        let blocks = max(1, bytes / 64)
        words = HugePages.zeroedWords(blocks * 8)
        self.capacity = min(wanted, blocks * 512 / Self.bitsPerKey)
    }

    /// A filter of `bytes` (whole 64-byte blocks, at least one) that never grows, whatever
    /// the keys it takes (``DedupeRunGroups``).
    init(bytes: Int) {
        let blocks = max(1, bytes / 64)
        limit = blocks * 64
        words = HugePages.zeroedWords(blocks * 8)
        capacity = blocks * 512 / Self.bitsPerKey
    }

    /// A filter with these bits (``init(snapshot:seed:limit:)``).
    private init(words: [UInt64], capacity: Int, added: Int, builtWith: Int, limit: Int) {
        self.words = words
        self.capacity = capacity
        self.added = added
        self.builtWith = builtWith
        self.limit = max(64, limit / 64 * 64)
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

    /// Starts loading the cache line `hash` is probed in, so a probe a few keys later does not
    /// wait for memory (the filter spans tens of megabytes: nearly every probe misses the cache).
    @inline(__always) func prefetch(_ hash: DedupeHash) {
        #if os(Linux)
            let base = block(hash)
            words.withUnsafeBufferPointer { sluice_prefetch($0.baseAddress! + base) }
        #endif
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

extension DedupeFilter {
    /// Read back as it was written only on a host of the same byte order.
    private static let byteOrderMark: UInt64 = 0x0102_0304_0506_0708
    private static let format: UInt32 = 1

    /// This filter as saved in a state store: it holds every key of the runs through `run`, and
    /// its keys were hashed with `seed`.
    func snapshot(run: Int64, seed: DedupeSeed) -> DedupeFilterSnapshot {
        var header: [UInt8] = []
        func put<T: FixedWidthInteger>(_ value: T) { withUnsafeBytes(of: value) { header += $0 } }
        put(Self.byteOrderMark)
        put(Self.format)
        put(UInt32(Self.bitsPerKey))
        put(seed.k0)
        put(seed.k1)
        put(Int64(capacity))
        put(Int64(added))
        put(Int64(builtWith))
        put(coveredSince.bitPattern)
        return DedupeFilterSnapshot(run: run, header: header, words: words)
    }

    /// The filter of a snapshot; nil when it was made in another format, on a host of another
    /// byte order, with another seed (its bits would mean other keys), or is larger than `limit`.
    init?(snapshot: DedupeFilterSnapshot, seed: DedupeSeed, limit: Int = Self.maxBytes) {
        let header = snapshot.header
        guard header.count == 64 else { return nil }
        func get<T: FixedWidthInteger>(_ offset: Int, _: T.Type) -> T {
            header.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: offset, as: T.self) }
        }
        let capacity = Int(get(32, Int64.self)), added = Int(get(40, Int64.self)), builtWith = Int(get(48, Int64.self))
        let words = snapshot.words
        guard get(0, UInt64.self) == Self.byteOrderMark, get(8, UInt32.self) == Self.format,
            get(12, UInt32.self) == UInt32(Self.bitsPerKey), get(16, UInt64.self) == seed.k0, get(24, UInt64.self) == seed.k1,
            !words.isEmpty, words.count % 8 == 0, words.count * 8 <= max(64, limit / 64 * 64),
            capacity > 0, capacity <= words.count * 64 / Self.bitsPerKey, added >= 0, builtWith >= 0
        else { return nil }
        self.init(words: words, capacity: capacity, added: added, builtWith: builtWith, limit: limit)
        coveredSince = Double(bitPattern: get(56, UInt64.self))
    }
}
