/// Maps object keys (raw UTF-8 bytes) to column indexes without creating Strings: an
/// open-addressing hash table over one contiguous buffer of key bytes.
struct JSONKeyTable {
    private(set) var count = 0
    private var bytes: ScratchBuffer<UInt8>
    private var used = 0
    private var offsets: ScratchBuffer<Int>
    /// Column index + 1 per bucket; 0 is empty.
    private var buckets: [Int32]
    private var mask: Int

    init() {
        bytes = ScratchBuffer(capacity: 1024)
        offsets = ScratchBuffer(capacity: 64)
        offsets[0] = 0
        buckets = Array(repeating: 0, count: 64)
        mask = 63
    }

    func deallocate() {
        bytes.deallocate()
        offsets.deallocate()
    }

    mutating func removeAll() {
        count = 0
        used = 0
        for k in buckets.indices { buckets[k] = 0 }
    }

    @inline(__always)
    static func hash(_ p: UnsafePointer<UInt8>, _ n: Int) -> Int {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for k in 0..<n { h = (h ^ UInt64(p[k])) &* 0x100_0000_01b3 }
        return Int(truncatingIfNeeded: h ^ (h >> 29))
    }

    /// True when key `index` is exactly `p[0..<n]`.
    @inline(__always)
    func matches(_ index: Int, _ p: UnsafePointer<UInt8>, _ n: Int) -> Bool {
        let start = offsets[index]
        return offsets[index + 1] - start == n && Self.equal(bytes.base + start, p, n)
    }

    /// Compares short byte strings inline (keys are usually shorter than a memcmp call costs).
    @inline(__always)
    static func equal(_ a: UnsafePointer<UInt8>, _ b: UnsafePointer<UInt8>, _ n: Int) -> Bool {
        var k = 0
        while k + 8 <= n {
            if UnsafeRawPointer(a + k).loadUnaligned(as: UInt64.self) != UnsafeRawPointer(b + k).loadUnaligned(as: UInt64.self) {
                return false
            }
            k += 8
        }
        while k < n {
            if a[k] != b[k] { return false }
            k += 1
        }
        return true
    }

    /// The bytes of key `index`, passed to `body`.
    func withKey<R>(_ index: Int, _ body: (UnsafeBufferPointer<UInt8>) -> R) -> R {
        let start = offsets[index]
        return body(UnsafeBufferPointer(start: bytes.base + start, count: offsets[index + 1] - start))
    }

    /// The index of the key, or -1.
    func lookup(_ p: UnsafePointer<UInt8>, _ n: Int) -> Int {
        var b = Self.hash(p, n) & mask
        while true {
            let entry = Int(buckets[b])
            if entry == 0 { return -1 }
            if matches(entry - 1, p, n) { return entry - 1 }
            b = (b + 1) & mask
        }
    }

    /// Adds a key (not already present) as index `count`.
    mutating func append(_ p: UnsafePointer<UInt8>, _ n: Int) {
        bytes.ensure(used + n, keeping: used)
        if n > 0 { (bytes.base + used).update(from: p, count: n) }
        used += n
        offsets.ensure(count + 2, keeping: count + 1)
        offsets[count + 1] = used
        count += 1
        if count * 2 > buckets.count {
            buckets = Array(repeating: 0, count: buckets.count * 2)
            mask = buckets.count - 1
            for k in 0..<count { insert(k) }
        } else {
            insert(count - 1)
        }
    }

    mutating func append(_ key: String) {
        var key = key
        key.withUTF8 { append($0.baseAddress ?? UnsafePointer(bytes.base), $0.count) }
    }

    private mutating func insert(_ index: Int) {
        let start = offsets[index]
        var b = Self.hash(bytes.base + start, offsets[index + 1] - start) & mask
        while buckets[b] != 0 { b = (b + 1) & mask }
        buckets[b] = Int32(index + 1)
    }
}
