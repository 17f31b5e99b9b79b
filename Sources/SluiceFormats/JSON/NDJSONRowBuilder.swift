#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif
import SluiceCore

/// The hot loop of ``NDJSONDecoder``: splits lines, parses them into slots
/// (``NDJSONRowParser``), checks each value against its column and appends the row.
///
/// A line is appended only once all its values passed, so a rejected line leaves nothing behind
/// (nor a widened column or a new column).
struct NDJSONRowBuilder {
    /// Where a column's type comes from, for reject messages.
    enum Origin {
        case declared
        case sample
        case firstValue(line: Int)
    }

    /// Keys beyond this many columns reject their line (a map with arbitrary keys would otherwise
    /// grow the schema without bound).
    static let maxColumns = 10_000

    var parser = NDJSONRowParser()
    var names: [String] = []
    var types: [DataType] = []
    var kinds: [ColumnKind] = []
    var origins: [Origin] = []
    /// Declared columns never widen.
    var declared: [Bool] = []
    /// String columns that take any value (non-strings as their JSON text): declared string
    /// columns and columns that held only nulls when their type was chosen.
    var lenient: [Bool] = []
    var precisions: [Int] = []
    var scales: [Int] = []
    var builders: [ColumnBuilder] = []
    var batchCount = 0
    var inferredLines = 0

    /// Per-line conversion results.
    var decimals: ScratchBuffer<Int128>
    var binary: ScratchBuffer<UInt8>
    var widen: [Int] = []

    var oversized = OversizedRecords()
    var offset = 0
    var line = 1

    init() {
        decimals = ScratchBuffer(capacity: 64)
        binary = ScratchBuffer(capacity: 1024)
    }

    func deallocate() {
        parser.deallocate()
        decimals.deallocate()
        binary.deallocate()
    }

    var schema: Schema { Schema(zip(names, types).map { Field($0.0, $0.1) }) }

    mutating func addColumn(_ name: String, _ type: DataType, origin: Origin, declared: Bool, lenient: Bool, nulls: Int) {
        parser.addColumn(name)
        names.append(name)
        types.append(type)
        kinds.append(ColumnKind(type))
        origins.append(origin)
        self.declared.append(declared)
        self.lenient.append(lenient)
        if case let .decimal(p, s) = type {
            precisions.append(p)
            scales.append(s)
        } else {
            precisions.append(0)
            scales.append(0)
        }
        var builder = ColumnBuilder(type: type, capacity: nulls)
        if nulls > 0 { builder.appendNulls(nulls) }
        builders.append(builder)
        decimals.ensure(parser.columnCount + 1)
    }

    /// The type a first non-null JSON value suggests (null: a lenient string column). A number
    /// neither int64 nor float64 holds as written (`text`) suggests the decimal that holds it.
    static func inferredType(_ kind: JSONValueKind, text: UnsafeBufferPointer<UInt8>? = nil) -> DataType {
        switch kind {
        case .null, .string: .string
        case .bool: .bool
        case .int: .int64
        case .float: .float64
        case .bigNumber: text.flatMap(ExactNumber.decimalType) ?? .decimal(precision: 38, scale: 0)
        case .nested: .json
        }
    }

