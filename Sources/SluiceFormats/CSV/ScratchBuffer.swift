/// A growable, manually managed buffer of trivial values, for per-row scratch space in the
/// decoders' hot loops (no copy-on-write or exclusivity checks on access).
///
/// The owner calls ``deallocate()`` exactly once (decoders do so in `deinit`).
struct ScratchBuffer<Element: BitwiseCopyable> {
    private(set) var base: UnsafeMutablePointer<Element>
    private(set) var capacity: Int

    init(capacity: Int) {
        self.capacity = max(capacity, 1)
        base = .allocate(capacity: self.capacity)
    }

    /// Makes room for at least `n` elements, keeping the first `keep` of them.
    @inline(__always)
    mutating func ensure(_ n: Int, keeping keep: Int = 0) {
        if n > capacity { grow(n, keeping: keep) }
    }

    /// Makes room for at least `n` elements, keeping the first `keep` and setting the new ones to `fill`.
    mutating func ensure(_ n: Int, keeping keep: Int, filling fill: Element) {
        guard n > capacity else { return }
        let old = capacity
        grow(n, keeping: keep)
        (base + old).initialize(repeating: fill, count: capacity - old)
    }

    private mutating func grow(_ n: Int, keeping keep: Int) {
        var newCapacity = capacity
        while newCapacity < n { newCapacity *= 2 }
        let newBase = UnsafeMutablePointer<Element>.allocate(capacity: newCapacity)
        if keep > 0 { newBase.initialize(from: base, count: min(keep, capacity)) }
        base.deallocate()
        base = newBase
        capacity = newCapacity
    }

    @inline(__always) subscript(i: Int) -> Element {
        get { base[i] }
        nonmutating set { base[i] = newValue }
    }

    func deallocate() { base.deallocate() }
}
