#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

/// Splits CSV input into records and fields (RFC 4180), without copying or allocating.
///
/// A record ends at an LF outside quotes; a CR right before it belongs to the terminator. A lone
/// CR outside quotes is data. Inside quotes, CR, LF and the delimiter are data and `""` is a quote.
/// Field bounds are left in ``starts``/``ends``/``flags``; quoted fields exclude their quotes
/// and keep their `""` escapes (see ``unescape(_:_:into:)``).
struct CSVRecordScanner {
    static let quotedFlag: UInt8 = 1
    static let escapedFlag: UInt8 = 2
    static let lf = UInt8(ascii: "\n")
    static let cr = UInt8(ascii: "\r")
    static let ones: UInt64 = 0x0101_0101_0101_0101
    static let highs: UInt64 = 0x8080_8080_8080_8080
    static let lfWord: UInt64 = 0x0A0A_0A0A_0A0A_0A0A

    /// What is wrong with a record that could still be delimited.
    enum Problem: Equatable {
        case none
        /// Input ended inside a quoted field (only with `isFinal`).
        case unterminatedQuote(field: Int)
        /// Text follows the closing quote of a field.
        case textAfterQuote(field: Int)
    }

    struct Record {
        var fieldCount: Int
        /// End of the record's content (before its terminator).
        var contentEnd: Int
        /// Where the next record starts.
        var next: Int
        /// LFs inside quoted fields (the record spans `1 + newlines` lines).
        var newlines: Int
        var problem: Problem
    }

    enum Result {
        /// More input is needed to delimit the record.
        case incomplete
        /// An empty line (LF or CRLF).
        case blank(next: Int)
        case record(Record)
    }

    let delimiter: UInt8
    let quote: UInt8
    var starts: ScratchBuffer<Int>
    var ends: ScratchBuffer<Int>
    var flags: ScratchBuffer<UInt8>

    init(delimiter: UInt8, quote: UInt8, capacity: Int = 64) {
        self.delimiter = delimiter
        self.quote = quote
        starts = ScratchBuffer(capacity: capacity)
        ends = ScratchBuffer(capacity: capacity)
        flags = ScratchBuffer(capacity: capacity)
    }

    func deallocate() {
        starts.deallocate()
        ends.deallocate()
        flags.deallocate()
    }

    @inline(__always)
    private mutating func store(_ f: Int, _ start: Int, _ end: Int, _ flag: UInt8) {
        if f >= starts.capacity {
            starts.ensure(f + 1, keeping: f)
            ends.ensure(f + 1, keeping: f)
            flags.ensure(f + 1, keeping: f)
        }
        starts[f] = start
        ends[f] = end
        flags[f] = flag
    }

    /// After a record with quotes, this many records skip the unquoted fast path.
    private var skipFastPath = 0

    /// Scans the record starting at `start`. Without `isFinal`, a record is only returned once its
    /// terminator is in the input; with it, the end of input terminates the last record.
    mutating func scan(_ p: UnsafePointer<UInt8>, from start: Int, end: Int, isFinal: Bool) -> Result {
        if skipFastPath > 0 {
            skipFastPath -= 1
        } else if let record = scanUnquoted(p, from: start, end: end) {
            return .record(record)
        }
        return scanAny(p, from: start, end: end, isFinal: isFinal)
    }

    /// Bytes of `x` equal to the byte repeated in `pattern`, as the high bit of each byte (exact,
    /// unlike the borrow-based zero-byte test).
    @inline(__always)
    static func matches(_ x: UInt64, _ pattern: UInt64) -> UInt64 {
        let t = x ^ pattern
        let low: UInt64 = 0x7F7F_7F7F_7F7F_7F7F
        return ~(((t & low) &+ low) | t) & highs
    }

    /// The common case: a record of unquoted fields ending in LF or CRLF, found in one pass over
    /// 8-byte words. Nil when a field starts with a quote, the line is blank, or the terminator is
    /// not within the input's whole words; ``scanAny(_:from:end:isFinal:)`` handles those.
    @inline(__always)
    private mutating func scanUnquoted(_ p: UnsafePointer<UInt8>, from start: Int, end: Int) -> Record? {
        guard start < end else { return nil }
        let first = p[start]
        if first == quote || first == Self.lf || first == Self.cr {
            if first == quote { skipFastPath = 32 }
            return nil
        }
        let delimiterWord = Self.ones &* UInt64(delimiter)
        var fieldStart = start
        var f = 0
        var w = start
        while w + 8 <= end {
            let x = UnsafeRawPointer(p + w).loadUnaligned(as: UInt64.self)
            var hits = Self.matches(x, delimiterWord) | Self.matches(x, Self.lfWord)
            while hits != 0 {
                let at = w + hits.trailingZeroBitCount &>> 3
                hits &= hits &- 1
                if p[at] == Self.lf {
                    var e = at
                    if e > fieldStart, p[e - 1] == Self.cr { e -= 1 }
                    store(f, fieldStart, e, 0)
                    return Record(fieldCount: f + 1, contentEnd: e, next: at + 1, newlines: 0, problem: .none)
                }
                store(f, fieldStart, at, 0)
                f += 1
                fieldStart = at + 1
                guard fieldStart < end else { return nil }
                if p[fieldStart] == quote {
                    skipFastPath = 32
                    return nil
                }
            }
            w += 8
        }
        return nil
    }

