/// The typed buffer behind a ``Column``.
///
/// Fixed-width types keep one array element per row (null rows hold a zero);
/// variable-length types (string, binary, json) keep Arrow-style `offsets`
/// (`count + 1` entries) into one contiguous `bytes` buffer.
public enum ColumnStorage: Sendable, Hashable {
    case bool([Bool])
    case int64([Int64])
    case float64([Double])
    case decimal([Int128])
    case int32([Int32])
    case bytes(offsets: [Int32], data: [UInt8])

    /// The number of values the buffer holds.
    public var count: Int {
        switch self {
        case let .bool(v): v.count
        case let .int64(v): v.count
        case let .float64(v): v.count
        case let .decimal(v): v.count
        case let .int32(v): v.count
        case let .bytes(offsets, _): offsets.count - 1
        }
    }
}

/// One column of a ``RecordBatch``: a logical type, a typed buffer and a validity bitmap.
public struct Column: Sendable, Hashable {
    public let type: DataType
    public let storage: ColumnStorage
    /// `nil` when every value is present.
    public let validity: ValidityBitmap?
    public let count: Int

    public init(type: DataType, storage: ColumnStorage, validity: ValidityBitmap?, count: Int) {
        self.type = type
        self.storage = storage
        self.validity = validity
        self.count = count
    }

    /// Number of null values.
    public var nullCount: Int { validity?.nullCount ?? 0 }

    @inlinable public func isNull(_ row: Int) -> Bool {
        guard let validity else { return false }
        return !validity[row]
    }

    /// The bytes of a string/binary/json value, without copying, passed to `body`.
    public func withBytes<R>(at row: Int, _ body: (UnsafeBufferPointer<UInt8>) throws -> R) rethrows -> R {
        guard case let .bytes(offsets, data) = storage else {
            preconditionFailure("withBytes on a \(type) column")
        }
        let start = Int(offsets[row]), end = Int(offsets[row + 1])
        return try data.withUnsafeBufferPointer { try body(UnsafeBufferPointer(rebasing: $0[start..<end])) }
    }

    /// Approximate in-memory size in bytes, used for batching and backpressure bounds.
    public var byteSize: Int {
        let values: Int =
            switch storage {
            case let .bool(v): v.count
            case let .int64(v): v.count * 8
            case let .float64(v): v.count * 8
            case let .decimal(v): v.count * 16
            case let .int32(v): v.count * 4
            case let .bytes(offsets, data): offsets.count * 4 + data.count
            }
        return values + (validity.map { $0.words.count * 8 } ?? 0)
    }

    /// The value at `row` as a ``Value`` (slow path: for tests, keys and error messages).
    public func value(at row: Int) -> Value {
        if isNull(row) { return .null }
        switch storage {
        case let .bool(v): return .bool(v[row])
        case let .int64(v): return type == .timestamp ? .timestamp(v[row]) : .int64(v[row])
        case let .float64(v): return .float64(v[row])
        case let .decimal(v):
            if case let .decimal(_, scale) = type { return .decimal(v[row], scale: scale) }
            return .decimal(v[row], scale: 0)
        case let .int32(v): return .date(v[row])
        case .bytes:
            let bytes = withBytes(at: row) { Array($0) }
            switch type {
            case .binary: return .binary(bytes)
            case .json: return .json(String(decoding: bytes, as: UTF8.self))
            default: return .string(String(decoding: bytes, as: UTF8.self))
            }
        }
    }
}
