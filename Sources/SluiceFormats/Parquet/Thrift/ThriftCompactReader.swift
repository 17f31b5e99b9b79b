/// Decodes Thrift compact-protocol structs from a byte array, checking every length against
/// the bytes available and skipping fields it does not know.
struct ThriftCompactReader {
    let bytes: [UInt8]
    private(set) var position: Int
    let end: Int
    private var depth = 0
    static let maxDepth = 64

    init(_ bytes: [UInt8], from start: Int = 0, to end: Int? = nil) {
        self.bytes = bytes
        position = start
        self.end = min(end ?? bytes.count, bytes.count)
    }

    var remaining: Int { end - position }

    private func truncated(_ what: String) -> ParquetFormatError {
        ParquetFormatError("thrift data ends inside \(what) (at byte \(position) of \(end))")
    }

    // MARK: Primitives

    mutating func readByte() throws -> UInt8 {
        guard position < end else { throw truncated("a value") }
        defer { position += 1 }
        return bytes[position]
    }

    mutating func readVarint() throws -> UInt64 {
        var result: UInt64 = 0
        var shift: UInt64 = 0
        while true {
            guard position < end else { throw truncated("a varint") }
            let b = bytes[position]
            position += 1
            guard shift < 64 else { throw ParquetFormatError("thrift varint longer than 10 bytes") }
            result |= UInt64(b & 0x7F) << shift
            if b & 0x80 == 0 { return result }
            shift += 7
        }
    }

    mutating func readI64() throws -> Int64 {
        let z = try readVarint()
        return Int64(bitPattern: (z >> 1) ^ (0 &- (z & 1)))
    }

    mutating func readI32() throws -> Int32 {
        let v = try readI64()
        guard let r = Int32(exactly: v) else { throw ParquetFormatError("thrift i32 out of range: \(v)") }
        return r
    }

    mutating func readI16() throws -> Int16 {
        let v = try readI64()
        guard let r = Int16(exactly: v) else { throw ParquetFormatError("thrift i16 out of range: \(v)") }
        return r
    }

    mutating func readDouble() throws -> Double {
        guard remaining >= 8 else { throw truncated("a double") }
        var bits: UInt64 = 0
        for i in 0..<8 { bits |= UInt64(bytes[position + i]) << (8 * UInt64(i)) }
        position += 8
        return Double(bitPattern: bits)
    }

    mutating func readBinary() throws -> [UInt8] {
        let n = try readVarint()
        guard n <= UInt64(remaining) else {
            throw ParquetFormatError("thrift binary of \(n) bytes exceeds the \(remaining) bytes left")
        }
        let start = position
        position += Int(n)
        return Array(bytes[start..<position])
    }

    mutating func readString() throws -> String {
        String(decoding: try readBinary(), as: UTF8.self)
    }

    /// Reads a list header; the count is checked against the bytes left (every element takes at least one byte).
    mutating func readListHeader() throws -> (elementType: UInt8, count: Int) {
        let header = try readByte()
        var count = Int(header >> 4)
        if count == 15 {
            let n = try readVarint()
            guard n <= UInt64(Int32.max) else { throw ParquetFormatError("thrift list size \(n) too large") }
            count = Int(n)
        }
        let type = header & 0x0F
        guard count <= remaining else {
            throw ParquetFormatError("thrift list of \(count) elements exceeds the \(remaining) bytes left")
        }
        return (type, count)
    }

    // MARK: Structs

    /// Reads the fields of a struct until its stop field. `body` gets each field's id and
    /// compact type and returns false for fields it does not handle, which are skipped.
    mutating func readStruct(_ body: (inout ThriftCompactReader, Int16, UInt8) throws -> Bool) throws {
        depth += 1
        guard depth <= Self.maxDepth else { throw ParquetFormatError("thrift structs nested too deeply") }
        defer { depth -= 1 }
        var lastId: Int16 = 0
        while true {
            let header = try readByte()
            if header == 0 { return }
            let type = header & 0x0F
            let delta = header >> 4
            let id: Int16
            if delta != 0 {
                let (sum, overflow) = lastId.addingReportingOverflow(Int16(delta))
                guard !overflow else { throw ParquetFormatError("thrift field id overflow") }
                id = sum
            } else {
                id = try readI16()
            }
            lastId = id
            if try !body(&self, id, type) { try skip(type) }
        }
    }

