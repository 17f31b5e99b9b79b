import Foundation

/// Dead letters of one pipeline stored together, as one value: how the embedded state store
/// keeps its dead-letter queue.
///
/// A queue of a million letters stored one row each costs a row lookup, a row write and an index
/// update per letter on every replay, drop and sweep; stored in blocks, a replay that delivers a
/// block deletes one row. A letter's id is its block's number and its place in the block
/// (``id(block:slot:)``): ids grow with the order letters were filed in, and stay the same when
/// a letter is updated in place (it failed again) or its neighbours go.
///
/// The encoding is this type's own (the store is the only reader), column by column (see
/// ``encode()``): a version byte, the count, then each field of every letter in turn, lengths
/// and integers as LEB128 varints, times as IEEE 754 bits (seconds since 1970), and the raw
/// bytes last, one line each. ``decode(_:block:pipeline:)`` checks every length against the
/// bytes it has and throws on damaged bytes.
public struct DeadLetterBlock: Sendable, Hashable {
    /// The letters, in slot order.
    public var letters: [StoredDeadLetter]

    public init(letters: [StoredDeadLetter] = []) {
        self.letters = letters
    }

    /// Bits of an id that hold the slot; a block holds at most ``maxLetters`` letters.
    public static let slotBits: Int64 = 20
    /// At most this many letters in one block (new blocks are filled up to ``targetLetters``).
    public static let maxLetters = 1 << 20
    /// How many letters a new block takes before another is started.
    public static let targetLetters = 8192
    /// How many bytes of letters a new block takes before another is started.
    public static let targetBytes = 4 << 20

    /// The id of the letter in `slot` of `block`.
    public static func id(block: Int64, slot: Int) -> Int64 { block << slotBits | Int64(slot) }
    /// The block and slot of a letter id.
    public static func split(_ id: Int64) -> (block: Int64, slot: Int) { (id >> slotBits, Int(id & (1 << slotBits - 1))) }

    /// A stable 64-bit hash of a location (FNV-1a over its UTF-8): the key of the store's index
    /// from locations to blocks, the same in every process. Two locations with one hash are told
    /// apart by reading the block.
    public static func locationHash(_ location: String) -> Int64 {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in location.utf8 {
            hash ^= UInt64(byte)
            hash &*= 0x100_0000_01b3
        }
        return Int64(bitPattern: hash)
    }

    static let version: UInt8 = 1

    /// The slots this block holds, one bit each (slot `i` is bit `i % 8` of byte `i / 8`, no
    /// trailing zero bytes): what the store compares a replay's letters with to delete a whole
    /// block without reading it.
    public var slotBitmap: [UInt8] { Self.bitmap(slots: letters.map { Self.split($0.id).slot }) }

    /// The ``slotBitmap`` of `slots`.
    public static func bitmap(slots: [Int]) -> [UInt8] {
        guard let top = slots.max() else { return [] }
        var bits = [UInt8](repeating: 0, count: top / 8 + 1)
        for slot in slots { bits[slot / 8] |= 1 << (slot % 8) }
        return bits
    }

