import SluiceCore

/// The hot loop of ``CSVDecoder``: delimits records, converts their fields and appends them to
/// the column builders.
///
/// A record is converted in two steps so that a bad one leaves nothing behind: every field is
/// parsed and validated into per-column scratch slots first, and only a record that passed is
/// appended to the builders.
struct CSVRowBuilder {
    var scanner: CSVRecordScanner
    var plan = CSVColumnPlan()
    var builders: [ColumnBuilder] = []
    var kinds: ScratchBuffer<CSVColumnPlan.Kind>
    var precisions: ScratchBuffer<Int>
    var scales: ScratchBuffer<Int>
    /// Per column of the current record: 0 NULL, 1 value.
    var present: ScratchBuffer<UInt8>
    var bits: ScratchBuffer<UInt64>
    var decimals: ScratchBuffer<Int128>
    /// Unescaped quoted fields of the current record.
    var unescaped: ScratchBuffer<UInt8>

    /// Marks a field whose bounds were moved to ``unescaped`` (set on ``CSVRecordScanner/flags``).
    static let inScratchFlag: UInt8 = 4

    var oversized = OversizedRecords()

    /// Absolute offset and line of the next input byte.
    var offset = 0
    var line = 1

    init(options: CSVOptions) {
        scanner = CSVRecordScanner(delimiter: options.delimiter, quote: options.quote)
        kinds = ScratchBuffer(capacity: 1)
        precisions = ScratchBuffer(capacity: 1)
        scales = ScratchBuffer(capacity: 1)
        present = ScratchBuffer(capacity: 1)
        bits = ScratchBuffer(capacity: 1)
        decimals = ScratchBuffer(capacity: 1)
        unescaped = ScratchBuffer(capacity: 4096)
    }

    func deallocate() {
        scanner.deallocate()
        kinds.deallocate()
        precisions.deallocate()
        scales.deallocate()
        present.deallocate()
        bits.deallocate()
        decimals.deallocate()
        unescaped.deallocate()
    }

    mutating func install(_ plan: CSVColumnPlan, batchRows: Int) {
        self.plan = plan
        let n = max(plan.types.count, 1)
        precisions.ensure(n)
        scales.ensure(n)
        kinds.ensure(n)
        present.ensure(n)
        bits.ensure(n)
        decimals.ensure(n)
        for (c, type) in plan.types.enumerated() {
            kinds[c] = ColumnKind(type)
            if case let .decimal(p, s) = type {
                precisions[c] = p
                scales[c] = s
            }
        }
        builders = plan.types.map { ColumnBuilder(type: $0, capacity: min(batchRows, 16_384)) }
    }

    mutating func decode(_ input: UnsafeRawBufferPointer, isFinal: Bool, batchRows: Int, maxRecordBytes: Int) -> DecodeOutput {
        var rejects: [DecodeReject] = []
        var pos = 0
        let n = input.count
        if n > 0, let raw = input.baseAddress {
            let p = raw.assumingMemoryBound(to: UInt8.self)
            let resumed = oversized.resume(p, n, isFinal: isFinal)
            pos = resumed.pos
            if resumed.lineEnded { line += 1 }
            var rows = 0
            var local = builders
            builders = []
            local.withUnsafeMutableBufferPointer { b in
                scanning: while pos < n && rows < batchRows {
                    switch scanner.scan(p, from: pos, end: n, isFinal: isFinal) {
                    case .incomplete:
                        guard let cut = oversized.cut(p, from: pos, end: n, limit: maxRecordBytes) else { break scanning }
                        rejects.append(
                            DecodeReject(
                                line: line, offset: offset + pos, kind: "malformed_row",
                                message: OversizedRecords.message(limit: maxRecordBytes), raw: cut.raw))
                        if cut.lineEnded { line += 1 }
                        pos = cut.next
                    case let .blank(next):
                        line += 1
                        pos = next
                    case let .record(record):
                        if record.next - pos > maxRecordBytes,
                            let cut = oversized.cut(p, from: pos, end: n, limit: maxRecordBytes, isComplete: true)
                        {
                            rejects.append(
                                DecodeReject(
                                    line: line, offset: offset + pos, kind: "malformed_row",
                                    message: OversizedRecords.message(limit: maxRecordBytes), raw: cut.raw))
                            if cut.lineEnded { line += 1 }
                            pos = cut.next
                            continue
                        }
                        if let reject = append(p, start: pos, record, into: b) {
                            rejects.append(reject)
                        } else {
                            rows += 1
                        }
                        line += 1 + record.newlines
                        pos = record.next
                    }
                }
            }
            builders = local
        }
        offset += pos
        let columns = builders.indices.map { builders[$0].finish() }
        return DecodeOutput(batch: RecordBatch(schema: plan.schema, columns: columns), rejects: rejects, consumed: pos)
    }

