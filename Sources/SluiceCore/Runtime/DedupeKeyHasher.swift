/// Hashes the dedupe key of each row straight from the column buffers: the bytes hashed are
/// those of ``DedupeKey/encode(_:)`` (so keys stored as text by earlier versions hash alike
/// when converted), built in one reused buffer, with no `String` or ``Value`` per row for
/// string, JSON, binary and integer columns.
struct DedupeKeyHasher {
    let seed: DedupeSeed
    private var scratch: [UInt8] = []

    init(seed: DedupeSeed) {
        self.seed = seed
        scratch.reserveCapacity(256)
    }

    /// The hash of `text` (a key in ``DedupeKey/encode(_:)``'s form).
    func hash(text: String) -> DedupeHash {
        SipHash128.hash(text: text, seed: seed)
    }

    /// The hash of row `row`'s key, over `columns` in key order.
    mutating func hash(_ columns: [Column], row: Int) -> DedupeHash {
        scratch.removeAll(keepingCapacity: true)
        for column in columns {
            append(column, row: row)
        }
        return scratch.withUnsafeBytes { SipHash128.hash($0, seed: seed) }
    }

    /// The hashes of the keys of `rows`, into `out` (row `rows.lowerBound` first). A key of one
    /// integer column, the usual id, is written into a small stack buffer and hashed there, with
    /// no pattern match on the column, retain of its buffer or array append per row; other
    /// keys go row by row.
    mutating func hash(_ columns: [Column], rows: Range<Int>, into out: UnsafeMutablePointer<DedupeHash>) {
        guard columns.count == 1, case let (.int64, .int64(values)) = (columns[0].type, columns[0].storage) else {
            for row in rows { (out + (row - rows.lowerBound)).initialize(to: hash(columns, row: row)) }
            return
        }
        let column = columns[0], seed = seed
        values.withUnsafeBufferPointer { values in
            // The longest text: "v20:-" and 19 digits.
            withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 32) { text in
                let text = text.baseAddress!
                for row in rows {
                    let length = column.isNull(row) ? Self.writeNull(to: text) : Self.writeInteger(values[row], to: text)
                    (out + (row - rows.lowerBound)).initialize(to: SipHash128.hash(UnsafeRawBufferPointer(start: text, count: length), seed: seed))
                }
            }
        }
    }

    /// ``DedupeKey/encode(_:)``'s text of NULL ("n0:") at `text`; returns its length.
    private static func writeNull(to text: UnsafeMutablePointer<UInt8>) -> Int {
        text[0] = UInt8(ascii: "n")
        text[1] = UInt8(ascii: "0")
        text[2] = UInt8(ascii: ":")
        return 3
    }

    /// ``DedupeKey/encode(_:)``'s text of an integer ("v3:-42") at `text`; returns its length.
    private static func writeInteger(_ value: Int64, to text: UnsafeMutablePointer<UInt8>) -> Int {
        let digits = value.magnitude
        text[0] = UInt8(ascii: "v")
        var length = 1 + writeDecimal(UInt64(decimalLength(digits) + (value < 0 ? 1 : 0)), to: text + 1)
        text[length] = UInt8(ascii: ":")
        length += 1
        if value < 0 {
            text[length] = UInt8(ascii: "-")
            length += 1
        }
        return length + writeDecimal(digits, to: text + length)
    }

    /// The decimal digits of `value` at `text`; returns how many.
    private static func writeDecimal(_ value: UInt64, to text: UnsafeMutablePointer<UInt8>) -> Int {
        let length = decimalLength(value)
        var v = value, index = length - 1
        repeat {
            text[index] = UInt8(ascii: "0") + UInt8(v % 10)
            v /= 10
            index -= 1
        } while v > 0
        return length
    }

    private mutating func append(_ column: Column, row: Int) {
        if column.isNull(row) {
            scratch.append(contentsOf: [UInt8(ascii: "n"), UInt8(ascii: "0"), UInt8(ascii: ":")])
            return
        }
        switch (column.type, column.storage) {
        case (.string, .bytes), (.json, .bytes):
            // ASCII straight from the buffer; other text through `String`, as the text form
            // has it (bytes that are not UTF-8 become U+FFFD there).
            let ascii = column.withBytes(at: row) { bytes in
                guard !bytes.contains(where: { $0 >= 0x80 }) else { return false }
                scratch.append(UInt8(ascii: "s"))
                appendDecimal(UInt64(bytes.count))
                scratch.append(UInt8(ascii: ":"))
                scratch.append(contentsOf: bytes)
                return true
            }
            if !ascii { scratch.append(contentsOf: DedupeKey.encode([column.value(at: row)]).utf8) }
        case (.binary, .bytes):
            column.withBytes(at: row) { bytes in
                scratch.append(UInt8(ascii: "x"))
                appendDecimal(UInt64(bytes.count * 2))
                scratch.append(UInt8(ascii: ":"))
                for byte in bytes {
                    scratch.append(Self.hexDigits[Int(byte >> 4)])
                    scratch.append(Self.hexDigits[Int(byte & 15)])
                }
            }
        case let (.int64, .int64(values)):
            let value = values[row]
            let digits = value.magnitude
            let length = Self.decimalLength(digits) + (value < 0 ? 1 : 0)
            scratch.append(UInt8(ascii: "v"))
            appendDecimal(UInt64(length))
            scratch.append(UInt8(ascii: ":"))
            if value < 0 { scratch.append(UInt8(ascii: "-")) }
            appendDecimal(digits)
        default:
            scratch.append(contentsOf: DedupeKey.encode([column.value(at: row)]).utf8)
        }
    }

    private static let hexDigits = Array("0123456789abcdef".utf8)

    private static func decimalLength(_ value: UInt64) -> Int {
        var length = 1, v = value
        while v >= 10 {
            v /= 10
            length += 1
        }
        return length
    }

    private mutating func appendDecimal(_ value: UInt64) {
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 20) { digits in
            let length = Self.writeDecimal(value, to: digits.baseAddress!)
            scratch.append(contentsOf: UnsafeBufferPointer(rebasing: digits[..<length]))
        }
    }
}