    /// The bytes of this block, column by column: the count, a flag byte (1: a letter's raw
    /// bytes hold a line break), then for all letters their slots, attempts, first seen, last seen,
    /// stages, kinds, messages, locations, schemas and raw lengths (each of these but the slots
    /// and times preceded by its length in bytes), and last their raw bytes each followed by a
    /// line feed: the rows as one NDJSON or CSV text when no raw holds a line break
    /// (what a replay decodes without reading letters one by one, ``lines(_:block:stage:)``).
    public func encode() -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(letters.reduce(16) { $0 + 40 + $1.letter.message.utf8.count + $1.letter.location.utf8.count + $1.letter.raw.count })
        out.append(Self.version)
        Self.putVarint(UInt64(letters.count), &out)
        let multiline = letters.contains { l in
            l.letter.raw.withUnsafeBufferPointer { b in
                guard let base = b.baseAddress else { return false }
                return memchr(base, 10, b.count) != nil || memchr(base, 13, b.count) != nil
            }
        }
        out.append(multiline ? 1 : 0)
        // Every section but the fixed-size ones starts with its length in bytes: a replay skips
        // those it does not read.
        func section(_ body: (inout [UInt8]) -> Void) {
            var bytes: [UInt8] = []
            body(&bytes)
            Self.putVarint(UInt64(bytes.count), &out)
            out += bytes
        }
        for l in letters { Self.putVarint(UInt64(Self.split(l.id).slot), &out) }
        section { b in for l in letters { Self.putVarint(UInt64(max(0, l.letter.attempts)), &b) } }
        for l in letters { Self.putDouble(l.firstSeen.timeIntervalSince1970, &out) }
        for l in letters { Self.putDouble(l.lastSeen.timeIntervalSince1970, &out) }
        section { b in for l in letters { Self.putString(l.letter.stage, &b) } }
        section { b in for l in letters { Self.putString(l.letter.errorKind, &b) } }
        section { b in for l in letters { Self.putString(l.letter.message, &b) } }
        section { b in for l in letters { Self.putString(l.letter.location, &b) } }
        section { b in
            for l in letters {
                if let schema = l.letter.schema {
                    b.append(1)
                    Self.putString(schema, &b)
                } else {
                    b.append(0)
                }
            }
        }
        section { b in for l in letters { Self.putVarint(UInt64(l.letter.raw.count), &b) } }
        for l in letters {
            out += l.letter.raw
            out.append(10)
        }
        return out
    }

    /// Reads the letters of `bytes`, block number `block` of `pipeline`.
    public static func decode(_ bytes: UnsafeRawBufferPointer, block: Int64, pipeline: String) throws -> DeadLetterBlock {
        var reader = Reader(bytes: bytes)
        guard try reader.byte() == version else { throw reader.failure("unknown version") }
        let n = try reader.count()
        _ = try reader.byte()
        var slots: [Int] = []
        slots.reserveCapacity(n)
        for _ in 0..<n { slots.append(try reader.slot()) }
        var attempts: [Int] = []
        attempts.reserveCapacity(n)
        try reader.section { r in
            for _ in 0..<n {
                let a = try r.varint()
                guard let exact = Int(exactly: a) else { throw r.failure("attempts \(a) out of range") }
                attempts.append(exact)
            }
        }
        var firstSeen: [Double] = []
        firstSeen.reserveCapacity(n)
        for _ in 0..<n { firstSeen.append(try reader.double()) }
        var lastSeen: [Double] = []
        lastSeen.reserveCapacity(n)
        for _ in 0..<n { lastSeen.append(try reader.double()) }
        // Stage and kind repeat from letter to letter: one String for each run of equal bytes.
        var stages: [String] = []
        stages.reserveCapacity(n)
        try reader.section { r in for _ in 0..<n { stages.append(try r.string(reusing: stages.last ?? "")) } }
        var kinds: [String] = []
        kinds.reserveCapacity(n)
        try reader.section { r in for _ in 0..<n { kinds.append(try r.string(reusing: kinds.last ?? "")) } }
        var messages: [String] = []
        messages.reserveCapacity(n)
        try reader.section { r in for _ in 0..<n { messages.append(try r.string()) } }
        var locations: [String] = []
        locations.reserveCapacity(n)
        try reader.section { r in for _ in 0..<n { locations.append(try r.string()) } }
        var schemas: [String?] = []
        schemas.reserveCapacity(n)
        try reader.section { r in for _ in 0..<n { schemas.append(try r.byte() == 0 ? nil : try r.string()) } }
        var lengths: [Int] = []
        lengths.reserveCapacity(n)
        try reader.section { r in for _ in 0..<n { lengths.append(try r.bounded(r.bytes.count)) } }
        var letters: [StoredDeadLetter] = []
        letters.reserveCapacity(n)
        for i in 0..<n {
            let raw = try reader.take(lengths[i])
            guard try reader.byte() == 10 else { throw reader.failure("raw bytes not followed by a line feed") }
            letters.append(
                StoredDeadLetter(
                    id: id(block: block, slot: slots[i]), pipeline: pipeline,
                    letter: DeadLetter(
                        stage: stages[i], errorKind: kinds[i], message: messages[i], location: locations[i], raw: [UInt8](raw), attempts: attempts[i],
                        schema: schemas[i]),
                    firstSeen: Date(timeIntervalSince1970: firstSeen[i]), lastSeen: Date(timeIntervalSince1970: lastSeen[i])))
        }
        guard reader.atEnd else { throw reader.failure("bytes after the last letter") }
        return DeadLetterBlock(letters: letters)
    }

    /// Reads the letters of `bytes`, block number `block` of `pipeline`.
    public static func decode(_ bytes: [UInt8], block: Int64, pipeline: String) throws -> DeadLetterBlock {
        try bytes.withUnsafeBytes { try decode($0, block: block, pipeline: pipeline) }
    }

    /// The rows of a block as one text, read without making its letters: what a replay decodes
    /// when every letter of a page is of one stage and no raw holds a line break.
    public struct Lines: Sendable {
        /// The letters' ids, row for row.
        public var ids: [Int64] = []
        /// Where each block's rows are in its bytes (each letter's raw bytes followed by a line
        /// feed), block by block.
        public var texts: [(block: Int, range: Range<Int>)] = []
        /// The blocks' bytes, and where in them each letter's location is, row for row.
        public var blocks: [[UInt8]] = []
        public var locations: [(block: Int, start: Int, count: Int)] = []

        public init() {}

        /// Calls `body` with each block's rows in turn; stops at the first false.
        public func withTexts(_ body: (UnsafeRawBufferPointer) -> Bool) -> Bool {
            texts.allSatisfy { t in blocks[t.block].withUnsafeBytes { body(UnsafeRawBufferPointer(rebasing: $0[t.range])) } }
        }

        /// The location of row `i`.
        public func location(_ i: Int) -> String {
            let l = locations[i]
            return String(decoding: blocks[l.block][l.start..<l.start + l.count], as: UTF8.self)
        }

        /// True when `body` holds for the bytes of every location.
        public func allLocations(_ body: (UnsafeRawBufferPointer) -> Bool) -> Bool {
            var i = 0
            while i < locations.count {
                let block = locations[i].block
                let ok = blocks[block].withUnsafeBytes { bytes in
                    while i < locations.count && locations[i].block == block {
                        let l = locations[i]
                        guard body(UnsafeRawBufferPointer(rebasing: bytes[l.start..<l.start + l.count])) else { return false }
                        i += 1
                    }
                    return true
                }
                guard ok else { return false }
            }
            return true
        }
    }

    /// Appends the rows of block `block` (its bytes) to `lines`; false, with `lines` unchanged,
    /// when a letter is not of `stage` or a raw holds a line break (the page is then read letter
    /// by letter).
    public static func lines(_ block: [UInt8], id: Int64, stage: String, into lines: inout Lines) throws -> Bool {
        let whole = try block.withUnsafeBytes { try Self.lines($0, block: id, blockIndex: lines.blocks.count, stage: stage, into: &lines) }
        if whole { lines.blocks.append(block) }
        return whole
    }

    static func lines(_ bytes: UnsafeRawBufferPointer, block: Int64, blockIndex: Int, stage: String, into lines: inout Lines) throws -> Bool {
        var reader = Reader(bytes: bytes)
        guard try reader.byte() == version else { throw reader.failure("unknown version") }
        let n = try reader.count()
        guard try reader.byte() == 0 else { return false }
        let start = lines.ids.count
        for _ in 0..<n { lines.ids.append(id(block: block, slot: try reader.slot())) }
        try reader.skipSection()  // attempts
        _ = try reader.take(16 * n)
        var wanted = stage
        let same = try wanted.withUTF8 { expected in
            try reader.section { r in
                for _ in 0..<n {
                    let s = try r.span()
                    guard s.count == expected.count, s.isEmpty || memcmp(s.baseAddress!, expected.baseAddress!, s.count) == 0 else { return false }
                }
                return true
            }
        }
        guard same else {
            lines.ids.removeSubrange(start...)
            return false
        }
        try reader.skipSection()  // kinds
        try reader.skipSection()  // messages
        let locationsFrom = lines.locations.count
        try reader.section { r in
            for _ in 0..<n {
                let count = try r.length()
                lines.locations.append((blockIndex, r.offset, count))
                _ = try r.take(count)
            }
        }
        try reader.skipSection()  // schemas
        try reader.skipSection()  // raw lengths
        let from = reader.offset
        _ = try reader.take(reader.end - reader.offset)
        guard n == 0 || bytes[bytes.count - 1] == 10 else {
            lines.ids.removeSubrange(start...)
            lines.locations.removeSubrange(locationsFrom...)
            throw reader.failure("rows not ended by a line feed")
        }
        guard reader.atEnd else { throw reader.failure("bytes after the last letter") }
        lines.texts.append((blockIndex, from..<reader.offset))
        return true
    }

    static func putVarint(_ value: UInt64, _ out: inout [UInt8]) {
        var v = value
        while v >= 0x80 {
            out.append(UInt8(truncatingIfNeeded: v) | 0x80)
            v >>= 7
        }
        out.append(UInt8(v))
    }

    static func putString(_ s: String, _ out: inout [UInt8]) {
        var s = s
        s.withUTF8 { utf8 in
            putVarint(UInt64(utf8.count), &out)
            out.append(contentsOf: utf8)
        }
    }

    static func putDouble(_ d: Double, _ out: inout [UInt8]) {
        var bits = d.bitPattern.littleEndian
        withUnsafeBytes(of: &bits) { out.append(contentsOf: $0) }
    }

    /// A cursor over a block's bytes that refuses to read past them.
    struct Reader {
        let bytes: UnsafeRawBufferPointer
        var offset = 0
        /// Where the bytes this reader may read end (a section's end, or the block's).
        var end: Int

        init(bytes: UnsafeRawBufferPointer, offset: Int = 0, end: Int? = nil) {
            self.bytes = bytes
            self.offset = offset
            self.end = min(end ?? bytes.count, bytes.count)
        }

        var atEnd: Bool { offset >= end }

        func failure(_ what: String) -> SluiceError {
            SluiceError(.corruptState, "a dead-letter block of the state store does not decode (\(what) at byte \(offset) of \(bytes.count))")
        }

        mutating func byte() throws -> UInt8 {
            guard offset < end else { throw failure("truncated") }
            defer { offset += 1 }
            return bytes[offset]
        }

        mutating func varint() throws -> UInt64 {
            var value: UInt64 = 0
            var shift: UInt64 = 0
            while true {
                let b = try byte()
                guard shift < 64 else { throw failure("varint too long") }
                value |= UInt64(b & 0x7F) << shift
                if b < 0x80 { return value }
                shift += 7
            }
        }

        mutating func span() throws -> UnsafeRawBufferPointer { try take(try length()) }

        /// A length, no more than the bytes left.
        mutating func length() throws -> Int {
            let n = try varint()
            guard n <= UInt64(max(0, end - offset)) else { throw failure("length \(n) past the end") }
            return Int(n)
        }

        /// A count of letters (each takes at least one byte).
        mutating func count() throws -> Int {
            let n = try length()
            guard n <= maxLetters else { throw failure("\(n) letters in one block") }
            return n
        }

        mutating func slot() throws -> Int {
            let s = try varint()
            guard s < UInt64(maxLetters) else { throw failure("slot \(s) out of range") }
            return Int(s)
        }

        /// Runs `body` over the next section (its length first) with a reader of its bytes only,
        /// which it must read to the end.
        mutating func section<T>(_ body: (inout Reader) throws -> T) throws -> T {
            let n = try length()
            var inner = Reader(bytes: bytes, offset: offset, end: offset + n)  // n ≤ end - offset: length() checked
            let result = try body(&inner)
            guard inner.offset == offset + n || (result as? Bool) == false else { throw failure("a section of \(n) bytes read as \(inner.offset - offset)") }
            offset += n
            return result
        }

        mutating func skipSection() throws { _ = try take(try length()) }

        /// A varint that is at most `limit` (a length of bytes elsewhere in the block).
        mutating func bounded(_ limit: Int) throws -> Int {
            let v = try varint()
            guard v <= UInt64(limit) else { throw failure("length \(v) past the end") }
            return Int(v)
        }

        /// The next `n` bytes.
        mutating func take(_ n: Int) throws -> UnsafeRawBufferPointer {
            guard n >= 0, n <= end - offset else { throw failure("length \(n) past the end") }
            defer { offset += n }
            return UnsafeRawBufferPointer(rebasing: bytes[offset..<offset + n])
        }

        mutating func string() throws -> String { String(decoding: try span(), as: UTF8.self) }

        /// `previous` when the next string has its bytes (no new String).
        mutating func string(reusing previous: String) throws -> String {
            let s = try span()
            var same = false
            var p = previous
            p.withUTF8 { same = $0.count == s.count && (s.isEmpty || memcmp($0.baseAddress!, s.baseAddress!, s.count) == 0) }
            return same ? previous : String(decoding: s, as: UTF8.self)
        }


        mutating func double() throws -> Double {
            guard end - offset >= 8 else { throw failure("truncated") }
            defer { offset += 8 }
            return Double(bitPattern: UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: offset, as: UInt64.self)))
        }
    }
}

