extension Column {
    /// The values at `rows` (ascending or not), as a new column. Copies typed buffers directly.
    public func take(_ rows: [Int]) -> Column {
        var validity: ValidityBitmap?
        if let v = self.validity {
            var bits = ValidityBitmap()
            bits.reserveCapacity(rows.count)
            for r in rows { bits.append(v[r]) }
            validity = bits.nullCount > 0 ? bits : nil
        }
        let storage: ColumnStorage
        switch self.storage {
        case let .bool(v): storage = .bool(rows.map { v[$0] })
        case let .int64(v): storage = .int64(rows.map { v[$0] })
        case let .float64(v): storage = .float64(rows.map { v[$0] })
        case let .decimal(v): storage = .decimal(rows.map { v[$0] })
        case let .int32(v): storage = .int32(rows.map { v[$0] })
        case let .bytes(offsets, data):
            var newOffsets: [Int32] = [0]
            newOffsets.reserveCapacity(rows.count + 1)
            var newData: [UInt8] = []
            var total = 0
            for r in rows { total += Int(offsets[r + 1] - offsets[r]) }
            newData.reserveCapacity(total)
            data.withUnsafeBufferPointer { d in
                for r in rows {
                    newData.append(contentsOf: UnsafeBufferPointer(rebasing: d[Int(offsets[r])..<Int(offsets[r + 1])]))
                    newOffsets.append(Int32(truncatingIfNeeded: newData.count))
                }
            }
            storage = .bytes(offsets: newOffsets, data: newData)
        }
        return Column(type: type, storage: storage, validity: validity, count: rows.count)
    }
}

extension RecordBatch {
    /// A batch holding only the rows at `rows`, in that order.
    public func take(_ rows: [Int]) -> RecordBatch {
        if rows.count == count && rows.elementsEqual(0..<count) { return self }
        return RecordBatch(schema: schema, columns: columns.map { $0.take(rows) })
    }
}
