/// A MySQL GTID set: for each source server (its UUID), the numbers of the transactions it holds,
/// as sorted, disjoint, non-adjacent intervals. It is what a MySQL replica tells the server it
/// has (`COM_BINLOG_DUMP_GTID`), what `gtid_executed` and `SHOW BINARY LOG STATUS` print, and
/// what a `PREVIOUS_GTIDS` event carries at the start of each binlog file.
///
/// Text form: `3e11fa47-71ca-11e1-9e33-c80aa9429562:1-5:7,…` (UUIDs in lower case and in
/// order, intervals `first-last` inclusive, or one number). Binary form: the number of UUIDs
/// (int<8>), then for each the 16 bytes of the UUID, the number of intervals (int<8>) and each
/// interval as its first number and the number after its last (int<8> each). Tagged GTIDs
/// (MySQL 8.3+, `uuid:tag:1-5`) are refused.
public struct MySQLGTIDSet: Equatable, Sendable, CustomStringConvertible {
    /// UUID (16 bytes) → half-open intervals `[first, last + 1)`, sorted, disjoint and not adjacent.
    public private(set) var intervals: [[UInt8]: [Range<UInt64>]] = [:]

    public init() {}

    public var isEmpty: Bool { intervals.isEmpty }

    /// Parses the text form; whitespace (servers print a newline after each comma) is ignored.
    public init(parsing text: String) throws {
        let compact = text.filter { !$0.isWhitespace }
        guard !compact.isEmpty else { return }
        for part in compact.split(separator: ",", omittingEmptySubsequences: false) {
            let fields = part.split(separator: ":", omittingEmptySubsequences: false)
            guard fields.count >= 2, let uuid = Self.uuid(fields[0]) else {
                throw MySQLProtocolError("'\(part.prefix(80))' in a GTID set is not uuid:interval[:interval…]", at: 0)
            }
            for field in fields.dropFirst() {
                let bounds = field.split(separator: "-", omittingEmptySubsequences: false)
                guard (1...2).contains(bounds.count), let first = UInt64(bounds[0]), let last = UInt64(bounds[bounds.count - 1]),
                    first >= 1, first <= last, last < UInt64(Int64.max)
                else {
                    let tagged = field.first.map { $0.isLetter || $0 == "_" } ?? false
                    throw MySQLProtocolError(
                        tagged
                            ? "the GTID set names a tag ('\(field.prefix(40))'): tagged GTIDs (MySQL 8.3+) are not supported"
                            : "'\(field.prefix(40))' in a GTID set is not a transaction number or range",
                        at: 0)
                }
                insert(uuid, first..<(last + 1))
            }
        }
    }

    /// Reads the binary form (a `PREVIOUS_GTIDS` event's body, without checksum); every byte
    /// must belong to it.
    public init(decoding bytes: [UInt8]) throws {
        var r = MySQLByteReader(bytes)
        let count = try r.integer(8, "number of GTID sources")
        // MySQL 8.3+ marks a tagged set in the top byte (format 1), which is not read here.
        guard count >> 56 == 0 else { throw MySQLProtocolError("a GTID set in the tagged format (MySQL 8.3+) is not supported", at: 0) }
        guard count <= UInt64(r.remaining / 24) else { throw MySQLProtocolError("a GTID set of \(count) sources in \(bytes.count) bytes", at: 0) }
        for _ in 0..<count {
            let uuid = try r.bytes(16, "GTID source id")
            let n = try r.integer(8, "number of GTID intervals")
            guard n <= UInt64(r.remaining / 16) else { throw MySQLProtocolError("\(n) GTID intervals in \(r.remaining) bytes", at: r.offset) }
            for _ in 0..<n {
                let start = try r.integer(8, "GTID interval start"), end = try r.integer(8, "GTID interval end")
                guard start >= 1, start < end, end <= UInt64(Int64.max) else {
                    throw MySQLProtocolError("a GTID interval \(start)..<\(end)", at: r.offset - 16)
                }
                insert(uuid, start..<end)
            }
        }
        guard r.isAtEnd else { throw MySQLProtocolError("\(r.remaining) bytes after a GTID set", at: r.offset) }
    }

