import Foundation

/// The identity of a dedupe key as the state stores keep it: SipHash-2-4 with 128-bit output
/// of the key's text form (``DedupeKeyHasher``), keyed with the pipeline's secret
/// ``DedupeSeed``.
///
/// 128 bits make an accidental collision negligible (with 10 billion live keys, about one
/// chance in 10¹⁸ that any two collide), and the secret key keeps anyone who sends records
/// from crafting two keys that collide on purpose (SipHash is a keyed PRF).
public struct DedupeHash: Hashable, Comparable, Sendable, CustomStringConvertible {
    public var high: UInt64
    public var low: UInt64

    public init(high: UInt64, low: UInt64) {
        self.high = high
        self.low = low
    }

    /// The stores group keys into this many buckets by their first bits, so that looking a key
    /// up reads one bucket.
    public static let bucketCount = 1024
    static let bucketShift: UInt64 = 54

    /// Which of the ``bucketCount`` buckets the key belongs to (its first 10 bits).
    public var bucket: Int { Int(high >> Self.bucketShift) }

    public static func < (a: DedupeHash, b: DedupeHash) -> Bool {
        a.high != b.high ? a.high < b.high : a.low < b.low
    }

    /// 32 hexadecimal digits, most significant first.
    public var description: String {
        let h = String(high, radix: 16), l = String(low, radix: 16)
        return String(repeating: "0", count: 16 - h.count) + h + String(repeating: "0", count: 16 - l.count) + l
    }

    /// Parses ``description``; nil unless exactly 32 hexadecimal digits.
    public init?(hex: some StringProtocol) {
        guard hex.utf8.count == 32, let h = UInt64(hex.prefix(16), radix: 16), let l = UInt64(hex.suffix(16), radix: 16) else { return nil }
        self.init(high: h, low: l)
    }
}

extension DedupeHash: Codable {
    public init(from decoder: any Decoder) throws {
        let text = try decoder.singleValueContainer().decode(String.self)
        guard let hash = DedupeHash(hex: text) else {
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: "not a dedupe key hash: \(text)"))
        }
        self = hash
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(description)
    }
}

/// The secret key of a pipeline's key hashing, made at random when the pipeline first uses
/// dedupe and kept in its state store (every worker sharing the store hashes alike).
public struct DedupeSeed: Hashable, Sendable {
    public var k0: UInt64
    public var k1: UInt64

    public init(k0: UInt64, k1: UInt64) {
        self.k0 = k0
        self.k1 = k1
    }

    public static func random() -> DedupeSeed {
        var generator = SystemRandomNumberGenerator()
        return DedupeSeed(k0: generator.next(), k1: generator.next())
    }

    /// The 16 bytes of the key, k0 then k1, each little-endian (SipHash's own layout).
    public var bytes: [UInt8] {
        (0..<8).map { UInt8(truncatingIfNeeded: k0 >> ($0 * 8)) } + (0..<8).map { UInt8(truncatingIfNeeded: k1 >> ($0 * 8)) }
    }

    public init?(bytes: [UInt8]) {
        guard bytes.count == 16 else { return nil }
        var k0: UInt64 = 0, k1: UInt64 = 0
        for i in 0..<8 {
            k0 |= UInt64(bytes[i]) << (i * 8)
            k1 |= UInt64(bytes[8 + i]) << (i * 8)
        }
        self.init(k0: k0, k1: k1)
    }
}

/// One row of a store's dedupe keys: the keys of one bucket accepted by one commit (a run),
/// sorted, as 16 bytes each (big-endian ``DedupeHash``).
public struct DedupeRunRow: Sendable, Hashable {
    public var run: Int64
    public var bucket: Int
    /// When the commit accepted the keys (seconds since 1970).
    public var seenAt: Double
    public var keys: [UInt8]
    /// ``StateCommit/dedupeWriter`` of the commit (0: none).
    public var writer: Int64

    public init(run: Int64, bucket: Int, seenAt: Double, keys: [UInt8], writer: Int64 = 0) {
        self.run = run
        self.bucket = bucket
        self.seenAt = seenAt
        self.keys = keys
        self.writer = writer
    }

    public var count: Int { keys.count / 16 }

    public func hash(at index: Int) -> DedupeHash {
        keys.withUnsafeBytes { raw in
            DedupeHash(
                high: UInt64(bigEndian: raw.loadUnaligned(fromByteOffset: index * 16, as: UInt64.self)),
                low: UInt64(bigEndian: raw.loadUnaligned(fromByteOffset: index * 16 + 8, as: UInt64.self)))
        }
    }

