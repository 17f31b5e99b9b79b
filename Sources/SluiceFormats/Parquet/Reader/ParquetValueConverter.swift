import SluiceCore

/// Turns decoded Parquet values of one leaf column into Sluice column storage (non-null values
/// only; nulls are placed by ``ColumnAccumulator``).
struct ParquetValueConverter {
    let leaf: ParquetLeafColumn
    var physical: ParquetPhysicalType { leaf.physicalType }
    var conversion: ParquetValueConversion { leaf.conversion }

    /// Byte width of one PLAIN value of a fixed-width physical type (nil for BYTE_ARRAY, BOOLEAN).
    var fixedWidth: Int? {
        switch physical {
        case .int32, .float: 4
        case .int64, .double: 8
        case .int96: 12
        case .fixedLenByteArray: Int(leaf.element.typeLength ?? 0)
        case .boolean, .byteArray: nil
        }
    }

    // MARK: PLAIN

    /// Decodes `count` PLAIN values from `p`; returns the values and the bytes consumed.
    func plain(_ p: UnsafeRawBufferPointer, count: Int) throws -> (ColumnStorage, Int) {
        switch physical {
        case .boolean:
            let needed = (count + 7) / 8
            guard needed <= p.count else { throw shortPage("BOOLEAN", count) }
            var values = [Bool](repeating: false, count: count)
            for i in 0..<count { values[i] = p[i >> 3] & (1 << UInt8(i & 7)) != 0 }
            return (.bool(values), needed)
        case .byteArray:
            var offsets: [Int32] = [0]
            offsets.reserveCapacity(min(count, p.count / 4) + 1)
            var data: [UInt8] = []
            data.reserveCapacity(max(0, p.count - 4 * count))
            var pos = 0
            for _ in 0..<count {
                guard pos + 4 <= p.count else { throw shortPage("BYTE_ARRAY", count) }
                let n = Int(p.loadUnaligned(fromByteOffset: pos, as: UInt32.self).littleEndian)
                pos += 4
                guard n <= p.count - pos else {
                    throw ParquetFormatError("byte array of \(n) bytes runs past the end of its page")
                }
                data.append(contentsOf: UnsafeRawBufferPointer(rebasing: p[pos..<(pos + n)]))
                pos += n
                guard data.count <= Int(Int32.max) else { throw tooLarge() }
                offsets.append(Int32(data.count))
            }
            return (try byteArrays(offsets, data), pos)
        default:
            let width = fixedWidth!
            let (needed, overflow) = width.multipliedReportingOverflow(by: count)
            guard !overflow, needed <= p.count else { throw shortPage(physical.description, count) }
            return (try fixed(UnsafeRawBufferPointer(rebasing: p[0..<needed]), count: count, width: width), needed)
        }
    }

    /// Fixed-width PLAIN values (also the output of BYTE_STREAM_SPLIT).
    func fixed(_ p: UnsafeRawBufferPointer, count: Int, width: Int) throws -> ColumnStorage {
        switch physical {
        case .int32:
            return try integers(count) { Int64(p.loadUnaligned(fromByteOffset: $0 * 4, as: Int32.self).littleEndian) }
        case .int64:
            return try integers(count) { p.loadUnaligned(fromByteOffset: $0 * 8, as: Int64.self).littleEndian }
        case .int96:
            var values = [Int64](repeating: 0, count: count)
            for i in 0..<count {
                let nanos = p.loadUnaligned(fromByteOffset: i * 12, as: Int64.self).littleEndian
                let julianDay = Int64(p.loadUnaligned(fromByteOffset: i * 12 + 8, as: Int32.self).littleEndian)
                let (days, o1) = (julianDay - 2_440_588).multipliedReportingOverflow(by: 86_400_000_000)
                let (micros, o2) = days.addingReportingOverflow(nanos.floorDivided(by: 1000))
                guard !o1, !o2 else { throw ParquetFormatError("INT96 timestamp out of range") }
                guard nanos % 1000 == 0 else { throw Self.finerThanMicros(nanos) }
                values[i] = micros
            }
            return .int64(values)
        case .float:
            var values = [Double](repeating: 0, count: count)
            for i in 0..<count {
                values[i] = Double(Float(bitPattern: p.loadUnaligned(fromByteOffset: i * 4, as: UInt32.self).littleEndian))
            }
            return .float64(values)
        case .double:
            var values = [Double](repeating: 0, count: count)
            for i in 0..<count {
                values[i] = Double(bitPattern: p.loadUnaligned(fromByteOffset: i * 8, as: UInt64.self).littleEndian)
            }
            return .float64(values)
        case .fixedLenByteArray:
            var offsets = [Int32](repeating: 0, count: count + 1)
            guard count * width <= Int(Int32.max) else { throw tooLarge() }
            for i in 0...count { offsets[i] = Int32(i * width) }
            return try byteArrays(offsets, Array(p[0..<(count * width)]))
        case .boolean, .byteArray:
            preconditionFailure("not a fixed-width type")
        }
    }