    // MARK: Decoding

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
            var local: [ColumnBuilder] = []
            swap(&local, &builders)
            while pos < n && rows < batchRows {
                let lineEnd: Int, next: Int
                if let hit = memchr(p + pos, 0x0A, n - pos) {
                    lineEnd = UnsafePointer<UInt8>(hit.assumingMemoryBound(to: UInt8.self)) - p
                    next = lineEnd + 1
                } else {
                    guard isFinal else {
                        guard let cut = oversized.cut(p, from: pos, end: n, limit: maxRecordBytes) else { break }
                        rejects.append(
                            DecodeReject(
                                line: line, offset: offset + pos, kind: "malformed_row",
                                message: OversizedRecords.message(limit: maxRecordBytes), raw: cut.raw))
                        if cut.lineEnded { line += 1 }
                        pos = cut.next
                        continue
                    }
                    lineEnd = n
                    next = n
                }
                if lineEnd - pos > maxRecordBytes {
                    rejects.append(
                        reject(
                            p, pos, min(lineEnd, pos + min(maxRecordBytes, OversizedRecords.rawLimit)), kind: "malformed_row",
                            message: OversizedRecords.message(limit: maxRecordBytes)))
                    line += 1
                    pos = next
                    continue
                }
                var contentEnd = lineEnd
                if contentEnd > pos, p[contentEnd - 1] == 0x0D { contentEnd -= 1 }
                if Self.isBlank(p, pos, contentEnd) {
                    line += 1
                    pos = next
                    continue
                }
                if let error = parser.parse(p, start: pos, end: contentEnd) {
                    rejects.append(reject(p, pos, contentEnd, kind: error.kind, message: error.message))
                } else if let reject = append(p, pos, contentEnd, into: &local) {
                    rejects.append(reject)
                } else {
                    rows += 1
                }
                line += 1
                pos = next
            }
            swap(&local, &builders)
        }
        offset += pos
        let columns = builders.indices.map { builders[$0].finish() }
        batchCount = 0
        return DecodeOutput(batch: RecordBatch(schema: schema, columns: columns), rejects: rejects, consumed: pos)
    }

    @inline(__always)
    static func isBlank(_ p: UnsafePointer<UInt8>, _ start: Int, _ end: Int) -> Bool {
        var i = start
        while i < end {
            let c = p[i]
            if c != 0x20 && c != 0x09 && c != 0x0D { return false }
            i += 1
        }
        return true
    }

    /// Checks the parsed line's values against their columns, then appends the row.
    private mutating func append(
        _ p: UnsafePointer<UInt8>, _ start: Int, _ end: Int, into builders: inout [ColumnBuilder]
    ) -> DecodeReject? {
        let generation = parser.generation
        let slots = parser.slots.base
        let columnCount = parser.columnCount
        if !widen.isEmpty { widen.removeAll(keepingCapacity: true) }
        var binaryUsed = 0
        // Step 1: check and convert.
        for c in 0..<columnCount {
            let slot = slots + c
            guard slot.pointee.generation == generation else { continue }
            let kind = slot.pointee.kind
            if kind == .null { continue }
            switch kinds[c] {
            case .bool:
                guard kind == .bool else { return mismatch(p, start, end, column: c) }
            case .int64:
                if kind == .int { break }
                // Widened to float64 only when no value so far would round.
                guard kind == .float, !declared[c], builders[c].int64ValuesFitFloat64 else { return mismatch(p, start, end, column: c) }
                widen.append(c)
            case .float64:
                if kind == .int {
                    let v = Int64(bitPattern: slot.pointee.bits)
                    guard Int64(exactly: Double(v)) == v else { return mismatch(p, start, end, column: c) }
                    slot.pointee.bits = Double(v).bitPattern
                } else if kind == .string {
                    // "NaN", "Infinity", "-Infinity": how non-finite doubles are written as JSON.
                    let text = decoded(p, slot)
                    guard let v = ValueParsing.parseDouble(text.baseAddress!, text.count), !v.isFinite else {
                        return mismatch(p, start, end, column: c)
                    }
                    slot.pointee.bits = v.bitPattern
                } else if kind != .float {
                    return mismatch(p, start, end, column: c)
                }
            case .string:
                if kind == .string { break }
                guard lenient[c] else { return mismatch(p, start, end, column: c) }
                slot.pointee.start = slot.pointee.rawStart
                slot.pointee.length = slot.pointee.rawLength
                slot.pointee.inScratch = false
            case .json:
                slot.pointee.start = slot.pointee.rawStart
                slot.pointee.length = slot.pointee.rawLength
                slot.pointee.inScratch = false
            case .timestamp:
                let text = decoded(p, slot)
                guard kind == .string, let v = ValueParsing.parseTimestamp(text.baseAddress!, text.count) else {
                    return mismatch(p, start, end, column: c)
                }
                slot.pointee.bits = UInt64(bitPattern: v)
            case .date:
                guard kind == .string, let v = TemporalText.parseDate(decoded(p, slot)) else {
                    return mismatch(p, start, end, column: c)
                }
                slot.pointee.bits = UInt64(UInt32(bitPattern: v))
            case .decimal:
                let text: UnsafeBufferPointer<UInt8>
                switch kind {
                case .string: text = decoded(p, slot)
                case .int, .float, .bigNumber: text = UnsafeBufferPointer(start: p + slot.pointee.rawStart, count: slot.pointee.rawLength)
                default: return mismatch(p, start, end, column: c)
                }
                // A JSON number may have an exponent or trailing zeros: exact all the same.
                guard
                    let v = DecimalText.parse(text, precision: precisions[c], scale: scales[c])
                        ?? (kind == .string ? nil : ExactNumber.decimal(text, precision: precisions[c], scale: scales[c]))
                else {
                    return mismatch(p, start, end, column: c)
                }
                decimals[c] = v
            case .binary:
                guard kind == .string else { return mismatch(p, start, end, column: c) }
                let text = decoded(p, slot)
                binary.ensure(binaryUsed + text.count + 4, keeping: binaryUsed)
                guard let length = Base64.decode(text.baseAddress!, text.count, into: binary.base + binaryUsed) else {
                    return mismatch(p, start, end, column: c)
                }
                slot.pointee.start = binaryUsed
                slot.pointee.length = length
                binaryUsed += length
            }
        }
        if parser.pending.count > 0 && columnCount + parser.pending.count > Self.maxColumns {
            return reject(
                p, start, end, kind: "too_many_columns",
                message: "key '\(parser.pendingName(0))' would make more than \(Self.maxColumns) columns; "
                    + "objects with arbitrary keys belong in a json column (declare the enclosing field as json)")
        }
        // Step 2: commit schema changes (widened and new columns).
        for c in widen {
            builders[c].widenToFloat64()
            types[c] = .float64
            kinds[c] = .float64
        }
        if parser.pending.count > 0 {
            swap(&builders, &self.builders)
            for k in 0..<parser.pending.count {
                let kind = slots[columnCount + k].kind
                let raw = UnsafeBufferPointer(start: p + slots[columnCount + k].rawStart, count: slots[columnCount + k].rawLength)
                addColumn(
                    parser.pendingName(k), Self.inferredType(kind, text: raw), origin: .firstValue(line: line),
                    declared: false, lenient: kind == .null, nulls: batchCount)
                if kinds[columnCount + k] == .json {
                    let slot = slots + columnCount + k
                    slot.pointee.start = slot.pointee.rawStart
                    slot.pointee.length = slot.pointee.rawLength
                    slot.pointee.inScratch = false
                }
            }
            swap(&builders, &self.builders)
        }
        // Step 3: append.
        let total = parser.columnCount
        let scratch = UnsafePointer(parser.scratch.base), binaryBase = UnsafePointer(binary.base)
        builders.withUnsafeMutableBufferPointer { b in
            let slots = parser.slots.base
            for c in 0..<total {
                let slot = slots + c
                let builder = b.baseAddress! + c
                guard slot.pointee.generation == generation, slot.pointee.kind != .null else {
                    builder.pointee.appendNull()
                    continue
                }
                switch kinds[c] {
                case .bool:
                    builder.pointee.append(slot.pointee.bits != 0)
                case .int64, .timestamp:
                    builder.pointee.append(Int64(bitPattern: slot.pointee.bits))
                case .float64:
                    builder.pointee.append(Double(bitPattern: slot.pointee.bits))
                case .date:
                    builder.pointee.appendDate(days: Int32(bitPattern: UInt32(truncatingIfNeeded: slot.pointee.bits)))
                case .decimal:
                    builder.pointee.appendDecimal(decimals[c])
                case .binary:
                    builder.pointee.appendBytes(UnsafeBufferPointer(start: binaryBase + slot.pointee.start, count: slot.pointee.length))
                case .string, .json:
                    let base = slot.pointee.inScratch ? scratch : p
                    builder.pointee.appendBytes(UnsafeBufferPointer(start: base + slot.pointee.start, count: slot.pointee.length))
                }
            }
        }
        batchCount += 1
        return nil
    }

    @inline(__always)
    private func decoded(_ p: UnsafePointer<UInt8>, _ slot: UnsafeMutablePointer<NDJSONSlot>) -> UnsafeBufferPointer<UInt8> {
        let base = slot.pointee.inScratch ? UnsafePointer(parser.scratch.base) : p
        return UnsafeBufferPointer(start: base + slot.pointee.start, count: slot.pointee.length)
    }

    // MARK: Rejects

    private func reject(_ p: UnsafePointer<UInt8>, _ start: Int, _ end: Int, kind: String, message: String) -> DecodeReject {
        DecodeReject(
            line: line, offset: offset + start, kind: kind, message: message,
            raw: Array(UnsafeBufferPointer(start: p + start, count: end - start)))
    }

    private func mismatch(_ p: UnsafePointer<UInt8>, _ start: Int, _ end: Int, column c: Int) -> DecodeReject {
        let slot = parser.slots[c]
        let found: String =
            switch slot.kind {
            case .null: "null"
            case .bool: "a bool"
            case .int: "an integer"
            case .float: "a number"
            case .bigNumber: "a number beyond int64 and float64 (a decimal or string column holds it exactly)"
            case .string: "a string"
            case .nested: p[slot.rawStart] == UInt8(ascii: "{") ? "an object" : "an array"
            }
        let value = ValueParsing.preview(p + slot.rawStart, slot.rawLength)
        let origin =
            switch origins[c] {
            case .declared:
                "the type was declared in `columns:`"
            case .sample:
                "the type was inferred from the first \(inferredLines) line\(inferredLines == 1 ? "" : "s") of the file; declare the field under `columns:` to override"
            case let .firstValue(line):
                "the type was inferred from the field's first value, on line \(line); declare the field under `columns:` to override"
            }
        return reject(
            p, start, end, kind: "type_mismatch",
            message: "field '\(names[c])': expected \(types[c]), found \(found) \(value) (\(origin))")
    }
}
