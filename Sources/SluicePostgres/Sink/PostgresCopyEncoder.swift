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

    /// The column type Sluice creates for a field as `format_type` spells it (how an existing
    /// table's columns are read back).
    static func formatType(_ type: DataType) -> String {
        switch type {
        case .timestamp: "timestamp with time zone"
        default: sqlType(type)
        }
    }

    /// Whether a column of `sqlType` (as created, or as `format_type` spells it) takes values
    /// of `type` in their binary form as they are: a COPY straight into it casts nothing.
    static func holdsExactly(_ type: DataType, sqlType: String?) -> Bool {
        sqlType == formatType(type) || sqlType == self.sqlType(type)
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

    /// Encodes the rows of `batch` but `skipped`, each prefixed with its row number as int4
    /// (for the stage) unless `numbered` is false. `jsonb`: json columns in jsonb's binary
    /// form (a version byte before the text) rather than json's.
    static func encode(
        _ batch: RecordBatch, rows: Range<Int>? = nil, skipping skipped: Set<Int>, numbered: Bool = true, jsonb: Bool = false, into out: inout [UInt8]
    ) {
        let columns = batch.columns
        let fieldCount = Int16(columns.count + (numbered ? 1 : 0))
        for row in rows ?? 0..<batch.count where !skipped.contains(row) {
            append(fieldCount, &out)
            if numbered {
                append(Int32(4), &out)
                append(Int32(row), &out)
            }
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
                    if jsonb && column.type == .json {
                        append(Int32(end - start + 1), &out)
                        out.append(1)  // jsonb's binary format version
                    } else {
                        append(Int32(end - start), &out)
                    }
                    out.append(contentsOf: data[start..<end])
                }
            }
        }
    }

    /// The whole COPY stream of `batch` (header, rows, trailer) handed to `send` in pieces of
    /// about a megabyte as they are encoded, so the server parses one piece while the next is
    /// encoded instead of waiting for the whole batch.
    static func stream(
        _ batch: RecordBatch, skipping skipped: Set<Int>, numbered: Bool = true, jsonb: Bool = false,
        send: (UnsafeRawBufferPointer) throws -> Void
    ) throws {
        let rowsPerPiece = max(1, (1 << 20) / max(1, batch.byteSize / max(1, batch.count) + 4 * batch.columns.count + 6))
        var buffer = header
        buffer.reserveCapacity(1 << 21)
        for start in stride(from: 0, to: batch.count, by: rowsPerPiece) {
            encode(batch, rows: start..<min(start + rowsPerPiece, batch.count), skipping: skipped, numbered: numbered, jsonb: jsonb, into: &buffer)
            try buffer.withUnsafeBytes { try send($0) }
            buffer.removeAll(keepingCapacity: true)
        }
        buffer += trailer
        try buffer.withUnsafeBytes { try send($0) }
    }

    @inline(__always) static func append<T: FixedWidthInteger>(_ v: T, _ out: inout [UInt8]) {
        withUnsafeBytes(of: v.bigEndian) { out.append(contentsOf: $0) }
    }

    /// numeric's binary form: ndigits, weight, sign, dscale, then base-10000 digits. The
    /// unscaled value is multiplied by 10^(4 - scale % 4) so its base-10000 digits line up with
    /// the decimal point, then split by repeated division (no text on the way).
    static func appendNumeric(_ unscaled: Int128, scale: Int, _ out: inout [UInt8]) {
        let negative = unscaled < 0
        var magnitude = unscaled.magnitude
        // Fraction digits padded up to whole groups of four.
        let pad = (4 - scale % 4) % 4
        let fractionGroups = (scale + pad) / 4
        var groups: [Int16] = []
        groups.reserveCapacity(12)
        if magnitude != 0 {
            var pow: UInt128 = 1
            for _ in 0..<pad { pow *= 10 }
            // Up to 38 digits times up to 1000 can pass 2^128: those few values go through text.
            let (scaled, overflow) = magnitude.multipliedReportingOverflow(by: pow)
            if overflow {
                appendNumericText(unscaled, scale: scale, &out)
                return
            }
            magnitude = scaled
            while magnitude != 0 {
                groups.append(Int16(magnitude % 10_000))
                magnitude /= 10_000
            }
            groups.reverse()
        }
        // weight: base-10000 exponent of the first group.
        var weight = groups.count - fractionGroups - 1
        while let first = groups.first, first == 0 {
            groups.removeFirst()
            weight -= 1
        }
        appendNumericGroups(groups, weight: weight, negative: negative, scale: scale, &out)
    }

    /// numeric's binary form from base-10000 `groups` (most significant first, leading zero
    /// groups already dropped) whose first has exponent `weight`.
    static func appendNumericGroups(_ groups: [Int16], weight: Int, negative: Bool, scale: Int, _ out: inout [UInt8]) {
        var groups = groups
        var weight = weight
        while let last = groups.last, last == 0 { groups.removeLast() }
        if groups.isEmpty { weight = 0 }
        append(Int32(8 + 2 * groups.count), &out)
        append(Int16(groups.count), &out)
        append(Int16(weight), &out)
        append(UInt16(negative && !groups.isEmpty ? 0x4000 : 0), &out)
        append(Int16(scale), &out)
        for g in groups { append(g, &out) }
    }

    /// ``appendNumeric(_:scale:_:)`` through the value's digits as text (for the few values
    /// too large to scale within 128 bits).
    static func appendNumericText(_ unscaled: Int128, scale: Int, _ out: inout [UInt8]) {
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
        appendNumericGroups(groups, weight: weight, negative: negative, scale: scale, &out)
    }
}