extension DeadLetterBlock {
    /// The letters of a block grouped by stage and kind, with their first-seen range: what the
    /// store keeps beside each block so that counting a queue reads no letters.
    public struct Group: Sendable, Hashable {
        public var stage: String
        public var kind: String
        public var count: Int
        public var oldest: Double
        public var newest: Double
    }

    /// This block's groups, in order of first appearance.
    public var groups: [Group] {
        var out: [Group] = []
        for l in letters {
            let t = l.firstSeen.timeIntervalSince1970
            if let i = out.firstIndex(where: { $0.stage == l.letter.stage && $0.kind == l.letter.errorKind }) {
                out[i].count += 1
                out[i].oldest = min(out[i].oldest, t)
                out[i].newest = max(out[i].newest, t)
            } else {
                out.append(Group(stage: l.letter.stage, kind: l.letter.errorKind, count: 1, oldest: t, newest: t))
            }
        }
        return out
    }

    /// `groups` as bytes (the same varint and string encoding as letters).
    public static func encode(groups: [Group]) -> [UInt8] {
        var out: [UInt8] = [version]
        for g in groups {
            putString(g.stage, &out)
            putString(g.kind, &out)
            putVarint(UInt64(g.count), &out)
            putDouble(g.oldest, &out)
            putDouble(g.newest, &out)
        }
        return out
    }

    /// The groups of `bytes` (``encode(groups:)``).
    public static func decodeGroups(_ bytes: [UInt8]) throws -> [Group] {
        try bytes.withUnsafeBytes { buffer in
            var reader = Reader(bytes: buffer)
            guard try reader.byte() == version else { throw reader.failure("unknown version") }
            var out: [Group] = []
            while !reader.atEnd {
                out.append(
                    Group(
                        stage: try reader.string(), kind: try reader.string(), count: try reader.bounded(maxLetters), oldest: try reader.double(),
                        newest: try reader.double()))
            }
            return out
        }
    }
}