    /// The value of a bool struct field, carried in its type code.
    func boolValue(_ type: UInt8) throws -> Bool {
        switch type {
        case ThriftCompactType.boolTrue.rawValue: return true
        case ThriftCompactType.boolFalse.rawValue: return false
        default: throw ParquetFormatError("thrift field of type \(type) where a bool was expected")
        }
    }

    /// Checks that a field has the type the schema says; a mismatch means a corrupt footer.
    func expect(_ type: UInt8, _ expected: ThriftCompactType, _ name: String) throws {
        guard type == expected.rawValue else {
            throw ParquetFormatError("thrift field \(name) has type \(type), expected \(expected.rawValue)")
        }
    }

    mutating func readList<T>(
        _ name: String, _ elementType: ThriftCompactType,
        _ element: (inout ThriftCompactReader) throws -> T
    ) throws -> [T] {
        let (type, count) = try readListHeader()
        guard type == elementType.rawValue || count == 0 else {
            throw ParquetFormatError("thrift list \(name) has elements of type \(type), expected \(elementType.rawValue)")
        }
        var result: [T] = []
        result.reserveCapacity(count)
        for _ in 0..<count { result.append(try element(&self)) }
        return result
    }

    /// Skips one value of compact type `type`.
    mutating func skip(_ type: UInt8) throws {
        switch type {
        case ThriftCompactType.boolTrue.rawValue, ThriftCompactType.boolFalse.rawValue:
            return  // in a struct field the value is in the type; list elements go through skipElement
        case ThriftCompactType.i8.rawValue: _ = try readByte()
        case ThriftCompactType.i16.rawValue, ThriftCompactType.i32.rawValue, ThriftCompactType.i64.rawValue:
            _ = try readVarint()
        case ThriftCompactType.double.rawValue:
            guard remaining >= 8 else { throw truncated("a double") }
            position += 8
        case ThriftCompactType.binary.rawValue:
            let n = try readVarint()
            guard n <= UInt64(remaining) else { throw truncated("a binary value") }
            position += Int(n)
        case ThriftCompactType.uuid.rawValue:
            guard remaining >= 16 else { throw truncated("a uuid") }
            position += 16
        case ThriftCompactType.list.rawValue, ThriftCompactType.set.rawValue:
            let (elementType, count) = try readListHeader()
            try nested { r in for _ in 0..<count { try r.skipElement(elementType) } }
        case ThriftCompactType.map.rawValue:
            let n = try readVarint()
            guard n > 0 else { return }
            guard n <= UInt64(remaining) else { throw truncated("a map") }
            let kinds = try readByte()
            try nested { r in
                for _ in 0..<Int(n) {
                    try r.skipElement(kinds >> 4)
                    try r.skipElement(kinds & 0x0F)
                }
            }
        case ThriftCompactType.structure.rawValue:
            try readStruct { _, _, _ in false }
        default:
            throw ParquetFormatError("unknown thrift type code \(type)")
        }
    }

    private mutating func nested(_ body: (inout ThriftCompactReader) throws -> Void) throws {
        depth += 1
        guard depth <= Self.maxDepth else { throw ParquetFormatError("thrift values nested too deeply") }
        defer { depth -= 1 }
        try body(&self)
    }

    /// Skips a list/set/map element: bools there take one byte.
    mutating func skipElement(_ type: UInt8) throws {
        if type == ThriftCompactType.boolTrue.rawValue || type == ThriftCompactType.boolFalse.rawValue {
            _ = try readByte()
        } else {
            try skip(type)
        }
    }
}
