import SluiceCore

/// PostgreSQL types for Sluice types, and the binary `COPY … FROM STDIN (FORMAT binary)` encoding
/// of record batches in exactly those types.
enum PostgresCopyEncoder {
    /// The column type Sluice creates for a field (and stages values in).
    static func sqlType(_ type: DataType) -> String {
        switch type {
        case .bool: "boolean"
        case .int64: "bigint"
        case .float64: "double precision"
        case let .decimal(p, s): "numeric(\(p),\(s))"
        case .string: "text"
        case .binary: "bytea"
        case .date: "date"
        case .timestamp: "timestamptz"
        case .json: "jsonb"
        }
    }

    /// The stage column type: like ``sqlType(_:)`` but `json` (validated text, no binary jsonb form needed).
    static func stageType(_ type: DataType) -> String {
        type == .json ? "json" : sqlType(type)
    }

    /// The Sluice type a PostgreSQL column type (by `format_type`) holds, when it is one Sluice writes.
    static func sluiceType(sqlType t: String) -> DataType? {
        switch t {
        case "boolean": return .bool
        case "bigint", "integer", "smallint": return .int64
        case "double precision", "real": return .float64
        case "text", "character varying", "character": return .string
        case "bytea": return .binary
        case "date": return .date
        case "timestamp with time zone", "timestamp without time zone": return .timestamp
        case "jsonb", "json": return .json
        default:
            if t.hasPrefix("numeric(") { return DataType(parsing: t.replacingOccurrences(of: "numeric", with: "decimal")) }
            if t.hasPrefix("character varying") || t.hasPrefix("character(") { return .string }
            return nil
        }
    }

    static let header: [UInt8] = Array("PGCOPY\n".utf8) + [0xFF, 0x0D, 0x0A, 0x00] + [0, 0, 0, 0] + [0, 0, 0, 0]
    static let trailer: [UInt8] = [0xFF, 0xFF]

    /// Rows the stage cannot hold: text containing a NUL byte (PostgreSQL text cannot store one).
    static func unstorableRows(_ batch: RecordBatch) -> [RowFailure] {
        var failures: [RowFailure] = []
        for (index, column) in batch.columns.enumerated() where column.type == .string || column.type == .json {
            guard case let .bytes(offsets, data) = column.storage, data.contains(0) else { continue }
            for row in 0..<column.count where !column.isNull(row) {
                if data[Int(offsets[row])..<Int(offsets[row + 1])].contains(0) {
                    failures.append(
                        RowFailure(
                            row: row,
                            error: SluiceError(
                                .schemaViolation,
                                "column '\(batch.schema.fields[index].name)' contains a NUL byte, which PostgreSQL text cannot store")))
                }
            }
        }
        return failures
    }

    /// Encodes rows `rows` of `batch` (all when nil), each prefixed with its row number as int4.
    static func encode(_ batch: RecordBatch, skipping skipped: Set<Int>, into out: inout [UInt8]) {
        let columns = batch.columns
        let fieldCount = Int16(columns.count + 1)
        for row in 0..<batch.count where !skipped.contains(row) {
            append(fieldCount, &out)
            append(Int32(4), &out)
            append(Int32(row), &out)
            for column in columns {
                if column.isNull(row) {
                    append(Int32(-1), &out)
                    continue
                }
                switch column.storage {
                case let .bool(v):
                    append(Int32(1), &out)
                    out.append(v[row] ? 1 : 0)
                case let .int64(v):
                    append(Int32(8), &out)
                    let value = column.type == .timestamp ? v[row] &- BinaryValue.epochMicros : v[row]
                    append(value, &out)
                case let .float64(v):
                    append(Int32(8), &out)
                    append(Int64(bitPattern: v[row].bitPattern), &out)
                case let .int32(v):
                    append(Int32(4), &out)
                    append(v[row] &- BinaryValue.epochDays, &out)
                case let .decimal(v):
                    guard case let .decimal(_, scale) = column.type else { continue }
                    appendNumeric(v[row], scale: scale, &out)
                case let .bytes(offsets, data):
                    let start = Int(offsets[row]), end = Int(offsets[row + 1])
                    append(Int32(end - start), &out)
                    out.append(contentsOf: data[start..<end])
                }
            }
        }
    }

    @inline(__always) static func append<T: FixedWidthInteger>(_ v: T, _ out: inout [UInt8]) {
        withUnsafeBytes(of: v.bigEndian) { out.append(contentsOf: $0) }
    }

    /// numeric's binary form: ndigits, weight, sign, dscale, then base-10000 digits.
    static func appendNumeric(_ unscaled: Int128, scale: Int, _ out: inout [UInt8]) {
        let negative = unscaled < 0
        var digits = Array(String(unscaled.magnitude).utf8).map { Int16($0 - 48) }
        if digits.count <= scale { digits = Array(repeating: 0, count: scale - digits.count + 1) + digits }
        var integer = Array(digits[..<(digits.count - scale)])
        var fraction = Array(digits[(digits.count - scale)...])
        while integer.count % 4 != 0 { integer.insert(0, at: 0) }
        while fraction.count % 4 != 0 { fraction.append(0) }
        let all = integer + fraction
        var groups: [Int16] = stride(from: 0, to: all.count, by: 4).map { i in
            all[i] * 1000 + all[i + 1] * 100 + all[i + 2] * 10 + all[i + 3]
        }
        var weight = integer.count / 4 - 1
        while let first = groups.first, first == 0 { groups.removeFirst(); weight -= 1 }
        while let last = groups.last, last == 0 { groups.removeLast() }
        if groups.isEmpty { weight = 0 }
        append(Int32(8 + 2 * groups.count), &out)
        append(Int16(groups.count), &out)
        append(Int16(weight), &out)
        append(UInt16(negative && !groups.isEmpty ? 0x4000 : 0), &out)
        append(Int16(scale), &out)
        for g in groups { append(g, &out) }
    }
}