    // MARK: Converted forms

    /// A nanosecond timestamp that is not a whole microsecond: Sluice keeps microseconds and
    /// refuses to truncate (the same rule as for timestamp text).
    static func finerThanMicros(_ nanos: Int64) -> ParquetFormatError {
        ParquetFormatError(
            "a nanosecond timestamp (\(nanos) ns) is not a whole microsecond; Sluice keeps microseconds and does not truncate "
                + "(write the column in microseconds, or cast it to a string, to read it)", unsupported: true)
    }

    /// INT32/INT64 values (as Int64) converted to the column's Sluice type.
    func integers(_ count: Int, _ value: (Int) -> Int64) throws -> ColumnStorage {
        switch conversion {
        case let .int32ToInt64(unsigned):
            var values = [Int64](repeating: 0, count: count)
            if unsigned {
                for i in 0..<count { values[i] = Int64(UInt32(truncatingIfNeeded: value(i))) }
            } else {
                for i in 0..<count { values[i] = Int64(Int32(truncatingIfNeeded: value(i))) }
            }
            return .int64(values)
        case .int64:
            var values = [Int64](repeating: 0, count: count)
            for i in 0..<count { values[i] = value(i) }
            return .int64(values)
        case let .timestamp(multiplier, divisor):
            var values = [Int64](repeating: 0, count: count)
            for i in 0..<count {
                let (v, overflow) = value(i).multipliedReportingOverflow(by: multiplier)
                guard !overflow else { throw ParquetFormatError("timestamp \(value(i)) ms is out of the microsecond range") }
                guard v % divisor == 0 else { throw Self.finerThanMicros(v) }
                values[i] = divisor == 1 ? v : v / divisor
            }
            return .int64(values)
        case .date:
            var values = [Int32](repeating: 0, count: count)
            for i in 0..<count { values[i] = Int32(truncatingIfNeeded: value(i)) }
            return .int32(values)
        case .decimalFromInt32:
            var values = [Int128](repeating: 0, count: count)
            for i in 0..<count { values[i] = Int128(Int32(truncatingIfNeeded: value(i))) }
            return .decimal(values)
        case .decimalFromInt64:
            var values = [Int128](repeating: 0, count: count)
            for i in 0..<count { values[i] = Int128(value(i)) }
            return .decimal(values)
        case .uint64ToDecimal:
            var values = [Int128](repeating: 0, count: count)
            for i in 0..<count { values[i] = Int128(UInt64(bitPattern: value(i))) }
            return .decimal(values)
        case let .timeText(unit):
            var offsets: [Int32] = [0]
            offsets.reserveCapacity(count + 1)
            var data: [UInt8] = []
            data.reserveCapacity(count * 18)
            for i in 0..<count {
                try Self.appendTime(value(i), unit: unit, column: leaf.field.name, to: &data)
                offsets.append(Int32(data.count))
            }
            return .bytes(offsets: offsets, data: data)
        default:
            throw ParquetFormatError("integer values in a \(leaf.field.type) column")
        }
    }

    /// Appends a time of day in `unit` since midnight as `HH:MM:SS.fff` (3, 6 or 9 fraction digits).
    static func appendTime(_ value: Int64, unit: ParquetTimeUnit, column: String, to out: inout [UInt8]) throws {
        let (perSecond, digits): (Int64, Int) =
            switch unit {
            case .millis: (1000, 3)
            case .micros: (1_000_000, 6)
            case .nanos: (1_000_000_000, 9)
            }
        guard value >= 0, value <= 86_400 * perSecond else {
            throw ParquetFormatError("column \(column): time of day \(value) (\(unit)) is outside 00:00:00…24:00:00")
        }
        let seconds = value / perSecond, fraction = value % perSecond
        func two(_ v: Int64) {
            out.append(UInt8(48 + v / 10))
            out.append(UInt8(48 + v % 10))
        }
        two(seconds / 3600)
        out.append(UInt8(ascii: ":"))
        two(seconds / 60 % 60)
        out.append(UInt8(ascii: ":"))
        two(seconds % 60)
        out.append(UInt8(ascii: "."))
        var text = Array(String(fraction).utf8)
        while text.count < digits { text.insert(UInt8(ascii: "0"), at: 0) }
        out.append(contentsOf: text)
    }

