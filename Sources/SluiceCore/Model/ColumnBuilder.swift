/// Appends values of one type into growing buffers, then produces a ``Column``.
///
/// Builders are reused across batches (``finish()`` keeps capacity), so a source
/// appends without per-value allocation.
public struct ColumnBuilder: Sendable {
    public private(set) var type: DataType
    @usableFromInline var _count = 0
    public var count: Int { _count }
    @usableFromInline var bools: [Bool] = []
    @usableFromInline var ints: [Int64] = []
    @usableFromInline var doubles: [Double] = []
    @usableFromInline var decimals: [Int128] = []
    @usableFromInline var int32s: [Int32] = []
    @usableFromInline var offsets: [Int32] = [0]
    @usableFromInline var bytes: [UInt8] = []
    /// Kept only once the batch has a null (``hasNull``): until then every value is present,
    /// and appending a value costs no bitmap write.
    @usableFromInline var validity = ValidityBitmap()
    @usableFromInline var hasNull = false
    /// The size of the last batch: what a bitmap started at this batch's first null reserves.
    var validityCapacity = 0

    public init(type: DataType, capacity: Int = 0) {
        self.type = type
        validityCapacity = capacity
        reserve(capacity)
    }

    mutating func reserve(_ n: Int) {
        guard n > 0 else { return }
        switch type {
        case .bool: bools.reserveCapacity(n)
        case .int64, .timestamp: ints.reserveCapacity(n)
        case .float64: doubles.reserveCapacity(n)
        case .decimal: decimals.reserveCapacity(n)
        case .date: int32s.reserveCapacity(n)
        case .string, .binary, .json: offsets.reserveCapacity(n + 1); bytes.reserveCapacity(n * 16)
        }
    }

    /// Bytes held so far (approximate).
    public var byteSize: Int {
        bools.count + ints.count * 8 + doubles.count * 8 + decimals.count * 16 + int32s.count * 4
            + offsets.count * 4 + bytes.count
    }

    @inlinable mutating func markValid() {
        if hasNull { validity.append(true) }
        _count += 1
    }

    public mutating func appendNull() {
        switch type {
        case .bool: bools.append(false)
        case .int64, .timestamp: ints.append(0)
        case .float64: doubles.append(0)
        case .decimal: decimals.append(0)
        case .date: int32s.append(0)
        case .string, .binary, .json: offsets.append(Int32(bytes.count))
        }
        if !hasNull {
            // The first null: the bitmap starts now, with every value before it present.
            validity = ValidityBitmap()
            validity.reserveCapacity(Swift.max(_count + 1, validityCapacity))
            validity.appendValid(_count)
            hasNull = true
        }
        validity.append(false)
        _count += 1
    }

    public mutating func appendNulls(_ n: Int) {
        for _ in 0..<n { appendNull() }
    }

    @inlinable public mutating func append(_ v: Bool) { bools.append(v); markValid() }
    /// Appends an int64 or, for timestamp columns, microseconds since the epoch.
    @inlinable public mutating func append(_ v: Int64) { ints.append(v); markValid() }
    @inlinable public mutating func append(_ v: Double) { doubles.append(v); markValid() }
    @inlinable public mutating func appendDecimal(_ unscaled: Int128) { decimals.append(unscaled); markValid() }
    @inlinable public mutating func appendDate(days: Int32) { int32s.append(days); markValid() }

    /// Appends a string/binary/json value from raw bytes.
    @inlinable public mutating func appendBytes(_ v: UnsafeBufferPointer<UInt8>) {
        bytes.append(contentsOf: v)
        offsets.append(Int32(truncatingIfNeeded: bytes.count))
        markValid()
    }

    public mutating func appendBytes(_ v: some Collection<UInt8>) {
        bytes.append(contentsOf: v)
        offsets.append(Int32(truncatingIfNeeded: bytes.count))
        markValid()
    }

    public mutating func append(string: String) {
        var s = string
        s.withUTF8 { appendBytes($0) }
    }

    /// Removes the last value (used when a row is rejected after some of its fields were appended).
    public mutating func removeLast() {
        precondition(count > 0)
        switch type {
        case .bool: bools.removeLast()
        case .int64, .timestamp: ints.removeLast()
        case .float64: doubles.removeLast()
        case .decimal: decimals.removeLast()
        case .date: int32s.removeLast()
        case .string, .binary, .json:
            offsets.removeLast()
            bytes.removeSubrange(Int(offsets.last!)...)
        }
        if hasNull {
            var rebuilt = ValidityBitmap()
            rebuilt.reserveCapacity(count)
            for i in 0..<(count - 1) { rebuilt.append(validity[i]) }
            validity = rebuilt.nullCount > 0 ? rebuilt : ValidityBitmap()
            hasNull = rebuilt.nullCount > 0
        }
        _count -= 1
    }

    /// Appends a ``Value`` (slow path). Returns false when the value does not fit the column's type.
    @discardableResult
    public mutating func append(value: Value) -> Bool {
        switch (value, type) {
        case (.null, _): appendNull()
        case let (.bool(b), .bool): append(b)
        case let (.int64(i), .int64): append(i)
        case let (.int64(i), .float64): append(Double(i))
        case let (.float64(d), .float64): append(d)
        case let (.decimal(v, s), .decimal(_, scale)) where s == scale: appendDecimal(v)
        case let (.string(s), .string), let (.json(s), .json): append(string: s)
        case let (.binary(b), .binary): appendBytes(b)
        case let (.date(d), .date): appendDate(days: d)
        case let (.timestamp(t), .timestamp): append(t)
        default: return false
        }
        return true
    }

    /// Converts an int64 column being built into a float64 column (NDJSON widening).
    /// Whether every int64 value so far converts to float64 exactly (a widening may not round).
    public var int64ValuesFitFloat64: Bool {
        ints.allSatisfy { (-(1 << 53)...(1 << 53)).contains($0) || Int64(exactly: Double($0)) == $0 }
    }

    public mutating func widenToFloat64() {
        precondition(type == .int64)
        doubles = ints.map(Double.init)
        ints = []
        type = .float64
    }

    /// Produces the column and resets the builder. The next batch's buffers are reserved at
    /// this batch's size (not the grown capacity), so finished columns do not carry slack.
    public mutating func finish() -> Column {
        let storage: ColumnStorage
        let n = _count
        switch type {
        case .bool: storage = .bool(bools); bools = []; bools.reserveCapacity(n)
        case .int64, .timestamp: storage = .int64(ints); ints = []; ints.reserveCapacity(n)
        case .float64: storage = .float64(doubles); doubles = []; doubles.reserveCapacity(n)
        case .decimal: storage = .decimal(decimals); decimals = []; decimals.reserveCapacity(n)
        case .date: storage = .int32(int32s); int32s = []; int32s.reserveCapacity(n)
        case .string, .binary, .json:
            storage = .bytes(offsets: offsets, data: bytes)
            let used = bytes.count
            offsets = []
            offsets.reserveCapacity(n + 1)
            offsets.append(0)
            bytes = []
            bytes.reserveCapacity(used)
        }
        let column = Column(type: type, storage: storage, validity: hasNull ? validity : nil, count: n)
        validity = ValidityBitmap()
        validityCapacity = n
        hasNull = false
        _count = 0
        return column
    }
}
