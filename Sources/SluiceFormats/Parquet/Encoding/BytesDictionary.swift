#if canImport(Glibc)
    import Glibc
#endif

/// The writer's dictionary for byte-array values. Entries live PLAIN-encoded (4-byte length +
/// bytes) in one buffer, which is the dictionary page as is; an open-addressing table of entry
/// indices finds a value by hash and byte comparison, without creating Strings.
final class BytesDictionary {
    let plain = GrowableBytes(capacity: 64 << 10)
    @exclusivity(unchecked) private(set) var count = 0
    @exclusivity(unchecked) private var starts: UnsafeMutablePointer<Int32>
    @exclusivity(unchecked) private var lengths: UnsafeMutablePointer<Int32>
    @exclusivity(unchecked) private var hashes: UnsafeMutablePointer<UInt64>
    @exclusivity(unchecked) private var entryCapacity = 1024
    @exclusivity(unchecked) private var slots: UnsafeMutablePointer<UInt32>
    @exclusivity(unchecked) private var slotMask: Int

    init() {
        starts = .allocate(capacity: entryCapacity)
        lengths = .allocate(capacity: entryCapacity)
        hashes = .allocate(capacity: entryCapacity)
        slotMask = 2047
        slots = .allocate(capacity: slotMask + 1)
        slots.initialize(repeating: 0, count: slotMask + 1)
    }

    deinit {
        starts.deallocate()
        lengths.deallocate()
        hashes.deallocate()
        slots.deallocate()
    }

    /// Size of the PLAIN-encoded dictionary page.
    var byteSize: Int { plain.count }

    func removeAll() {
        count = 0
        plain.removeAll()
        slots.update(repeating: 0, count: slotMask + 1)
    }

    /// The bytes of entry `i`.
    func entry(_ i: Int) -> UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(start: plain.base + Int(starts[i]), count: Int(lengths[i]))
    }

    /// The index of the value at `p` (`n` bytes), inserting it when new.
    @inline(__always)
    func index(of p: UnsafeRawPointer, count n: Int) -> UInt32 {
        let h = ByteHash.hash(p, n)
        var s = Int(truncatingIfNeeded: h) & slotMask
        while true {
            let v = slots[s]
            if v == 0 { return insert(p, n, h, at: s) }
            let e = Int(v) - 1
            if hashes[e] == h && Int(lengths[e]) == n && (n == 0 || memcmp(plain.base + Int(starts[e]), p, n) == 0) {
                return v - 1
            }
            s = (s + 1) & slotMask
        }
    }

    private func insert(_ p: UnsafeRawPointer, _ n: Int, _ h: UInt64, at s: Int) -> UInt32 {
        if count == entryCapacity { growEntries() }
        plain.reserve(n + 4)
        plain.unsafeAppendLE(UInt32(n))
        starts[count] = Int32(plain.count)
        lengths[count] = Int32(n)
        hashes[count] = h
        plain.unsafeAppend(p, count: n)
        count += 1
        slots[s] = UInt32(count)
        if count * 2 > slotMask + 1 { rehash() }
        return UInt32(count - 1)
    }

    private func growEntries() {
        let newCapacity = entryCapacity * 2
        func grow<T>(_ p: inout UnsafeMutablePointer<T>) {
            let fresh = UnsafeMutablePointer<T>.allocate(capacity: newCapacity)
            fresh.update(from: p, count: count)
            p.deallocate()
            p = fresh
        }
        grow(&starts)
        grow(&lengths)
        grow(&hashes)
        entryCapacity = newCapacity
    }

    private func rehash() {
        let newSize = (slotMask + 1) * 2
        slots.deallocate()
        slots = .allocate(capacity: newSize)
        slots.initialize(repeating: 0, count: newSize)
        slotMask = newSize - 1
        for i in 0..<count {
            var s = Int(truncatingIfNeeded: hashes[i]) & slotMask
            while slots[s] != 0 { s = (s + 1) & slotMask }
            slots[s] = UInt32(i + 1)
        }
    }
}
