#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// Memory read at random across tens of megabytes (a dedupe filter): asked to be backed by
/// transparent huge pages where the kernel offers them on request, so a lookup misses the TLB
/// far less often. Call before the memory is first written; a no-op elsewhere.
enum HugePages {
    static func advise(_ buffer: UnsafeMutableRawBufferPointer) {
        #if os(Linux)
            let huge = 2 << 20
            guard let base = buffer.baseAddress, buffer.count >= 2 * huge else { return }
            let start = (Int(bitPattern: base) + huge - 1) & ~(huge - 1)
            let end = (Int(bitPattern: base) + buffer.count) & ~(huge - 1)
            guard end > start, let pointer = UnsafeMutableRawPointer(bitPattern: start) else { return }
            _ = madvise(pointer, end - start, MADV_HUGEPAGE)
        #endif
    }

    /// `count` zero words, advised before they are written.
    static func zeroedWords(_ count: Int) -> [UInt64] {
        [UInt64](unsafeUninitializedCapacity: count) { buffer, written in
            advise(UnsafeMutableRawBufferPointer(buffer))
            buffer.initialize(repeating: 0)
            written = count
        }
    }
}
