/// The writer's dictionary for fixed-width values (int32, int64, double bit patterns), keyed by
/// their 64-bit pattern: an open-addressing table of indices into the entries, in insertion order.
final class FixedDictionary {
    /// Bytes one entry takes in the PLAIN dictionary page (4 or 8).
    let valueWidth: Int
    @exclusivity(unchecked) private(set) var entries: UnsafeMutablePointer<UInt64>
    @exclusivity(unchecked) private(set) var count = 0
    @exclusivity(unchecked) private var entryCapacity: Int
    @exclusivity(unchecked) private var slots: UnsafeMutablePointer<UInt32>
    @exclusivity(unchecked) private var slotMask: Int
    @exclusivity(unchecked) private var shift: UInt64

    init(valueWidth: Int) {
        self.valueWidth = valueWidth
        entryCapacity = 1024
        entries = .allocate(capacity: entryCapacity)
        slotMask = 2047
        shift = 64 - 11
        slots = .allocate(capacity: slotMask + 1)
        slots.initialize(repeating: 0, count: slotMask + 1)
    }

    deinit {
        entries.deallocate()
        slots.deallocate()
    }

    /// Size of the PLAIN-encoded dictionary page.
    var byteSize: Int { count * valueWidth }

    func removeAll() {
        count = 0
        slots.update(repeating: 0, count: slotMask + 1)
    }

    @inline(__always)
    private func slot(for key: UInt64) -> Int {
        Int(truncatingIfNeeded: ((key ^ (key >> 29)) &* 0x9E37_79B9_7F4A_7C15) >> shift)
    }

    /// The index of `key`, inserting it when new.
    @inline(__always)
    func index(of key: UInt64) -> UInt32 {
        var s = slot(for: key)
        while true {
            let v = slots[s]
            if v == 0 { return insert(key, at: s) }
            if entries[Int(v) - 1] == key { return v - 1 }
            s = (s + 1) & slotMask
        }
    }

    private func insert(_ key: UInt64, at s: Int) -> UInt32 {
        if count == entryCapacity {
            let fresh = UnsafeMutablePointer<UInt64>.allocate(capacity: entryCapacity * 2)
            fresh.update(from: entries, count: count)
            entries.deallocate()
            entries = fresh
            entryCapacity *= 2
        }
        entries[count] = key
        count += 1
        slots[s] = UInt32(count)
        if count * 2 > slotMask + 1 { rehash() }
        return UInt32(count - 1)
    }

    private func rehash() {
        let newSize = (slotMask + 1) * 2
        slots.deallocate()
        slots = .allocate(capacity: newSize)
        slots.initialize(repeating: 0, count: newSize)
        slotMask = newSize - 1
        shift -= 1
        for i in 0..<count {
            var s = slot(for: entries[i])
            while slots[s] != 0 { s = (s + 1) & slotMask }
            slots[s] = UInt32(i + 1)
        }
    }

    /// Writes the entries PLAIN-encoded (little-endian, `valueWidth` bytes each).
    func writePlain(into out: GrowableBytes) {
        out.reserve(count * valueWidth)
        if valueWidth == 8 {
            for i in 0..<count { out.unsafeAppendLE(entries[i]) }
        } else {
            for i in 0..<count { out.unsafeAppendLE(UInt32(truncatingIfNeeded: entries[i])) }
        }
    }
}
