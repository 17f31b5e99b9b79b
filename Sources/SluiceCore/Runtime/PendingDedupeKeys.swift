#if os(Linux)
    import CLinux
#endif

/// The dedupe keys a pipeline accepted and has not committed yet, in the order accepted, for
/// the exact answer "was this key accepted since the last commit?".
///
/// Only the main filter's maybes ask (``Deduplicator``), so the cost that matters is the one of
/// accepting a key. A key sets 3 bits of one 64-bit word of a small Bloom filter (2 MiB at
/// ``Deduplicator/maxPendingKeys``; written at random, so its word is prefetched a few keys
/// ahead), which answers most questions "no" at once; a hash set answers the others exactly,
/// and is filled only when a question gets past the Bloom filter, with the keys accepted since
/// it was last filled. A pipeline whose keys are all new thus never pays a hash-set insert per
/// key.
struct PendingDedupeKeys {
    private(set) var keys: [DedupeHash] = []
    private var words: [UInt64]
    /// `keys[..<indexed]` are in `set`.
    private var indexed = 0
    private var set = DedupeHashSet()

    /// 16 bits a key at `capacity` keys.
    init(capacity: Int = Deduplicator.maxPendingKeys) {
        var count = 1024
        while count * 64 < capacity * 16 { count <<= 1 }
        words = Array(repeating: 0, count: count)
    }

    var count: Int { keys.count }

    /// Bits of the hash the main filter (``DedupeFilter``) does not use for its block, so a key
    /// that is a false maybe there is not more likely to be one here.
    @inline(__always) private func probe(_ hash: DedupeHash) -> (word: Int, mask: UInt64) {
        let word = Int(truncatingIfNeeded: hash.low >> 9) & (words.count - 1)
        let bits = hash.low >> 26
        let mask: UInt64 = (1 << (bits & 63)) | (1 << ((bits >> 6) & 63)) | (1 << ((bits >> 12) & 63))
        return (word, mask)
    }

    /// Starts loading the word `hash` sets, so an insert a few keys later does not wait for
    /// memory (2 MiB of words, written at random: most inserts would miss the cache).
    @inline(__always) func prefetch(_ hash: DedupeHash) {
        #if os(Linux)
            let word = probe(hash).word
            words.withUnsafeBufferPointer { sluice_prefetch_write($0.baseAddress! + word) }
        #endif
    }

    mutating func insert(_ hash: DedupeHash) {
        let (word, mask) = probe(hash)
        words.withUnsafeMutableBufferPointer { $0[word] |= mask }
        keys.append(hash)
    }

    /// Whether `hash` was accepted and is still pending (exact).
    mutating func contains(_ hash: DedupeHash) -> Bool {
        let (word, mask) = probe(hash)
        guard words.withUnsafeBufferPointer({ $0[word] & mask == mask }) else { return false }
        if indexed < keys.count {
            keys.withUnsafeBufferPointer { keys in
                for index in indexed..<keys.count { set.insert(keys[index]) }
            }
            indexed = keys.count
        }
        return set.contains(hash)
    }

    /// Removes and returns the first `count` keys (those a commit covers); the rest stay.
    mutating func removeFirst(_ count: Int) -> [DedupeHash] {
        guard count > 0 else { return [] }
        guard count < keys.count else {
            defer { clear() }
            return keys
        }
        let taken = Array(keys[..<count])
        let rest = Array(keys[count...])
        clear()
        for key in rest { insert(key) }
        return taken
    }

    /// Keeps the first `count` keys only (those of batches still pending), dropping the rest.
    mutating func keepFirst(_ count: Int) {
        guard count < keys.count else { return }
        let kept = Array(keys[..<count])
        clear()
        for key in kept { insert(key) }
    }

    private mutating func clear() {
        keys = []
        for index in words.indices { words[index] = 0 }
        if indexed > 0 { set = DedupeHashSet() }
        indexed = 0
    }
}
