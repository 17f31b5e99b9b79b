import SluiceCore

/// Gathers the pages of one column chunk into a Sluice ``Column``, placing nulls where the
/// definition levels say (null rows hold zero / empty, as ``ColumnBuilder`` does).
struct ColumnAccumulator {
    let type: DataType
    private var bools: [Bool] = []
    private var ints: [Int64] = []
    private var doubles: [Double] = []
    private var decimals: [Int128] = []
    private var int32s: [Int32] = []
    private var offsets: [Int32] = [0]
    private var data: [UInt8] = []
    private var validity = ValidityBitmap()
    private var hasNull = false
    private(set) var count = 0

    init(type: DataType, capacity: Int) {
        self.type = type
        validity.reserveCapacity(min(capacity, 1 << 20))  // the count comes from the file: do not trust it for memory
    }

    /// Appends one page: `values` holds its non-null values; `levels` (nil when every value is
    /// defined) has one definition level per row, 1 = present.
    mutating func append(_ values: ColumnStorage, levels: [UInt32]?) throws {
        let rows = levels?.count ?? values.count
        if let levels {
            for l in levels { validity.append(l != 0) }
            if levels.contains(0) { hasNull = true }
        } else {
            for _ in 0..<rows { validity.append(true) }
        }
        switch values {
        case let .bool(v): scatter(v, into: &bools, levels, zero: false)
        case let .int64(v): scatter(v, into: &ints, levels, zero: 0)
        case let .float64(v): scatter(v, into: &doubles, levels, zero: 0)
        case let .decimal(v): scatter(v, into: &decimals, levels, zero: 0)
        case let .int32(v): scatter(v, into: &int32s, levels, zero: 0)
        case let .bytes(o, d):
            guard data.count + d.count <= Int(Int32.max) else {
                throw ParquetFormatError("column chunk holds more than 2 GiB of byte-array data", unsupported: true)
            }
            let base = Int32(data.count)
            data.append(contentsOf: d)
            if let levels {
                var next = 0
                for l in levels {
                    if l != 0 {
                        next += 1
                        offsets.append(base + o[next] - o[0])
                    } else {
                        offsets.append(offsets[offsets.count - 1])
                    }
                }
            } else {
                for k in 1..<o.count { offsets.append(base + o[k] - o[0]) }
            }
        }
        count += rows
    }


    private func scatter<T>(_ values: [T], into out: inout [T], _ levels: [UInt32]?, zero: T) {
        guard let levels else {
            out.append(contentsOf: values)
            return
        }
        out.reserveCapacity(out.count + levels.count)
        var next = 0
        for l in levels {
            if l != 0 {
                out.append(values[next])
                next += 1
            } else {
                out.append(zero)
            }
        }
    }

    /// The finished column, in the storage its Sluice type uses.
    func column() -> Column {
        let storage: ColumnStorage =
            switch type {
            case .bool: .bool(bools)
            case .int64, .timestamp: .int64(ints)
            case .float64: .float64(doubles)
            case .decimal: .decimal(decimals)
            case .date: .int32(int32s)
            case .string, .binary, .json: .bytes(offsets: offsets, data: data)
            }
        return Column(type: type, storage: storage, validity: hasNull ? validity : nil, count: count)
    }
}
