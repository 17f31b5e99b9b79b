#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

/// Keeps memory bounded when a record never ends (an unbalanced quote, a file without line
/// breaks): once an incomplete record is longer than the limit, it is rejected and the input is
/// skipped up to the next LF, across `decode` calls if need be.
struct OversizedRecords {
    /// At most this much of an oversized record is kept as the reject's raw bytes (and at most
    /// the limit).
    static let rawLimit = 1 << 20

    /// Skipping the rest of a rejected record until its LF.
    var discarding = false

    /// At the start of a `decode` call: skips what remains of a discarded record. Returns where
    /// decoding resumes and whether the discarded record's line ended.
    mutating func resume(_ p: UnsafePointer<UInt8>, _ n: Int, isFinal: Bool) -> (pos: Int, lineEnded: Bool) {
        guard discarding else { return (0, false) }
        if let hit = memchr(p, 0x0A, n) {
            discarding = false
            return (UnsafePointer<UInt8>(hit.assumingMemoryBound(to: UInt8.self)) - p + 1, true)
        }
        if isFinal { discarding = false }
        return (n, isFinal)
    }

    /// When the record at `pos` is incomplete and longer than `limit` (or, with `isComplete`, is
    /// known to be longer): its raw bytes (truncated) and where decoding resumes: after the first
    /// LF, so that the outcome does not depend on how the input was chunked (or at the end of the
    /// input, discarding until the next LF). Nil when the record may still end normally.
    mutating func cut(_ p: UnsafePointer<UInt8>, from pos: Int, end n: Int, limit: Int, isComplete: Bool = false) -> (raw: [UInt8], next: Int, lineEnded: Bool)?
    {
        guard n - pos > limit || isComplete else { return nil }
        let lineEnd: Int
        let next: Int
        if let hit = memchr(p + pos, 0x0A, n - pos) {
            lineEnd = UnsafePointer<UInt8>(hit.assumingMemoryBound(to: UInt8.self)) - p
            next = lineEnd + 1
        } else {
            lineEnd = n
            next = n
            discarding = !isComplete
        }
        // At most `limit` bytes: that much is always in the input, so the reject is the same
        // whatever the chunking.
        let raw = Array(UnsafeBufferPointer(start: p + pos, count: min(lineEnd - pos, limit, Self.rawLimit)))
        return (raw, next, !discarding)
    }

    static func message(limit: Int) -> String {
        "the record is longer than \(limit) bytes (an unbalanced quote?); it was skipped up to the next line break"
    }
}