    /// Whether the row holds `hash` (binary search: the keys are sorted).
    public func contains(_ hash: DedupeHash) -> Bool {
        var lo = 0, hi = count
        while lo < hi {
            let mid = (lo + hi) / 2, value = self.hash(at: mid)
            if value == hash { return true }
            if value < hash { lo = mid + 1 } else { hi = mid }
        }
        return false
    }

    /// The hashes (sorted) as 16 big-endian bytes each, a hash equal to the one before left out.
    static func packed(_ sorted: UnsafeMutableBufferPointer<DedupeHash>) -> [UInt8] {
        [UInt8](unsafeUninitializedCapacity: sorted.count * 16) { buffer, written in
            let base = UnsafeMutableRawPointer(buffer.baseAddress!)
            var offset = 0
            for index in sorted.indices where index == 0 || sorted[index] != sorted[index - 1] {
                base.storeBytes(of: sorted[index].high.bigEndian, toByteOffset: offset, as: UInt64.self)
                base.storeBytes(of: sorted[index].low.bigEndian, toByteOffset: offset + 8, as: UInt64.self)
                offset += 16
            }
            written = offset
        }
    }

    /// The rows of one run: `hashes` deduplicated, sorted and cut by bucket (a counting sort
    /// into buckets, then each bucket sorted). A commit of ``parallelRowsKeys`` keys or more
    /// does this on several threads (``ParallelLanes``, up to the processors the process may
    /// use): the pipeline waits for its commit, so the reader's threads are free meanwhile.
    public static func rows(run: Int64, seenAt: Double, hashes: [DedupeHash], writer: Int64 = 0) -> [DedupeRunRow] {
        rows(run: run, seenAt: seenAt, hashes: hashes, writer: writer, lanes: hashes.count >= parallelRowsKeys ? ParallelLanes.defaultThreads : 1)
    }

    /// ``rows(run:seenAt:hashes:writer:)`` on `lanes` threads: each lane counts and then moves
    /// its own slice of `hashes` to where its buckets' keys go, then sorts and packs its own
    /// range of buckets.
    static func rows(run: Int64, seenAt: Double, hashes: [DedupeHash], writer: Int64, lanes: Int) -> [DedupeRunRow] {
        let bucketCount = DedupeHash.bucketCount
        let lanes = max(1, min(lanes, hashes.count))
        let slice = { (lane: Int) in lane * hashes.count / lanes..<(lane + 1) * hashes.count / lanes }
        let buckets = { (lane: Int) in lane * bucketCount / lanes..<(lane + 1) * bucketCount / lanes }
        // counts[lane * bucketCount + bucket]: the keys of the lane's slice in the bucket; then
        // where the lane's first key of that bucket goes.
        var counts = [Int](repeating: 0, count: lanes * bucketCount)
        var starts = [Int](repeating: 0, count: bucketCount + 1)
        var slots = [DedupeRunRow?](repeating: nil, count: bucketCount)
        let ordered = UnsafeMutableBufferPointer<DedupeHash>.allocate(capacity: hashes.count)
        defer { ordered.deallocate() }
        hashes.withUnsafeBufferPointer { hashes in
            counts.withUnsafeMutableBufferPointer { counts in
                // Each lane touches only its own slice of `hashes`, its own part of `counts`, its
                // own keys' places in `ordered` and its own `slots`. (The bodies throw nothing.)
                try? ParallelLanes.run(Array(0..<lanes), lanes: lanes) { lane, _ in
                    let own = counts.baseAddress! + lane * bucketCount
                    for index in slice(lane) { own[hashes[index].bucket] += 1 }
                }
                var at = 0
                for bucket in 0..<bucketCount {
                    starts[bucket] = at
                    for lane in 0..<lanes {
                        let count = counts[lane * bucketCount + bucket]
                        counts[lane * bucketCount + bucket] = at
                        at += count
                    }
                }
                starts[bucketCount] = at
                try? ParallelLanes.run(Array(0..<lanes), lanes: lanes) { lane, _ in
                    let next = counts.baseAddress! + lane * bucketCount
                    for index in slice(lane) {
                        let hash = hashes[index]
                        (ordered.baseAddress! + next[hash.bucket]).initialize(to: hash)
                        next[hash.bucket] += 1
                    }
                }
            }
        }
        let bucketStarts = starts
        slots.withUnsafeMutableBufferPointer { slots in
            try? ParallelLanes.run(Array(0..<lanes), lanes: lanes) { lane, _ in
                for bucket in buckets(lane) where bucketStarts[bucket + 1] > bucketStarts[bucket] {
                    var keys = UnsafeMutableBufferPointer(rebasing: ordered[bucketStarts[bucket]..<bucketStarts[bucket + 1]])
                    keys.sort(by: <)
                    slots[bucket] = DedupeRunRow(run: run, bucket: bucket, seenAt: seenAt, keys: Self.packed(keys), writer: writer)
                }
            }
        }
        return slots.compactMap { $0 }
    }

