import Foundation
@testable import SluiceCore
import Testing

/// SipHash-2-4-128 against the reference vectors, the columnar key hashing against the text
/// keys earlier versions stored, and the filter's exact "absent".
@Suite struct DedupeHashingTests {
    /// `vectors_sip128` of the reference implementation (github.com/veorq/SipHash, vectors.h):
    /// key 00 01 … 0f, message 00 01 … (n-1), by length n.
    static let vectors: [Int: String] = [
        0: "a3817f04ba25a8e66df67214c7550293",
        1: "da87c1d86b99af44347659119b22fc45",
        7: "a1f1ebbed8dbc153c0b84aa61ff08239",
        8: "3b62a9ba6258f5610f83e264f31497b4",
        15: "5493e99933b0a8117e08ec0f97cfc3d9",
        16: "6ee2a4ca67b054bbfd3315bf85230577",
        63: "5150d1772f50834a503e069a973fbd7c",
    ]

    @Test func sipHashMatchesTheReferenceVectors() {
        let seed = DedupeSeed(bytes: Array(0..<16))!
        for (length, expected) in Self.vectors {
            let hash = SipHash128.hash(Array(0..<UInt8(length)), seed: seed)
            // The reference's output bytes: each 64-bit word little-endian.
            let bytes = (0..<8).map { UInt8(truncatingIfNeeded: hash.high >> ($0 * 8)) } + (0..<8).map { UInt8(truncatingIfNeeded: hash.low >> ($0 * 8)) }
            #expect(bytes.map { String(format: "%02x", $0) }.joined() == expected, "length \(length)")
        }
    }

    @Test func seedsAndHashesRoundTrip() throws {
        let seed = DedupeSeed.random()
        #expect(DedupeSeed(bytes: seed.bytes) == seed)
        let hash = DedupeHash(high: 0x0123_4567_89ab_cdef, low: 0xf)
        #expect(hash.description == "0123456789abcdef000000000000000f")
        #expect(DedupeHash(hex: hash.description) == hash)
        #expect(DedupeHash(hex: "xyz") == nil)
        let json = try JSONEncoder().encode([hash])
        #expect(try JSONDecoder().decode([DedupeHash].self, from: json) == [hash])
        // A run's rows: sorted, one per bucket, each key found where it belongs.
        let hashes = (0..<5000).map { _ in DedupeHash(high: .random(in: 0...UInt64.max), low: .random(in: 0...UInt64.max)) }
        let rows = DedupeRunRow.rows(run: 3, seenAt: 10, hashes: hashes + hashes.prefix(10))
        #expect(rows.reduce(0) { $0 + $1.count } == 5000)
        #expect(Set(rows.map(\.bucket)).count == rows.count)
        #expect(DedupeRows.found(hashes, in: rows, since: 10) == Set(hashes))
        #expect(DedupeRows.found(hashes, in: rows, since: 11).isEmpty, "accepted before `since`")
        #expect(DedupeRows.found(hashes, in: rows, since: 0, excludingSeenAt: 10).isEmpty, "the commit's own earlier attempt")
    }

    /// A commit of many keys is cut into rows on several threads, each for its own buckets:
    /// every key lands once, sorted, in its bucket's row.
    @Test func aLargeRunIsCutIntoRowsOnSeveralThreads() {
        let hashes = (0..<(DedupeRunRow.parallelRowsKeys * 2)).map { _ in
            DedupeHash(high: .random(in: 0...UInt64.max), low: .random(in: 0...UInt64.max))
        }
        let single = DedupeRunRow.rows(run: 4, seenAt: 10, hashes: hashes + hashes.suffix(1000), writer: 9, lanes: 1)
        // Three lanes even on one processor (the lanes are threads), and the default.
        for lanes in [3, nil] as [Int?] {
            let rows =
                lanes.map { DedupeRunRow.rows(run: 4, seenAt: 10, hashes: hashes + hashes.suffix(1000), writer: 9, lanes: $0) }
                ?? DedupeRunRow.rows(run: 4, seenAt: 10, hashes: hashes + hashes.suffix(1000), writer: 9)
            #expect(rows == single, "lanes \(String(describing: lanes))")
            #expect(rows.map(\.bucket) == rows.map(\.bucket).sorted() && Set(rows.map(\.bucket)).count == rows.count)
            var all: [DedupeHash] = []
            for row in rows {
                let keys = (0..<row.count).map { row.hash(at: $0) }
                #expect(zip(keys, keys.dropFirst()).allSatisfy { $0 < $1 }, "bucket \(row.bucket) sorted, no repeats")
                #expect(keys.allSatisfy { $0.bucket == row.bucket })
                #expect(row.run == 4 && row.seenAt == 10 && row.writer == 9)
                all += keys
            }
            #expect(all.count == hashes.count && Set(all) == Set(hashes))
        }
    }

