import SluiceCore

/// Encodes batches as newline-delimited JSON: one object per row, keys in schema order.
///
/// - NULL is `null`; bool, int64 as JSON literals and numbers.
/// - float64 in the shortest text that reads back as the same double (integral values keep a
///   `.0`, so they read back as floats); NaN and ±infinity as the strings `"NaN"`,
///   `"Infinity"`, `"-Infinity"`.
/// - decimal as an exact JSON number (`-12.50` for scale 2).
/// - date as `"YYYY-MM-DD"`, timestamp as `"YYYY-MM-DDTHH:MM:SS[.ffffff]Z"`.
/// - string escaped per RFC 8259 (`"`, `\`, and control characters: `\b \f \n \r \t` in
///   their short form, the others as `\u00XX`); non-ASCII UTF-8 is written as is (invalid UTF-8
///   is replaced by U+FFFD); json as its raw text; binary as a base64 string.
///
/// Works column by column: each column's values are rendered into one buffer, then the rows are
/// assembled with the keys by copying.
public struct NDJSONEncoder: Sendable {
    public init() {}

    public func encode(_ batch: RecordBatch, into out: inout [UInt8]) {
        let rows = batch.count
        guard rows > 0 else { return }
        let columnCount = batch.columns.count
        if columnCount == 0 {
            for _ in 0..<rows { out.append(contentsOf: [UInt8(ascii: "{"), UInt8(ascii: "}"), 0x0A]) }
            return
        }
        // Keys with their punctuation: `{"a":` for the first column, `,"b":` for the others.
        var prefixes: [UInt8] = []
        var prefixEnds: [Int] = [0]
        for (c, field) in batch.schema.fields.enumerated() {
            prefixes.append(c == 0 ? UInt8(ascii: "{") : UInt8(ascii: ","))
            JSONText.appendString(Array(field.name.utf8), to: &prefixes)
            prefixes.append(UInt8(ascii: ":"))
            prefixEnds.append(prefixes.count)
        }
        // Every column's values, rendered into one buffer; `ends[c * (rows + 1) + r + 1]` is
        // where value r of column c ends.
        var cells: [UInt8] = []
        var ends: [Int] = []
        ends.reserveCapacity(columnCount * (rows + 1))
        for column in batch.columns {
            precondition(column.count == rows, "column length \(column.count) differs from the batch's \(rows) rows")
            ends.append(cells.count)
            JSONText.render(column, into: &cells, ends: &ends)
        }
        let total = rows * (prefixes.count + 2) + cells.count
        let assembled = [UInt8](unsafeUninitializedCapacity: total) { buffer, count in
            prefixes.withUnsafeBufferPointer { keys in
                prefixEnds.withUnsafeBufferPointer { keyEnds in
                    cells.withUnsafeBufferPointer { values in
                        ends.withUnsafeBufferPointer { valueEnds in
                            var o = buffer.baseAddress!
                            for r in 0..<rows {
                                for c in 0..<columnCount {
                                    let ks = keyEnds[c], ke = keyEnds[c + 1]
                                    o.update(from: keys.baseAddress! + ks, count: ke - ks)
                                    o += ke - ks
                                    let k = c * (rows + 1) + r
                                    let vs = valueEnds[k], ve = valueEnds[k + 1]
                                    o.update(from: values.baseAddress! + vs, count: ve - vs)
                                    o += ve - vs
                                }
                                o[0] = UInt8(ascii: "}")
                                o[1] = 0x0A
                                o += 2
                            }
                            count = o - buffer.baseAddress!
                        }
                    }
                }
            }
        }
        precondition(assembled.count == total)
        if out.isEmpty {
            out = assembled
            return
        }
        out.append(contentsOf: assembled)
    }
}