    /// Keys of a commit from which ``rows(run:seenAt:hashes:writer:)`` uses several threads.
    static let parallelRowsKeys = 65_536
}

/// Where a reading of a store's dedupe rows goes on from: after this run, and within it after
/// this bucket (rows are read in (run, bucket) order).
public struct DedupeRunCursor: Sendable, Hashable, Comparable {
    public var run: Int64
    public var bucket: Int

    public init(run: Int64, bucket: Int = Int.max) {
        self.run = run
        self.bucket = bucket
    }

    public static let start = DedupeRunCursor(run: 0)

    public static func < (a: DedupeRunCursor, b: DedupeRunCursor) -> Bool {
        a.run != b.run ? a.run < b.run : a.bucket < b.bucket
    }
}

/// What every store does alike with its dedupe rows.
public enum DedupeRows {
    /// Which of `hashes` `rows` hold in rows accepted at or after `since` (and not at
    /// `excludingSeenAt`: a commit's own earlier attempt).
    public static func found(
        _ hashes: some Collection<DedupeHash>, in rows: [DedupeRunRow], since: Double, excludingSeenAt: Double? = nil
    ) -> Set<DedupeHash> {
        guard !rows.isEmpty else { return [] }
        let wanted = DedupeWanted(hashes)
        var found = Set<DedupeHash>()
        for row in rows where row.seenAt >= since && row.seenAt != excludingSeenAt {
            row.keys.withUnsafeBytes { wanted.check(bucket: row.bucket, keys: $0, into: &found) }
        }
        return found
    }

    /// The keys `commit` stores: its hashes and its text keys (an older commit's) hashed.
    public static func hashes(of commit: StateCommit, seed: DedupeSeed) -> [DedupeHash] {
        var hashes = commit.dedupeHashes ?? []
        for key in commit.dedupeKeys { hashes.append(SipHash128.hash(text: key, seed: seed)) }
        return hashes
    }

    /// The distinct buckets of `hashes`.
    public static func buckets(_ hashes: [DedupeHash]) -> [Int] {
        // A flag per bucket, not a `Set`: a commit passes hundreds of thousands of hashes.
        var present = [Bool](repeating: false, count: DedupeHash.bucketCount)
        present.withUnsafeMutableBufferPointer { flags in
            hashes.withUnsafeBufferPointer { hashes in
                for hash in hashes { flags[hash.bucket] = true }
            }
        }
        return present.indices.filter { present[$0] }
    }
}

/// Hashes to look for in a store's rows, sorted and indexed by bucket, so each row read is
/// checked by binary searches in its own bytes (no copy, no row kept).
public struct DedupeWanted: Sendable {
    private let sorted: [DedupeHash]
    /// `starts[b]..<starts[b + 1]`: the hashes of bucket b in ``sorted``.
    private let starts: [Int]

    public init(_ hashes: some Collection<DedupeHash>) {
        var sorted = Array(hashes)
        sorted.sort(by: <)
        var starts = [Int](repeating: 0, count: DedupeHash.bucketCount + 1)
        for hash in sorted { starts[hash.bucket + 1] += 1 }
        for bucket in 0..<DedupeHash.bucketCount { starts[bucket + 1] += starts[bucket] }
        self.sorted = sorted
        self.starts = starts
    }

    /// The buckets holding wanted hashes.
    public var buckets: [Int] { (0..<DedupeHash.bucketCount).filter { starts[$0 + 1] > starts[$0] } }

    /// Adds to `found` the wanted hashes of `bucket` that `keys` (a row's sorted 16-byte
    /// big-endian hashes) holds.
    public func check(bucket: Int, keys: UnsafeRawBufferPointer, into found: inout Set<DedupeHash>) {
        let count = keys.count / 16
        guard count > 0 else { return }
        for index in starts[bucket]..<starts[bucket + 1] {
            let hash = sorted[index]
            var lo = 0, hi = count
            while lo < hi {
                let mid = (lo + hi) / 2
                let high = UInt64(bigEndian: keys.loadUnaligned(fromByteOffset: mid * 16, as: UInt64.self))
                let low = UInt64(bigEndian: keys.loadUnaligned(fromByteOffset: mid * 16 + 8, as: UInt64.self))
                if high == hash.high && low == hash.low {
                    found.insert(hash)
                    break
                }
                if high < hash.high || (high == hash.high && low < hash.low) { lo = mid + 1 } else { hi = mid }
            }
        }
    }
}