    /// Converts and appends one record, or returns why it is rejected.
    @inline(__always)
    private mutating func append(
        _ p: UnsafePointer<UInt8>, start: Int, _ record: CSVRecordScanner.Record,
        into b: UnsafeMutableBufferPointer<ColumnBuilder>
    ) -> DecodeReject? {
        let fileColumns = plan.fileColumns
        if record.problem != .none || record.fieldCount != fileColumns {
            return reject(p, start: start, record)
        }
        // Step 1: parse and validate every field into the scratch slots.
        unescaped.ensure(record.contentEnd - start)
        let out = unescaped.base
        var used = 0
        // Plain pointers, so the loops do not reload them from `self` after every store.
        let starts = scanner.starts.base, ends = scanner.ends.base, flags = scanner.flags.base
        let kinds = self.kinds.base, present = self.present.base, bits = self.bits.base, decimals = self.decimals.base
        for c in 0..<fileColumns {
            let flag = flags[c]
            var fp = p + starts[c]
            var len = ends[c] - starts[c]
            if flag & CSVRecordScanner.escapedFlag != 0 {
                len = scanner.unescape(fp, len, into: out + used)
                fp = UnsafePointer(out + used)
                starts[c] = used
                ends[c] = used + len
                flags[c] = flag | Self.inScratchFlag
                used += len
            }
            let kind = kinds[c]
            if len == 0 {
                // Unquoted empty is NULL; quoted empty is "" for string and binary columns.
                present[c] = flag != 0 && (kind == .string || kind == .binary) ? 1 : 0
                continue
            }
            switch kind {
            case .string:
                guard ValueParsing.isValidUTF8(fp, len) else { return reject(p, start: start, record, column: c, invalidUTF8: true) }
            case .binary:
                break
            case .int64:
                guard let v = ValueParsing.parseInt64(fp, len) else { return reject(p, start: start, record, column: c) }
                bits[c] = UInt64(bitPattern: v)
            case .float64:
                guard let v = ValueParsing.parseDouble(fp, len), ExactNumber.isExact(fp, len, v) else {
                    return reject(p, start: start, record, column: c)
                }
                bits[c] = v.bitPattern
            case .bool:
                guard let v = ValueParsing.parseBool(fp, len) else { return reject(p, start: start, record, column: c) }
                bits[c] = v ? 1 : 0
            case .timestamp:
                guard let v = ValueParsing.parseTimestamp(fp, len) else {
                    return reject(p, start: start, record, column: c)
                }
                bits[c] = UInt64(bitPattern: v)
            case .date:
                guard let v = TemporalText.parseDate(UnsafeBufferPointer(start: fp, count: len)) else {
                    return reject(p, start: start, record, column: c)
                }
                bits[c] = UInt64(UInt32(bitPattern: v))
            case .decimal:
                // Plain text first; a number with an exponent or trailing zeros is exact all the same.
                let text = UnsafeBufferPointer(start: fp, count: len)
                guard
                    let v = DecimalText.parse(text, precision: precisions[c], scale: scales[c])
                        ?? ExactNumber.decimal(text, precision: precisions[c], scale: scales[c])
                else {
                    return reject(p, start: start, record, column: c)
                }
                decimals[c] = v
            case .json:
                guard JSONScanner.isValidJSON(fp, len) else { return reject(p, start: start, record, column: c) }
            }
            present[c] = 1
        }
        // Step 2: append.
        for c in 0..<fileColumns {
            let builder = b.baseAddress! + c
            guard present[c] != 0 else {
                builder.pointee.appendNull()
                continue
            }
            switch kinds[c] {
            case .int64, .timestamp:
                builder.pointee.append(Int64(bitPattern: bits[c]))
            case .float64:
                builder.pointee.append(Double(bitPattern: bits[c]))
            case .bool:
                builder.pointee.append(bits[c] != 0)
            case .date:
                builder.pointee.appendDate(days: Int32(bitPattern: UInt32(truncatingIfNeeded: bits[c])))
            case .decimal:
                builder.pointee.appendDecimal(decimals[c])
            case .string, .binary, .json:
                let base = flags[c] & Self.inScratchFlag != 0 ? UnsafePointer(out) : p
                builder.pointee.appendBytes(UnsafeBufferPointer(start: base + starts[c], count: ends[c] - starts[c]))
            }
        }
        for c in fileColumns..<b.count { b[c].appendNull() }
        return nil
    }

    // MARK: Rejects

    private func reject(
        _ p: UnsafePointer<UInt8>, start: Int, _ record: CSVRecordScanner.Record,
        column: Int? = nil, invalidUTF8: Bool = false
    ) -> DecodeReject {
        let raw = Array(UnsafeBufferPointer(start: p + start, count: record.contentEnd - start))
        let kind: String
        let message: String
        switch record.problem {
        case let .unterminatedQuote(field):
            kind = "malformed_row"
            message = "unterminated quoted field in \(describeColumn(field)) at the end of the input"
        case let .textAfterQuote(field):
            kind = "malformed_row"
            message = "unexpected text after the closing quote of \(describeColumn(field))"
        case .none:
            if let column {
                let base = scanner.flags[column] & Self.inScratchFlag != 0 ? UnsafePointer(unescaped.base) : p
                let value = base + scanner.starts[column]
                let len = scanner.ends[column] - scanner.starts[column]
                let name = plan.names[column]
                if invalidUTF8 {
                    kind = "invalid_utf8"
                    message = "column '\(name)' holds invalid UTF-8; declare it as binary under `columns:` to keep raw bytes"
                } else {
                    kind = "type_mismatch"
                    let shown = ValueParsing.preview(value, len)
                    message = "column '\(name)': '\(shown)' is not a valid \(plan.types[column]) (\(plan.typeOrigin(column)))"
                }
            } else {
                kind = "field_count"
                message = "expected \(plan.fileColumns) field\(plan.fileColumns == 1 ? "" : "s"), found \(record.fieldCount)"
            }
        }
        return DecodeReject(line: line, offset: offset + start, kind: kind, message: message, raw: raw)
    }

    private func describeColumn(_ field: Int) -> String {
        field < plan.fileColumns ? "column '\(plan.names[field])'" : "field \(field + 1)"
    }
}
