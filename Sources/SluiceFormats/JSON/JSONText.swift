import SluiceCore

/// Writing JSON text for column values (used by ``NDJSONEncoder``).
enum JSONText {
    /// Appends each value of `column` to `out` and its end offset to `ends`.
    static func render(_ column: Column, into out: inout [UInt8], ends: inout [Int]) {
        let rows = column.count
        let validity = column.validity?.words ?? []
        let hasNulls = column.nullCount > 0
        out.reserveCapacity(out.count + rows * 8)
        validity.withUnsafeBufferPointer { words in
            @inline(__always) func isNull(_ r: Int) -> Bool {
                hasNulls && words[r >> 6] & (1 << UInt64(r & 63)) == 0
            }
            @inline(__always) func appendNull() { appendLiteral("null", to: &out) }
            switch column.storage {
            case let .bool(values):
                for r in 0..<rows {
                    if isNull(r) {
                        appendNull()
                    } else {
                        appendLiteral(values[r] ? "true" : "false", to: &out)
                    }
                    ends.append(out.count)
                }
            case let .int64(values):
                let timestamp = column.type == .timestamp
                for r in 0..<rows {
                    if isNull(r) {
                        appendNull()
                    } else if timestamp {
                        out.append(UInt8(ascii: "\""))
                        TemporalText.appendTimestamp(micros: values[r], to: &out)
                        out.append(UInt8(ascii: "\""))
                    } else {
                        appendInt(values[r], to: &out)
                    }
                    ends.append(out.count)
                }
            case let .float64(values):
                var sink = ByteSink()
                swap(&sink.bytes, &out)
                for r in 0..<rows {
                    if isNull(r) {
                        appendLiteral("null", to: &sink.bytes)
                    } else {
                        let v = values[r]
                        if v.isFinite {
                            v.write(to: &sink)
                        } else if v.isNaN {
                            appendLiteral("\"NaN\"", to: &sink.bytes)
                        } else {
                            appendLiteral(v < 0 ? "\"-Infinity\"" : "\"Infinity\"", to: &sink.bytes)
                        }
                    }
                    ends.append(sink.bytes.count)
                }
                swap(&sink.bytes, &out)
            case let .decimal(values):
                let scale = if case let .decimal(_, s) = column.type { s } else { 0 }
                for r in 0..<rows {
                    if isNull(r) { appendNull() } else { appendDecimal(values[r], scale: scale, to: &out) }
                    ends.append(out.count)
                }
            case let .int32(values):
                for r in 0..<rows {
                    if isNull(r) {
                        appendNull()
                    } else {
                        out.append(UInt8(ascii: "\""))
                        TemporalText.appendDate(days: Int(values[r]), to: &out)
                        out.append(UInt8(ascii: "\""))
                    }
                    ends.append(out.count)
                }
            case let .bytes(offsets, data):
                let type = column.type
                data.withUnsafeBufferPointer { d in
                    let base = d.baseAddress ?? UnsafePointer(bitPattern: 1)!
                    for r in 0..<rows {
                        let s = Int(offsets[r]), e = Int(offsets[r + 1])
                        if isNull(r) {
                            appendNull()
                        } else if type == .json {
                            if e > s {
                                out.append(contentsOf: UnsafeBufferPointer(start: base + s, count: e - s))
                            } else {
                                appendNull()
                            }
                        } else if type == .binary {
                            out.append(UInt8(ascii: "\""))
                            Base64.encode(base + s, e - s, into: &out)
                            out.append(UInt8(ascii: "\""))
                        } else {
                            appendString(base + s, e - s, to: &out)
                        }
                        ends.append(out.count)
                    }
                }
            }
        }
    }

    /// Collects the text of `Double.write(to:)` as bytes; the standard library hands ASCII
    /// output to `_writeASCII` without creating a String.
    struct ByteSink: TextOutputStream {
        var bytes: [UInt8] = []
        mutating func write(_ string: String) { bytes.append(contentsOf: string.utf8) }
        mutating func _writeASCII(_ buffer: UnsafeBufferPointer<UInt8>) { bytes.append(contentsOf: buffer) }
    }

    @inline(__always)
    static func appendLiteral(_ text: StaticString, to out: inout [UInt8]) {
        out.append(contentsOf: UnsafeBufferPointer(start: text.utf8Start, count: text.utf8CodeUnitCount))
    }

    // MARK: Numbers

