/// Reads the protocol's basic types from a packet payload: little-endian fixed-length integers,
/// length-encoded integers and strings, NUL-terminated strings. Every read checks the bounds and
/// throws ``MySQLProtocolError`` naming the offset.
public struct MySQLByteReader {
    public let bytes: [UInt8]
    public private(set) var offset: Int

    public init(_ bytes: [UInt8], offset: Int = 0) {
        self.bytes = bytes
        self.offset = min(max(offset, 0), bytes.count)
    }

    public var remaining: Int { bytes.count - offset }
    public var isAtEnd: Bool { offset >= bytes.count }

    private func need(_ count: Int, _ what: String) throws {
        guard count >= 0, remaining >= count else {
            throw MySQLProtocolError("\(what) needs \(count) bytes, \(remaining) left", at: offset)
        }
    }

    /// `int<n>`: an unsigned little-endian integer of 1 to 8 bytes.
    public mutating func integer(_ width: Int, _ what: String = "integer") throws -> UInt64 {
        guard (1...8).contains(width) else { throw MySQLProtocolError("\(what) of \(width) bytes (1 to 8 are possible)", at: offset) }
        try need(width, what)
        var value: UInt64 = 0
        for i in 0..<width { value |= UInt64(bytes[offset + i]) << (8 * UInt64(i)) }
        offset += width
        return value
    }

    public mutating func uint8(_ what: String = "byte") throws -> UInt8 { UInt8(try integer(1, what)) }
    public mutating func uint16(_ what: String = "int<2>") throws -> UInt16 { UInt16(try integer(2, what)) }
    public mutating func uint32(_ what: String = "int<4>") throws -> UInt32 { UInt32(try integer(4, what)) }

    /// `int<lenenc>`; nil for 0xFB, which stands for NULL in row data.
    public mutating func lengthEncodedInteger(_ what: String = "int<lenenc>") throws -> UInt64? {
        let start = offset
        let first = try uint8(what)
        switch first {
        case 0..<0xFB: return UInt64(first)
        case 0xFB: return nil
        case 0xFC: return try integer(2, what)
        case 0xFD: return try integer(3, what)
        case 0xFE: return try integer(8, what)
        default:
            offset = start
            throw MySQLProtocolError("\(what) starts with 0xFF, which is not a length", at: start)
        }
    }

    /// `string<lenenc>`; nil for NULL.
    public mutating func lengthEncodedBytes(_ what: String = "string<lenenc>") throws -> [UInt8]? {
        let start = offset
        guard let length = try lengthEncodedInteger(what) else { return nil }
        guard length <= UInt64(remaining) else {
            offset = start
            throw MySQLProtocolError("\(what) of \(length) bytes, \(remaining) left", at: start)
        }
        return try self.bytes(Int(length), what)
    }

    /// A big-endian unsigned integer of 1 to 8 bytes (the binlog's temporal and DECIMAL parts).
    public mutating func bigEndianInteger(_ width: Int, _ what: String = "integer") throws -> UInt64 {
        guard (1...8).contains(width) else { throw MySQLProtocolError("\(what) of \(width) bytes (1 to 8 are possible)", at: offset) }
        try need(width, what)
        var value: UInt64 = 0
        for i in 0..<width { value = value << 8 | UInt64(bytes[offset + i]) }
        offset += width
        return value
    }

    /// `string<fix>`: exactly `count` bytes.
    public mutating func bytes(_ count: Int, _ what: String = "bytes") throws -> [UInt8] {
        try need(count, what)
        defer { offset += count }
        return Array(bytes[offset..<(offset + count)])
    }

    /// `string<NUL>`: up to a NUL byte, which is consumed.
    public mutating func nulTerminated(_ what: String = "string<NUL>") throws -> [UInt8] {
        guard let end = bytes[offset...].firstIndex(of: 0) else {
            throw MySQLProtocolError("\(what) has no terminating NUL", at: offset)
        }
        defer { offset = end + 1 }
        return Array(bytes[offset..<end])
    }

    /// `string<EOF>`: the rest of the payload.
    public mutating func rest() -> [UInt8] {
        defer { offset = bytes.count }
        return Array(bytes[min(offset, bytes.count)...])
    }

    public mutating func skip(_ count: Int, _ what: String = "bytes") throws {
        try need(count, what)
        offset += count
    }
}

/// Writes the protocol's basic types.
public struct MySQLByteWriter {
    public private(set) var bytes: [UInt8] = []

    public init() {}

    public mutating func integer(_ value: UInt64, _ width: Int) {
        for i in 0..<width { bytes.append(UInt8(truncatingIfNeeded: value >> (8 * UInt64(i)))) }
    }

    public mutating func lengthEncodedInteger(_ value: UInt64) {
        switch value {
        case 0..<0xFB: bytes.append(UInt8(value))
        case 0..<(1 << 16): bytes.append(0xFC); integer(value, 2)
        case 0..<(1 << 24): bytes.append(0xFD); integer(value, 3)
        default: bytes.append(0xFE); integer(value, 8)
        }
    }

    public mutating func lengthEncodedBytes(_ value: [UInt8]) {
        lengthEncodedInteger(UInt64(value.count))
        bytes += value
    }

    public mutating func nulTerminated(_ value: [UInt8]) {
        bytes += value
        bytes.append(0)
    }

    public mutating func append(_ value: [UInt8]) { bytes += value }
    public mutating func zeros(_ count: Int) { bytes += [UInt8](repeating: 0, count: count) }
}
