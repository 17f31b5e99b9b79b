#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif
import SluiceCore

/// Decodes newline-delimited JSON (one object per line, LF or CRLF) into typed columnar batches.
///
/// - Schema: declared ``NDJSONOptions/columns`` first, then the keys of the sample's first
///   `inferRows` lines in first-seen order, typed by their first non-null value (bool, int64,
///   float64, string, json for objects and arrays; int64 becomes float64 when the sample also
///   holds a fraction or exponent for that key). Strings are never guessed as timestamps.
///   A key that held only nulls is a string column that takes any value (non-strings as JSON text).
/// - A key first seen later adds a column (NULL for the batch's earlier rows). A number with a
///   fraction in an inferred int64 column widens it to float64; an int in a float64 column is
///   converted (as are the strings `"NaN"`, `"Infinity"`, `"-Infinity"`). Any other mismatch rejects the line (`type_mismatch`), as do invalid JSON and
///   non-object lines (`malformed_row`) and invalid UTF-8 (`invalid_utf8`).
/// - Missing keys are NULL. A key repeated in one object: the last value wins.
/// - Blank lines are skipped. A UTF-8 BOM at the start of the file is skipped.
///
/// Not thread-safe: one decoder reads one file at a time.
public final class NDJSONDecoder: RecordDecoder {
    /// The most columns a decoder makes: a line whose keys would make more is rejected as
    /// `too_many_columns` (the push endpoint refuses such fields before accepting them).
    public static var maxColumns: Int { NDJSONRowBuilder.maxColumns }

    public let options: NDJSONOptions
    private var core = NDJSONRowBuilder()

    public init(options: NDJSONOptions = NDJSONOptions()) {
        self.options = options
    }

    deinit { core.deallocate() }

    /// The schema rows are decoded into; it grows when a new key appears.
    public var schema: Schema { core.schema }
    /// Lines of the sample that schema inference looked at.
    public var inferredLines: Int { core.inferredLines }
    /// Offset and 1-based line of the next record to decode.
    public var nextOffset: Int { core.offset }
    public var nextLine: Int { core.line }

    public var isBetweenRecords: Bool { !core.oversized.discarding }

    public func seek(offset: Int, line: Int) {
        core.offset = offset
        core.line = line
    }

    public func decode(_ input: UnsafeRawBufferPointer, isFinal: Bool) -> DecodeOutput {
        core.decode(input, isFinal: isFinal, batchRows: max(options.batchRows, 1), maxRecordBytes: max(options.maxRecordBytes, 1))
    }

    public func prepare(sample: UnsafeRawBufferPointer, isWholeInput: Bool) throws -> Int {
        core.deallocate()
        core = NDJSONRowBuilder()
        var parser = NDJSONRowParser()
        defer { parser.deallocate() }
        let n = sample.count
        var dataStart = 0
        var firstKinds: [JSONValueKind] = []
        var sawFloat: [Bool] = []
        var sawBigNumber: [Bool] = []
        /// An integer float64 may not hold (beyond 2^53): with fractions in the same column, a decimal holds both.
        var sawLargeInt: [Bool] = []
        /// Per column: 1 while every string sampled is a timestamp, 2 while every one is a date.
        var temporal: [UInt8] = []
        var decimalScale: [Int] = []
        var lines = 0
        if n > 0, let raw = sample.baseAddress {
            let p = raw.assumingMemoryBound(to: UInt8.self)
            if n >= 3, p[0] == 0xEF, p[1] == 0xBB, p[2] == 0xBF { dataStart = 3 }
            var pos = dataStart
            while pos < n && lines < options.inferRows {
                let lineEnd: Int, next: Int
                if let hit = memchr(p + pos, 0x0A, n - pos) {
                    lineEnd = UnsafePointer<UInt8>(hit.assumingMemoryBound(to: UInt8.self)) - p
                    next = lineEnd + 1
                } else {
                    guard isWholeInput else { break }
                    lineEnd = n
                    next = n
                }
                var contentEnd = lineEnd
                if contentEnd > pos, p[contentEnd - 1] == 0x0D { contentEnd -= 1 }
                defer { pos = next }
                if NDJSONRowBuilder.isBlank(p, pos, contentEnd) { continue }
                lines += 1
                guard parser.parse(p, start: pos, end: contentEnd) == nil else { continue }
                let known = parser.columnCount
                let added = min(parser.pending.count, max(0, NDJSONRowBuilder.maxColumns - known))
                for c in 0..<(known + added) {
                    let slot = parser.slots[c]
                    if c >= known {
                        firstKinds.append(.null)
                        sawFloat.append(false)
                        sawBigNumber.append(false)
                        sawLargeInt.append(false)
                        temporal.append(3)
                        decimalScale.append(0)
                    } else if slot.generation != parser.generation {
                        continue
                    }
                    if slot.kind == .float { sawFloat[c] = true }
                    if slot.kind == .string, temporal[c] != 0 {
                        // Strings that are all timestamps (or dates) make a timestamp (date) column, as in CSV.
                        let base = slot.inScratch ? UnsafePointer(parser.scratch.base) : p
                        let text = UnsafeBufferPointer(start: base + slot.start, count: slot.length)
                        if temporal[c] & 1 != 0, ValueParsing.parseTimestamp(text.baseAddress!, text.count) == nil { temporal[c] &= ~1 }
                        if temporal[c] & 2 != 0, TemporalText.parseDate(text) == nil { temporal[c] &= ~2 }
                    }
                    if slot.kind == .int, !(-(1 << 53)...(1 << 53)).contains(Int64(bitPattern: slot.bits)) { sawLargeInt[c] = true }
                    if slot.kind == .float || slot.kind == .bigNumber {
                        // The decimal scale every number of the column needs, should one be beyond float64.
                        let text = UnsafeBufferPointer(start: p + slot.rawStart, count: slot.rawLength)
                        if slot.kind == .bigNumber { sawBigNumber[c] = true }
                        if case let .decimal(_, scale)? = ExactNumber.decimalType(text) { decimalScale[c] = max(decimalScale[c], scale) }
                    }
                    if firstKinds[c] == .null { firstKinds[c] = slot.kind }
                }
                for k in 0..<added {
                    parser.pending.withKey(k) { parser.keys.append($0.baseAddress!, $0.count) }
                }
                parser.columnCount += added
            }
        }
        core.inferredLines = lines

        let declaredFields = options.columns ?? []
        var seen = Set<String>()
        for field in declaredFields where seen.insert(field.name).inserted {
            core.addColumn(field.name, field.type, origin: .declared, declared: true, lenient: field.type == .string, nulls: 0)
        }
        for c in 0..<parser.columnCount {
            let name = parser.keys.name(c)
            guard seen.insert(name).inserted else { continue }
            var type = NDJSONRowBuilder.inferredType(firstKinds[c])
            if type == .string, firstKinds[c] == .string {
                if temporal[c] & 1 != 0 { type = .timestamp } else if temporal[c] & 2 != 0 { type = .date }
            }
            if type == .int64 && sawFloat[c] { type = .float64 }
            // A number beyond int64 and float64 in the sample: every number of the column as an
            // exact decimal with the largest scale seen.
            if (sawBigNumber[c] && ([.int64, .float64].contains(type) || firstKinds[c] == .bigNumber)) || (type == .float64 && sawLargeInt[c]) {
                type = .decimal(precision: 38, scale: decimalScale[c])
            }
            core.addColumn(name, type, origin: .sample, declared: false, lenient: firstKinds[c] == .null, nulls: 0)
        }
        core.offset = dataStart
        core.line = 1
        return dataStart
    }
}