    /// The hash straight from the columns is the hash of ``DedupeKey/encode(_:)``'s text, for
    /// every type: keys stored as text before hashing existed are converted to the same hashes.
    @Test func columnarHashesAreThoseOfTheTextKeys() {
        let types: [DataType] = [.string, .int64, .binary, .json, .float64, .timestamp, .date, .decimal(precision: 12, scale: 3), .bool]
        let values: [[Value]] = [
            [.string(""), .int64(0), .binary([]), .json("{}"), .float64(0.1), .timestamp(0), .date(0), .decimal(0, scale: 3), .bool(false)],
            [
                .string("é ü \u{1F600} a\u{1F}b"), .int64(-1), .binary([0x00, 0x0f, 0xff]), .json(#"{"a":[1,2]}"#), .float64(-1e300),
                .timestamp(1_700_000_000_123_456), .date(-3), .decimal(-123_456, scale: 3), .bool(true),
            ],
            [.null, .int64(Int64.min), .null, .null, .null, .null, .null, .null, .null],
            [
                .string("null"), .int64(Int64.max), .binary([1, 2, 3]), .json("\"x\""), .float64(3113.52), .timestamp(-1), .date(20_000), .decimal(1, scale: 3),
                .null,
            ],
            [
                .string("12345678901234567890"), .int64(1_234_567_890), .binary(Array(0..<40)), .json("[]"), .float64(.infinity), .timestamp(1), .date(1),
                .decimal(999_999_999_999, scale: 3), .bool(false),
            ],
        ]
        var builders = types.map { ColumnBuilder(type: $0) }
        for row in values {
            for (i, value) in row.enumerated() {
                let appended = builders[i].append(value: value)
                #expect(appended)
            }
        }
        let columns = builders.map { builder in
            var b = builder
            return b.finish()
        }
        var hasher = DedupeKeyHasher(seed: DedupeSeed.random())
        for (row, rowValues) in values.enumerated() {
            for (i, column) in columns.enumerated() {
                #expect(hasher.hash([column], row: row) == hasher.hash(text: DedupeKey.encode([rowValues[i]])), "\(types[i]) row \(row)")
            }
            #expect(hasher.hash(columns, row: row) == hasher.hash(text: DedupeKey.encode(rowValues)), "row \(row), all columns")
        }
        // A range of rows hashed at once, as row by row (one integer column has its own path).
        var withNull = ColumnBuilder(type: .int64)
        for value: Value in [.int64(5), .null, .int64(-9_999_999_999), .int64(Int64.min), .int64(7)] {
            let appended = withNull.append(value: value)
            #expect(appended)
        }
        let nullable = withNull.finish()
        #expect(hasher.hash([nullable], row: 1) == hasher.hash(text: DedupeKey.encode([.null])))
        for keyColumns in [[columns[1]], [nullable], columns, [columns[0]]] {
            for rows in [0..<keyColumns[0].count, 1..<keyColumns[0].count] {
                let hashed = [DedupeHash](unsafeUninitializedCapacity: rows.count) { out, written in
                    hasher.hash(keyColumns, rows: rows, into: out.baseAddress!)
                    written = rows.count
                }
                let texts = rows.map { row in DedupeKey.encode(keyColumns.map { $0.value(at: row) }) }
                #expect(hashed == texts.map { hasher.hash(text: $0) }, "\(texts)")
            }
        }
        // Distinct keys, distinct hashes; another seed, other hashes.
        #expect(Set((0..<values.count).map { hasher.hash(columns, row: $0) }).count == values.count)
        var other = DedupeKeyHasher(seed: DedupeSeed.random())
        #expect(other.hash(columns, row: 0) != hasher.hash(columns, row: 0))
    }

    /// Text that is not UTF-8 hashes as its text form has it (U+FFFD for the bad bytes), the
    /// way earlier versions stored it.
    @Test func bytesThatAreNotUTF8HashAsTheirTextForm() {
        var builder = ColumnBuilder(type: .string)
        builder.appendBytes([0x61, 0xFF, 0x62])
        builder.appendBytes(Array("é".utf8))
        let column = builder.finish()
        var hasher = DedupeKeyHasher(seed: DedupeSeed.random())
        #expect(hasher.hash([column], row: 0) == hasher.hash(text: DedupeKey.encode([.string("a\u{FFFD}b")])))
        #expect(hasher.hash([column], row: 1) == hasher.hash(text: DedupeKey.encode([.string("é")])))
    }

    /// "Absent" is exact: no key added is ever called absent, however full the filter.
    @Test func theFilterNeverCallsAnAddedKeyAbsent() {
        for (capacity, limit, keys) in [(100_000, DedupeFilter.maxBytes, 100_000), (65_536, 8 << 10, 200_000)] {
            var filter = DedupeFilter(capacity: capacity, limit: limit)
            let added = (0..<keys).map { _ in DedupeHash(high: .random(in: 0...UInt64.max), low: .random(in: 0...UInt64.max)) }
            for hash in added { filter.insert(hash) }
            #expect(added.allSatisfy { filter.mayContain($0) })
            let maybes = (0..<100_000).filter { _ in filter.mayContain(DedupeHash(high: .random(in: 0...UInt64.max), low: .random(in: 0...UInt64.max))) }.count
            if limit == DedupeFilter.maxBytes {
                #expect(maybes < 100, "at capacity about 1 in 3,000 is a false maybe; \(maybes) in 100,000")
            } else {
                #expect(filter.isOverloaded == false && filter.byteSize == 8 << 10 && maybes > 50_000, "overfull: mostly maybes")
            }
        }
    }
}
