/// A growable byte buffer with unchecked fast appends, used for page and chunk assembly.
///
/// A class (not copy-on-write): one owner appends, and `removeAll` keeps the capacity so a
/// buffer is reused page after page without allocating.
final class GrowableBytes {
    // Single-owner buffer: dynamic exclusivity checks on every append cost more than the append.
    @exclusivity(unchecked) private(set) var base: UnsafeMutableRawPointer
    @exclusivity(unchecked) private(set) var count = 0
    @exclusivity(unchecked) private(set) var capacity: Int

    init(capacity: Int = 4096) {
        self.capacity = max(capacity, 64)
        base = .allocate(byteCount: self.capacity, alignment: 16)
    }

    deinit { base.deallocate() }

    var isEmpty: Bool { count == 0 }

    /// Makes room for `n` more bytes.
    @inline(__always) func reserve(_ n: Int) {
        if count + n > capacity { grow(to: count + n) }
    }

    private func grow(to needed: Int) {
        var newCapacity = capacity * 2
        while newCapacity < needed { newCapacity *= 2 }
        let fresh = UnsafeMutableRawPointer.allocate(byteCount: newCapacity, alignment: 16)
        fresh.copyMemory(from: base, byteCount: count)
        base.deallocate()
        base = fresh
        capacity = newCapacity
    }

    func removeAll() { count = 0 }

    @inline(__always) func append(_ p: UnsafeRawPointer, count n: Int) {
        guard n > 0 else { return }
        reserve(n)
        (base + count).copyMemory(from: p, byteCount: n)
        count += n
    }

    func append(_ bytes: UnsafeRawBufferPointer) {
        if let p = bytes.baseAddress { append(p, count: bytes.count) }
    }

    func append(_ bytes: [UInt8]) {
        bytes.withUnsafeBytes { append($0) }
    }

    func append(_ other: GrowableBytes) {
        append(other.base, count: other.count)
    }

    @inline(__always) func append(byte: UInt8) {
        reserve(1)
        base.storeBytes(of: byte, toByteOffset: count, as: UInt8.self)
        count += 1
    }

    /// Appends a fixed-width integer in little-endian order.
    @inline(__always) func appendLE<T: FixedWidthInteger>(_ v: T) {
        reserve(MemoryLayout<T>.size)
        unsafeAppendLE(v)
    }

    /// Appends without a capacity check: call ``reserve(_:)`` first.
    @inline(__always) func unsafeAppendLE<T: FixedWidthInteger>(_ v: T) {
        base.storeBytes(of: v.littleEndian, toByteOffset: count, as: T.self)
        count += MemoryLayout<T>.size
    }

    /// Appends without a capacity check: call ``reserve(_:)`` first.
    @inline(__always) func unsafeAppend(_ p: UnsafeRawPointer, count n: Int) {
        (base + count).copyMemory(from: p, byteCount: n)
        count += n
    }

    /// Overwrites 4 bytes at `offset` with `v` little-endian (for length prefixes written afterwards).
    func setUInt32LE(_ v: UInt32, at offset: Int) {
        precondition(offset >= 0 && offset + 4 <= count)
        base.storeBytes(of: v.littleEndian, toByteOffset: offset, as: UInt32.self)
    }

    var bytes: UnsafeRawBufferPointer { UnsafeRawBufferPointer(start: base, count: count) }

    /// The tail end of the buffer, writable, for encoders that write in place; call ``commit(_:)`` after.
    func writableTail(minimum n: Int) -> UnsafeMutableRawPointer {
        reserve(n)
        return base + count
    }

    func commit(_ n: Int) {
        precondition(count + n <= capacity)
        count += n
    }

    var array: [UInt8] { Array(bytes) }
}
