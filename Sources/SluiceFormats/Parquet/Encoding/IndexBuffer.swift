/// A growable buffer of dictionary indices with unchecked appends (one owner, reused page after page).
final class IndexBuffer {
    @exclusivity(unchecked) private(set) var base: UnsafeMutablePointer<UInt32>
    @exclusivity(unchecked) private(set) var count = 0
    @exclusivity(unchecked) private var capacity: Int

    init(capacity: Int = 4096) {
        self.capacity = capacity
        base = .allocate(capacity: capacity)
    }

    deinit { base.deallocate() }

    /// Room for `n` more indices; write them at the returned pointer, then ``commit(_:)``.
    @inline(__always) func writableTail(minimum n: Int) -> UnsafeMutablePointer<UInt32> {
        if count + n > capacity {
            var newCapacity = capacity * 2
            while newCapacity < count + n { newCapacity *= 2 }
            let fresh = UnsafeMutablePointer<UInt32>.allocate(capacity: newCapacity)
            fresh.update(from: base, count: count)
            base.deallocate()
            base = fresh
            capacity = newCapacity
        }
        return base + count
    }

    @inline(__always) func commit(_ n: Int) { count += n }

    func removeAll() { count = 0 }

    var buffer: UnsafeBufferPointer<UInt32> { UnsafeBufferPointer(start: base, count: count) }
}