    /// Byte arrays converted to the column's Sluice type.
    func byteArrays(_ offsets: [Int32], _ data: [UInt8]) throws -> ColumnStorage {
        switch conversion {
        case .bytes:
            return .bytes(offsets: offsets, data: data)
        case .uuidText:
            let count = offsets.count - 1
            var outOffsets: [Int32] = [0]
            var out: [UInt8] = []
            out.reserveCapacity(count * 36)
            let hex = Array("0123456789abcdef".utf8)
            for i in 0..<count {
                let start = Int(offsets[i])
                guard Int(offsets[i + 1]) - start == 16 else { throw ParquetFormatError("a UUID value is not 16 bytes") }
                for k in 0..<16 {
                    if k == 4 || k == 6 || k == 8 || k == 10 { out.append(UInt8(ascii: "-")) }
                    out.append(hex[Int(data[start + k] >> 4)])
                    out.append(hex[Int(data[start + k] & 15)])
                }
                outOffsets.append(Int32(out.count))
            }
            return .bytes(offsets: outOffsets, data: out)
        case .float16ToDouble:
            let count = offsets.count - 1
            var values = [Double](repeating: 0, count: count)
            for i in 0..<count {
                let start = Int(offsets[i])
                guard Int(offsets[i + 1]) - start == 2 else { throw ParquetFormatError("a FLOAT16 value is not 2 bytes") }
                values[i] = Double(Float16(bitPattern: UInt16(data[start]) | UInt16(data[start + 1]) << 8))
            }
            return .float64(values)
        case .decimalFromBytes:
            let count = offsets.count - 1
            var values = [Int128](repeating: 0, count: count)
            try data.withUnsafeBytes { d in
                for i in 0..<count {
                    values[i] = try DecimalBytes.load(UnsafeRawBufferPointer(rebasing: d[Int(offsets[i])..<Int(offsets[i + 1])]))
                }
            }
            return .decimal(values)
        default:
            throw ParquetFormatError("byte-array values in a \(leaf.field.type) column")
        }
    }

    private func shortPage(_ type: String, _ count: Int) -> ParquetFormatError {
        ParquetFormatError("page too short for \(count) PLAIN \(type) values")
    }

    private func tooLarge() -> ParquetFormatError {
        ParquetFormatError("column chunk holds more than 2 GiB of byte-array data", unsupported: true)
    }

    // MARK: Dictionary

    /// The dictionary entries selected by `indices`.
    static func gather(_ dictionary: ColumnStorage, _ indices: [UInt32]) throws -> ColumnStorage {
        func pick<T>(_ values: [T]) throws -> [T] {
            let n = UInt32(values.count)
            return try indices.map { i in
                guard i < n else { throw ParquetFormatError("dictionary index \(i) out of range (dictionary has \(n) entries)") }
                return values[Int(i)]
            }
        }
        switch dictionary {
        case let .bool(v): return .bool(try pick(v))
        case let .int64(v): return .int64(try pick(v))
        case let .float64(v): return .float64(try pick(v))
        case let .decimal(v): return .decimal(try pick(v))
        case let .int32(v): return .int32(try pick(v))
        case let .bytes(offsets, data):
            let n = UInt32(offsets.count - 1)
            var total = 0
            for i in indices {
                guard i < n else { throw ParquetFormatError("dictionary index \(i) out of range (dictionary has \(n) entries)") }
                total += Int(offsets[Int(i) + 1] - offsets[Int(i)])
            }
            guard total <= Int(Int32.max) else {
                throw ParquetFormatError("column chunk holds more than 2 GiB of byte-array data", unsupported: true)
            }
            var outOffsets = [Int32](repeating: 0, count: indices.count + 1)
            var outData = [UInt8](repeating: 0, count: total)
            data.withUnsafeBytes { src in
                outData.withUnsafeMutableBytes { dst in
                    var pos = 0
                    for (k, i) in indices.enumerated() {
                        let s = Int(offsets[Int(i)]), len = Int(offsets[Int(i) + 1]) - s
                        if len > 0 { (dst.baseAddress! + pos).copyMemory(from: src.baseAddress! + s, byteCount: len) }
                        pos += len
                        outOffsets[k + 1] = Int32(pos)
                    }
                }
            }
            return .bytes(offsets: outOffsets, data: outData)
        }
    }
}

extension Int64 {
    /// Division rounding toward negative infinity.
    func floorDivided(by d: Int64) -> Int64 {
        let q = self / d
        return (self % d != 0 && (self < 0) != (d < 0)) ? q - 1 : q
    }
}
