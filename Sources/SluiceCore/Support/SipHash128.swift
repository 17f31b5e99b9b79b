/// SipHash-2-4 with 128-bit output (Aumasson and Bernstein, "SipHash: a fast short-input PRF",
/// and the reference implementation's `siphash.c` with `outlen` 16).
public enum SipHash128 {
    /// The hash of `bytes` under `seed`. The reference implementation's 16 output bytes are
    /// the two 64-bit words (first ``DedupeHash/high``, then ``DedupeHash/low``), each
    /// little-endian.
    public static func hash(_ bytes: UnsafeRawBufferPointer, seed: DedupeSeed) -> DedupeHash {
        var v0: UInt64 = 0x736f_6d65_7073_6575 ^ seed.k0
        var v1: UInt64 = 0x646f_7261_6e64_6f6d ^ seed.k1 ^ 0xee
        var v2: UInt64 = 0x6c79_6765_6e65_7261 ^ seed.k0
        var v3: UInt64 = 0x7465_6462_7974_6573 ^ seed.k1

        @inline(__always) func round() {
            v0 &+= v1
            v1 = (v1 << 13) | (v1 >> 51)
            v1 ^= v0
            v0 = (v0 << 32) | (v0 >> 32)
            v2 &+= v3
            v3 = (v3 << 16) | (v3 >> 48)
            v3 ^= v2
            v0 &+= v3
            v3 = (v3 << 21) | (v3 >> 43)
            v3 ^= v0
            v2 &+= v1
            v1 = (v1 << 17) | (v1 >> 47)
            v1 ^= v2
            v2 = (v2 << 32) | (v2 >> 32)
        }

        let count = bytes.count
        let whole = count & ~7
        var offset = 0
        while offset < whole {
            let m = UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: offset, as: UInt64.self))
            v3 ^= m
            round()
            round()
            v0 ^= m
            offset += 8
        }
        var last = UInt64(truncatingIfNeeded: count) << 56
        var shift: UInt64 = 0
        while offset < count {
            last |= UInt64(bytes[offset]) << shift
            shift += 8
            offset += 1
        }
        v3 ^= last
        round()
        round()
        v0 ^= last
        v2 ^= 0xee
        round()
        round()
        round()
        round()
        let high = v0 ^ v1 ^ v2 ^ v3
        v1 ^= 0xdd
        round()
        round()
        round()
        round()
        return DedupeHash(high: high, low: v0 ^ v1 ^ v2 ^ v3)
    }

    /// The hash of `text`'s UTF-8 bytes.
    public static func hash(text: String, seed: DedupeSeed) -> DedupeHash {
        var text = text
        return text.withUTF8 { hash(UnsafeRawBufferPointer($0), seed: seed) }
    }

    public static func hash(_ bytes: [UInt8], seed: DedupeSeed) -> DedupeHash {
        bytes.withUnsafeBytes { hash($0, seed: seed) }
    }
}