    /// Adds transaction `number` (1 to 2^63 - 2, as servers number them; others are ignored) of
    /// the server `uuid`.
    public mutating func insert(_ uuid: [UInt8], _ number: UInt64) {
        guard number >= 1, number < UInt64(Int64.max) else { return }
        insert(uuid, number..<(number + 1))
    }

    /// Adds every transaction of `other`.
    public mutating func formUnion(_ other: MySQLGTIDSet) {
        for (uuid, ranges) in other.intervals { for range in ranges { insert(uuid, range) } }
    }

    public func contains(_ uuid: [UInt8], _ number: UInt64) -> Bool {
        intervals[uuid]?.contains { $0.contains(number) } ?? false
    }

    mutating func insert(_ uuid: [UInt8], _ range: Range<UInt64>) {
        var ranges = intervals[uuid] ?? []
        // The common case: the next transaction of a server, at the end of its last interval.
        if let last = ranges.last, last.upperBound == range.lowerBound {
            ranges[ranges.count - 1] = last.lowerBound..<range.upperBound
        } else if let last = ranges.last, last.upperBound < range.lowerBound {
            ranges.append(range)
        } else {
            var merged = range
            var kept: [Range<UInt64>] = []
            for r in ranges {
                if r.upperBound < merged.lowerBound || r.lowerBound > merged.upperBound {
                    kept.append(r)
                } else {
                    merged = min(r.lowerBound, merged.lowerBound)..<max(r.upperBound, merged.upperBound)
                }
            }
            kept.append(merged)
            ranges = kept.sorted { $0.lowerBound < $1.lowerBound }
        }
        intervals[uuid] = ranges
    }

    /// The UUIDs in the order servers print them (their text, which sorts as their bytes do).
    var sortedSources: [[UInt8]] { intervals.keys.sorted { $0.lexicographicallyPrecedes($1) } }

    public var description: String {
        sortedSources.map { uuid in
            ([Self.text(uuid)] + intervals[uuid]!.map { $0.count == 1 ? "\($0.lowerBound)" : "\($0.lowerBound)-\($0.upperBound - 1)" })
                .joined(separator: ":")
        }.joined(separator: ",")
    }

    /// The binary form `COM_BINLOG_DUMP_GTID` sends.
    public var encoded: [UInt8] {
        var w = MySQLByteWriter()
        w.integer(UInt64(intervals.count), 8)
        for uuid in sortedSources {
            w.append(uuid)
            let ranges = intervals[uuid]!
            w.integer(UInt64(ranges.count), 8)
            for range in ranges {
                w.integer(range.lowerBound, 8)
                w.integer(range.upperBound, 8)
            }
        }
        return w.bytes
    }

    /// A UUID's 16 bytes from its text (32 hex digits, dashes anywhere ignored).
    public static func uuid(_ text: some StringProtocol) -> [UInt8]? {
        let digits = text.utf8.filter { $0 != UInt8(ascii: "-") }
        guard digits.count == 32 else { return nil }
        var out: [UInt8] = []
        out.reserveCapacity(16)
        var i = digits.startIndex
        while i < digits.endIndex {
            guard let high = hexValue(digits[i]), let low = hexValue(digits[i + 1]) else { return nil }
            out.append(high << 4 | low)
            i += 2
        }
        return out
    }

    /// A UUID's text: 8-4-4-4-12 lower-case hex digits.
    public static func text(_ uuid: [UInt8]) -> String {
        let hex = Array("0123456789abcdef".utf8)
        var out: [UInt8] = []
        for (i, byte) in uuid.enumerated() {
            if [4, 6, 8, 10].contains(i) { out.append(UInt8(ascii: "-")) }
            out += [hex[Int(byte >> 4)], hex[Int(byte & 15)]]
        }
        return String(decoding: out, as: UTF8.self)
    }

    static func hexValue(_ c: UInt8) -> UInt8? {
        switch c {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): c - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): c - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): c - UInt8(ascii: "A") + 10
        default: nil
        }
    }
}