    static func appendInt(_ v: Int64, to out: inout [UInt8]) {
        var magnitude = v.magnitude
        if v < 0 { out.append(UInt8(ascii: "-")) }
        appendDigits(&magnitude, to: &out)
    }

    @inline(__always)
    static func appendDigits(_ magnitude: inout UInt64, to out: inout [UInt8]) {
        if magnitude < 10 {
            out.append(UInt8(truncatingIfNeeded: magnitude) &+ 48)
            return
        }
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 20) { buffer in
            var i = 20
            repeat {
                i -= 1
                buffer[i] = UInt8(truncatingIfNeeded: magnitude % 10) &+ 48
                magnitude /= 10
            } while magnitude > 0
            out.append(contentsOf: UnsafeBufferPointer(rebasing: buffer[i..<20]))
        }
    }

    /// Appends an unscaled decimal as an exact JSON number with `scale` fraction digits.
    static func appendDecimal(_ unscaled: Int128, scale: Int, to out: inout [UInt8]) {
        if unscaled < 0 { out.append(UInt8(ascii: "-")) }
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 48) { buffer in
            // Digits of the magnitude, least significant first, 19 at a time.
            var m = unscaled.magnitude
            var count = 0
            let chunk: UInt128 = 10_000_000_000_000_000_000
            while true {
                var part = UInt64(truncatingIfNeeded: m % chunk)
                m /= chunk
                if m == 0 {
                    repeat {
                        buffer[count] = UInt8(truncatingIfNeeded: part % 10) &+ 48
                        part /= 10
                        count += 1
                    } while part > 0
                    break
                }
                for _ in 0..<19 {
                    buffer[count] = UInt8(truncatingIfNeeded: part % 10) &+ 48
                    part /= 10
                    count += 1
                }
            }
            while count <= scale {
                buffer[count] = UInt8(ascii: "0")
                count += 1
            }
            for k in stride(from: count - 1, through: 0, by: -1) {
                out.append(buffer[k])
                if k == scale && scale > 0 { out.append(UInt8(ascii: ".")) }
            }
        }
    }

    // MARK: Strings

    static let hexDigits: [UInt8] = Array("0123456789abcdef".utf8)

    static func appendString(_ bytes: [UInt8], to out: inout [UInt8]) {
        bytes.withUnsafeBufferPointer { b in
            appendString(b.baseAddress ?? UnsafePointer(bitPattern: 1)!, b.count, to: &out)
        }
    }

    /// Appends `p[0..<n]` as a quoted, escaped JSON string.
    static func appendString(_ p: UnsafePointer<UInt8>, _ n: Int, to out: inout [UInt8]) {
        guard ValueParsing.isValidUTF8(p, n) else {
            // Replace invalid sequences with U+FFFD so the output stays valid JSON.
            let repaired = Array(String(decoding: UnsafeBufferPointer(start: p, count: n), as: UTF8.self).utf8)
            repaired.withUnsafeBufferPointer { appendString($0.baseAddress!, $0.count, to: &out) }
            return
        }
        out.append(UInt8(ascii: "\""))
        var runStart = 0
        var i = 0
        while i < n {
            let c = p[i]
            if c >= 0x20 && c != UInt8(ascii: "\"") && c != UInt8(ascii: "\\") {
                i += 1
                continue
            }
            if i > runStart { out.append(contentsOf: UnsafeBufferPointer(start: p + runStart, count: i - runStart)) }
            out.append(UInt8(ascii: "\\"))
            switch c {
            case UInt8(ascii: "\""), UInt8(ascii: "\\"): out.append(c)
            case 0x08: out.append(UInt8(ascii: "b"))
            case 0x0C: out.append(UInt8(ascii: "f"))
            case 0x0A: out.append(UInt8(ascii: "n"))
            case 0x0D: out.append(UInt8(ascii: "r"))
            case 0x09: out.append(UInt8(ascii: "t"))
            default:
                out.append(contentsOf: [
                    UInt8(ascii: "u"), UInt8(ascii: "0"), UInt8(ascii: "0"),
                    hexDigits[Int(c >> 4)], hexDigits[Int(c & 15)],
                ])
            }
            i += 1
            runStart = i
        }
        if n > runStart { out.append(contentsOf: UnsafeBufferPointer(start: p + runStart, count: n - runStart)) }
        out.append(UInt8(ascii: "\""))
    }
}
