/// A set of ``DedupeHash``es with open addressing, indexed by the hash's own bits (they are
/// uniform already), so no `Hasher` runs per key: the keys a pipeline accepted and has not
/// committed yet.
struct DedupeHashSet {
    /// Empty slots hold zero; the zero hash itself is kept aside.
    private var slots: [DedupeHash]
    private var holdsZero = false
    private(set) var count = 0

    init(minimumCapacity: Int = 1024) {
        var size = 16
        while size < minimumCapacity * 2 { size <<= 1 }
        slots = Array(repeating: DedupeHash(high: 0, low: 0), count: size)
    }

    /// Bytes the slots take.
    var byteSize: Int { slots.count * 16 }

    func contains(_ hash: DedupeHash) -> Bool {
        if hash.high == 0 && hash.low == 0 { return holdsZero }
        return slots.withUnsafeBufferPointer { s in
            let mask = s.count - 1
            var i = Int(truncatingIfNeeded: hash.low) & mask
            while true {
                let slot = s[i]
                if slot == hash { return true }
                if slot.high == 0 && slot.low == 0 { return false }
                i = (i + 1) & mask
            }
        }
    }

    /// Adds `hash`; false when it was there.
    @discardableResult
    mutating func insert(_ hash: DedupeHash) -> Bool {
        if hash.high == 0 && hash.low == 0 {
            defer { holdsZero = true }
            if !holdsZero { count += 1 }
            return !holdsZero
        }
        if (count + 1) * 2 > slots.count { grow() }
        let inserted = slots.withUnsafeMutableBufferPointer { s in
            let mask = s.count - 1
            var i = Int(truncatingIfNeeded: hash.low) & mask
            while true {
                let slot = s[i]
                if slot == hash { return false }
                if slot.high == 0 && slot.low == 0 {
                    s[i] = hash
                    return true
                }
                i = (i + 1) & mask
            }
        }
        if inserted { count += 1 }
        return inserted
    }

    private mutating func grow() {
        let old = slots
        slots = Array(repeating: DedupeHash(high: 0, low: 0), count: old.count * 2)
        let zero = holdsZero
        count = 0
        holdsZero = false
        for hash in old where hash.high != 0 || hash.low != 0 { insert(hash) }
        if zero { insert(DedupeHash(high: 0, low: 0)) }
    }
}