    /// Scans any record (quoted fields, the end of input).
    private mutating func scanAny(_ p: UnsafePointer<UInt8>, from start: Int, end: Int, isFinal: Bool) -> Result {
        let lf = Self.lf, cr = Self.cr, delimiter = self.delimiter, quote = self.quote
        let delimiterWord = Self.ones &* UInt64(delimiter)
        var i = start
        if i < end {
            let c = p[i]
            if c == lf { return .blank(next: i + 1) }
            if c == cr {
                if i + 1 < end {
                    if p[i + 1] == lf { return .blank(next: i + 2) }
                } else {
                    return isFinal ? .blank(next: end) : .incomplete
                }
            }
        } else {
            return .incomplete
        }
        var f = 0
        var newlines = 0
        var problem = Problem.none
        while true {
            var fieldStart = i
            var flag: UInt8 = 0
            if i < end && p[i] == quote {
                // Quoted field: find the closing quote, skipping "" escapes.
                fieldStart = i + 1
                flag = Self.quotedFlag
                var j = fieldStart
                var closing = -1
                while true {
                    guard let hit = memchr(p + j, Int32(quote), end - j) else { break }
                    let q = UnsafePointer<UInt8>(hit.assumingMemoryBound(to: UInt8.self)) - p
                    newlines &+= Self.countLF(p, j, q)
                    if q + 1 < end {
                        if p[q + 1] == quote {
                            flag |= Self.escapedFlag
                            j = q + 2
                            continue
                        }
                    } else if !isFinal {
                        return .incomplete
                    }
                    closing = q
                    break
                }
                if closing < 0 {
                    guard isFinal else { return .incomplete }
                    newlines &+= Self.countLF(p, j, end)
                    store(f, fieldStart, end, flag)
                    var contentEnd = end
                    if contentEnd > start, p[contentEnd - 1] == lf { contentEnd -= 1 }
                    if contentEnd > start, p[contentEnd - 1] == cr { contentEnd -= 1 }
                    return .record(
                        Record(
                            fieldCount: f + 1, contentEnd: contentEnd, next: end,
                            newlines: newlines, problem: .unterminatedQuote(field: f)))
                }
                i = closing + 1
                if i == end {  // isFinal
                    store(f, fieldStart, closing, flag)
                    return .record(Record(fieldCount: f + 1, contentEnd: end, next: end, newlines: newlines, problem: problem))
                }
                let c = p[i]
                if c == delimiter {
                    store(f, fieldStart, closing, flag)
                    f += 1
                    i += 1
                    continue
                }
                if c == lf {
                    store(f, fieldStart, closing, flag)
                    return .record(Record(fieldCount: f + 1, contentEnd: i, next: i + 1, newlines: newlines, problem: problem))
                }
                if c == cr {
                    if i + 1 < end {
                        if p[i + 1] == lf {
                            store(f, fieldStart, closing, flag)
                            return .record(Record(fieldCount: f + 1, contentEnd: i, next: i + 2, newlines: newlines, problem: problem))
                        }
                    } else if isFinal {
                        store(f, fieldStart, closing, flag)
                        return .record(Record(fieldCount: f + 1, contentEnd: i, next: end, newlines: newlines, problem: problem))
                    } else {
                        return .incomplete
                    }
                }
                // Text after the closing quote: the record is malformed; find where the field ends.
                if problem == .none { problem = .textAfterQuote(field: f) }
            }
            // Unquoted field (or the rest of a malformed quoted one): up to the delimiter or LF.
            var j = i
            scanning: do {
                // Eight bytes at a time: the first delimiter or LF byte of a word is found exactly
                // (the zero-byte test only errs on bytes above a true match).
                while j + 8 <= end {
                    let x = UnsafeRawPointer(p + j).loadUnaligned(as: UInt64.self)
                    let d = x ^ delimiterWord, l = x ^ Self.lfWord
                    let hits = (((d &- Self.ones) & ~d) | ((l &- Self.ones) & ~l)) & Self.highs
                    if hits != 0 {
                        j += hits.trailingZeroBitCount &>> 3
                        break scanning
                    }
                    j += 8
                }
                while j < end {
                    let c = p[j]
                    if c == delimiter || c == lf { break }
                    j += 1
                }
            }
            if j == end {
                guard isFinal else { return .incomplete }
                var e = end
                if e > i, p[e - 1] == cr { e -= 1 }
                store(f, fieldStart, e, flag)
                return .record(Record(fieldCount: f + 1, contentEnd: e, next: end, newlines: newlines, problem: problem))
            }
            if p[j] == delimiter {
                store(f, fieldStart, j, flag)
                f += 1
                i = j + 1
                continue
            }
            var e = j
            if e > i, p[e - 1] == cr { e -= 1 }
            store(f, fieldStart, e, flag)
            return .record(Record(fieldCount: f + 1, contentEnd: e, next: j + 1, newlines: newlines, problem: problem))
        }
    }

    @inline(__always)
    static func countLF(_ p: UnsafePointer<UInt8>, _ from: Int, _ to: Int) -> Int {
        var n = 0
        var k = from
        while k < to {
            if p[k] == lf { n &+= 1 }
            k += 1
        }
        return n
    }

    /// Copies a quoted field's content into `out`, turning each `""` into `"`. Returns the length.
    @inline(__always)
    func unescape(_ p: UnsafePointer<UInt8>, _ n: Int, into out: UnsafeMutablePointer<UInt8>) -> Int {
        var i = 0, o = 0
        while i < n {
            let c = p[i]
            out[o] = c
            o += 1
            i += c == quote ? 2 : 1
        }
        return o
    }
}
