import SluiceCore

/// One object member of the line being decoded, stored at its column's index.
struct NDJSONSlot: BitwiseCopyable {
    /// The line this slot was last written by (slots are not cleared between lines).
    var generation = 0
    var kind = JSONValueKind.null
    var inScratch = false
    /// Int64 / Double bit pattern, or 1/0 for bools.
    var bits: UInt64 = 0
    /// A decoded string: index into the input, or into the scratch buffer when `inScratch`.
    var start = 0
    var length = 0
    /// The value's JSON text in the input.
    var rawStart = 0
    var rawLength = 0
}

/// Why a line could not be parsed into slots.
struct NDJSONLineError {
    var kind: String
    var message: String
}

/// Parses one NDJSON line into per-column slots (step one of decoding; ``NDJSONRowBuilder``
/// converts and appends). Keys not yet in the schema get pending slots past the known columns.
struct NDJSONRowParser {
    var keys = JSONKeyTable()
    /// Keys first seen on the current line, in order; their slots follow the known columns.
    var pending = JSONKeyTable()
    var columnCount = 0
    var slots: ScratchBuffer<NDJSONSlot>
    var generation = 0
    /// Decoded strings (and keys) of the current line.
    var scratch: ScratchBuffer<UInt8>

    init() {
        slots = ScratchBuffer(capacity: 64)
        slots.base.initialize(repeating: NDJSONSlot(), count: slots.capacity)
        scratch = ScratchBuffer(capacity: 4096)
    }

    func deallocate() {
        keys.deallocate()
        pending.deallocate()
        slots.deallocate()
        scratch.deallocate()
    }

    /// Makes `name` column `columnCount` (columns are only ever appended).
    mutating func addColumn(_ p: UnsafePointer<UInt8>, _ n: Int) {
        keys.append(p, n)
        columnCount += 1
        slots.ensure(columnCount + 1, keeping: columnCount, filling: NDJSONSlot())
    }

    mutating func addColumn(_ name: String) {
        var name = name
        name.withUTF8 { addColumn($0.baseAddress ?? UnsafePointer(scratch.base), $0.count) }
    }

    @inline(__always)
    private mutating func pendingSlot(_ p: UnsafePointer<UInt8>, _ n: Int) -> Int {
        var k = pending.count == 0 ? -1 : pending.lookup(p, n)
        if k < 0 {
            k = pending.count
            pending.append(p, n)
            slots.ensure(columnCount + pending.count + 1, keeping: columnCount + pending.count - 1, filling: NDJSONSlot())
        }
        return columnCount + k
    }

    /// Parses the object in `p[start..<end]` into slots with a new generation. Returns nil on
    /// success; the error otherwise (with the 1-based byte column of the problem).
    mutating func parse(_ p: UnsafePointer<UInt8>, start: Int, end: Int) -> NDJSONLineError? {
        generation += 1
        if pending.count > 0 { pending.removeAll() }
        scratch.ensure(end - start)
        let out = scratch.base
        var used = 0
        var s = JSONScanner(p, from: start, end: end)
        s.skipWhitespace()
        guard s.i < end, p[s.i] == UInt8(ascii: "{") else {
            if s.i < end, s.skipValue(depth: 0) {
                s.skipWhitespace()
                if s.i == end {
                    return NDJSONLineError(kind: "malformed_row", message: "the line is a JSON value but not an object")
                }
            }
            return NDJSONLineError(kind: "malformed_row", message: "the line is not a JSON object")
        }
        s.i += 1
        s.skipWhitespace()
        var ok = true
        if s.i < end, p[s.i] == UInt8(ascii: "}") {
            s.i += 1
        } else {
            var predicted = 0
            members: while true {
                guard s.i < end, p[s.i] == UInt8(ascii: "\"") else { ok = s.fail("object key (a string) expected"); break }
                var keyStart = 0, keyLength = 0, keyInScratch = false
                guard s.scanString(out: out, used: &used, start: &keyStart, length: &keyLength, inScratch: &keyInScratch) else {
                    ok = false
                    break
                }
                let key = keyInScratch ? UnsafePointer(out) + keyStart : p + keyStart
                var column: Int
                if predicted < columnCount, keys.matches(predicted, key, keyLength) {
                    column = predicted
                } else {
                    column = keys.lookup(key, keyLength)
                    if column < 0 { column = pendingSlot(key, keyLength) }
                }
                predicted = column + 1
                s.skipWhitespace()
                guard s.i < end, p[s.i] == UInt8(ascii: ":") else { ok = s.fail("':' expected after an object key"); break }
                s.i += 1
                s.skipWhitespace()
                guard s.i < end else { ok = s.fail("value expected"); break }
                let slot = slots.base + column
                let rawStart = s.i
                switch p[s.i] {
                case UInt8(ascii: "\""):
                    var start = 0, length = 0, inScratch = false
                    guard s.scanString(out: out, used: &used, start: &start, length: &length, inScratch: &inScratch) else {
                        ok = false
                        break members
                    }
                    slot.pointee.kind = .string
                    slot.pointee.start = start
                    slot.pointee.length = length
                    slot.pointee.inScratch = inScratch
                case UInt8(ascii: "{"), UInt8(ascii: "["):
                    guard s.skipValue(depth: 1) else { ok = false; break members }
                    slot.pointee.kind = .nested
                case UInt8(ascii: "t"):
                    guard s.literal("true") else { ok = false; break members }
                    slot.pointee.kind = .bool
                    slot.pointee.bits = 1
                case UInt8(ascii: "f"):
                    guard s.literal("false") else { ok = false; break members }
                    slot.pointee.kind = .bool
                    slot.pointee.bits = 0
                case UInt8(ascii: "n"):
                    guard s.literal("null") else { ok = false; break members }
                    slot.pointee.kind = .null
                default:
                    var kind = JSONValueKind.null, bits: UInt64 = 0
                    guard s.scanNumber(kind: &kind, bits: &bits) else { ok = false; break members }
                    slot.pointee.kind = kind
                    slot.pointee.bits = bits
                }
                slot.pointee.generation = generation
                slot.pointee.rawStart = rawStart
                slot.pointee.rawLength = s.i - rawStart
                s.skipWhitespace()
                guard s.i < end else { ok = s.fail("',' or '}' expected (the object is not closed)"); break }
                if p[s.i] == UInt8(ascii: ",") {
                    s.i += 1
                    s.skipWhitespace()
                    continue
                }
                if p[s.i] == UInt8(ascii: "}") {
                    s.i += 1
                    break
                }
                ok = s.fail("',' or '}' expected in the object")
                break
            }
        }
        if ok {
            s.skipWhitespace()
            if s.i == end { return nil }
            _ = s.fail("unexpected text after the object")
        }
        let column = s.errorPosition - start + 1
        if s.errorIsUTF8 {
            return NDJSONLineError(kind: "invalid_utf8", message: "invalid UTF-8 in a string at byte column \(column)")
        }
        return NDJSONLineError(kind: "malformed_row", message: "invalid JSON at byte column \(column): \(s.errorMessage)")
    }

    /// The key bytes of pending slot `k` as a String.
    func pendingName(_ k: Int) -> String { pending.name(k) }
}

extension JSONKeyTable {
    func name(_ index: Int) -> String {
        withKey(index) { String(decoding: $0, as: UTF8.self) }
    }
}
