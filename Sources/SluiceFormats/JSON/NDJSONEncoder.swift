import SluiceCore

/// Encodes batches as newline-delimited JSON: one object per row, keys in schema order.
///
/// - NULL: with ``Nulls/omit`` the key is left out of the row's object (a row whose values are
///   all NULL is `{}`); with ``Nulls/write`` it is written as `null`. A batch has one NULL:
///   a field a record sent as `null` and a field it did not send decode alike, so neither form
///   loses anything the batch holds, and reading either back gives the same batch.
/// - bool, int64 as JSON literals and numbers.
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
    /// How a NULL value is written.
    public enum Nulls: String, Sendable {
        /// The key is left out (the files' default: a wide, sparse schema costs nothing per row).
        case omit
        /// The key is written with `null` (every row has every key of the batch's schema).
        case write
    }

    public var nulls: Nulls

    public init(nulls: Nulls = .write) {
        self.nulls = nulls
    }

    public func encode(_ batch: RecordBatch, into out: inout [UInt8]) {
        let rows = batch.count
        guard rows > 0 else { return }
        let columnCount = batch.columns.count
        if columnCount == 0 {
            for _ in 0..<rows { out.append(contentsOf: [UInt8(ascii: "{"), UInt8(ascii: "}"), 0x0A]) }
            return
        }
        // Keys with their colon: `"a":`; the `{` or `,` before each is written with the row.
        var prefixes: [UInt8] = []
        var prefixEnds: [Int] = [0]
        for field in batch.schema.fields {
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
        // Columns that may skip a value: those with nulls, when nulls are omitted.
        let validity: [ValidityBitmap?] = nulls == .omit ? batch.columns.map { $0.nullCount > 0 ? $0.validity : nil } : []
        let skips = !validity.isEmpty && validity.contains { $0 != nil }
        // At most: every key with its `{` or `,`, every value, and `}\n` per row.
        let capacity = rows * (prefixes.count + columnCount + 2) + cells.count
        let assembled = [UInt8](unsafeUninitializedCapacity: capacity) { buffer, count in
            prefixes.withUnsafeBufferPointer { keys in
                prefixEnds.withUnsafeBufferPointer { keyEnds in
                    cells.withUnsafeBufferPointer { values in
                        ends.withUnsafeBufferPointer { valueEnds in
                            var o = buffer.baseAddress!
                            for r in 0..<rows {
                                var separator = UInt8(ascii: "{")
                                for c in 0..<columnCount {
                                    if skips, validity[c]?[r] == false { continue }
                                    o[0] = separator
                                    o += 1
                                    separator = UInt8(ascii: ",")
                                    let ks = keyEnds[c], ke = keyEnds[c + 1]
                                    o.update(from: keys.baseAddress! + ks, count: ke - ks)
                                    o += ke - ks
                                    let k = c * (rows + 1) + r
                                    let vs = valueEnds[k], ve = valueEnds[k + 1]
                                    o.update(from: values.baseAddress! + vs, count: ve - vs)
                                    o += ve - vs
                                }
                                if separator == UInt8(ascii: "{") {
                                    o[0] = separator
                                    o += 1
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
        precondition(assembled.count <= capacity)
        if out.isEmpty {
            out = assembled
            return
        }
        out.append(contentsOf: assembled)
    }
}
