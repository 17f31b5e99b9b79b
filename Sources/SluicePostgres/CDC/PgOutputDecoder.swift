/// Decodes pgoutput (protocol version 1) messages from their bytes. Pure: no I/O, no state
/// beyond the message being read; the relation cache lives with the consumer.
public enum PgOutputDecoder {
    /// Decodes one message (the payload of an XLogData frame, or one row of
    /// `pg_logical_slot_peek_binary_changes`).
    public static func decode(_ bytes: [UInt8]) throws -> PgOutputMessage {
        var r = ByteReader(bytes)
        let tag = try r.u8()
        let message: PgOutputMessage
        switch tag {
        case UInt8(ascii: "B"):
            message = .begin(finalLSN: try r.u64(), commitTime: try r.i64(), xid: try r.u32())
        case UInt8(ascii: "C"):
            message = .commit(flags: try r.u8(), commitLSN: try r.u64(), endLSN: try r.u64(), commitTime: try r.i64())
        case UInt8(ascii: "O"):
            message = .origin(commitLSN: try r.u64(), name: try r.string())
        case UInt8(ascii: "R"):
            let oid = try r.u32()
            let namespace = try r.string()
            let name = try r.string()
            let identity = try r.u8()
            let count = try r.i16()
            guard count >= 0 else { throw PgOutputError(message: "negative column count \(count)", offset: r.offset - 2) }
            var columns: [PgColumn] = []
            columns.reserveCapacity(Int(count))
            for _ in 0..<count {
                let flags = try r.u8()
                columns.append(PgColumn(isKey: flags & 1 == 1, name: try r.string(), typeOID: try r.u32(), typeModifier: try r.i32()))
            }
            message = .relation(PgRelation(oid: oid, namespace: namespace, name: name, replicaIdentity: identity, columns: columns))
        case UInt8(ascii: "Y"):
            message = .type(oid: try r.u32(), namespace: try r.string(), name: try r.string())
        case UInt8(ascii: "I"):
            let relation = try r.u32()
            try r.expect("N")
            message = .insert(relation: relation, new: try r.tuple())
        case UInt8(ascii: "U"):
            let relation = try r.u32()
            var old: PgTuple?
            var keyOnly = false
            var marker = try r.u8()
            if marker == UInt8(ascii: "K") || marker == UInt8(ascii: "O") {
                keyOnly = marker == UInt8(ascii: "K")
                old = try r.tuple()
                marker = try r.u8()
            }
            guard marker == UInt8(ascii: "N") else {
                throw PgOutputError(message: "expected 'N' before the new tuple, found \(marker)", offset: r.offset - 1)
            }
            message = .update(relation: relation, old: old, oldIsKeyOnly: keyOnly, new: try r.tuple())
        case UInt8(ascii: "D"):
            let relation = try r.u32()
            let marker = try r.u8()
            guard marker == UInt8(ascii: "K") || marker == UInt8(ascii: "O") else {
                throw PgOutputError(message: "expected 'K' or 'O' in a delete, found \(marker)", offset: r.offset - 1)
            }
            message = .delete(relation: relation, old: try r.tuple(), oldIsKeyOnly: marker == UInt8(ascii: "K"))
        case UInt8(ascii: "T"):
            let count = try r.u32()
            let options = try r.u8()
            guard count <= UInt32(r.remaining / 4) else {
                throw PgOutputError(message: "truncate of \(count) relations overruns the message", offset: r.offset)
            }
            message = .truncate(relations: try (0..<count).map { _ in try r.u32() }, options: options)
        case UInt8(ascii: "M"):
            let flags = try r.u8()
            let lsn = try r.u64()
            let prefix = try r.string()
            let length = try r.u32()
            message = .message(transactional: flags & 1 == 1, lsn: lsn, prefix: prefix, content: try r.bytes(Int(length)))
        default:
            throw PgOutputError(message: "unknown message type \(tag) ('\(Character(Unicode.Scalar(tag)))')", offset: 0)
        }
        guard r.remaining == 0 else {
            throw PgOutputError(message: "\(r.remaining) bytes left after a '\(Character(Unicode.Scalar(tag)))' message", offset: r.offset)
        }
        return message
    }
}

/// Big-endian reads over a byte array, each checked against the end.
struct ByteReader {
    let bytes: [UInt8]
    var offset = 0

    init(_ bytes: [UInt8]) { self.bytes = bytes }

    var remaining: Int { bytes.count - offset }

    mutating func need(_ n: Int) throws {
        guard n >= 0, remaining >= n else {
            throw PgOutputError(message: "message ends early (need \(n) more bytes, have \(remaining))", offset: offset)
        }
    }

    mutating func u8() throws -> UInt8 {
        try need(1)
        defer { offset += 1 }
        return bytes[offset]
    }

    mutating func integer<T: FixedWidthInteger>(_: T.Type) throws -> T {
        let size = MemoryLayout<T>.size
        try need(size)
        var v: T = 0
        for i in 0..<size { v = v << 8 | T(truncatingIfNeeded: bytes[offset + i]) }
        offset += size
        return v
    }

    mutating func u32() throws -> UInt32 { try integer(UInt32.self) }
    mutating func i32() throws -> Int32 { try integer(Int32.self) }
    mutating func i16() throws -> Int16 { try integer(Int16.self) }
    mutating func u64() throws -> UInt64 { try integer(UInt64.self) }
    mutating func i64() throws -> Int64 { try integer(Int64.self) }

    mutating func bytes(_ n: Int) throws -> [UInt8] {
        try need(n)
        defer { offset += n }
        return Array(bytes[offset..<offset + n])
    }

    /// A NUL-terminated UTF-8 string.
    mutating func string() throws -> String {
        guard let end = bytes[offset...].firstIndex(of: 0) else {
            throw PgOutputError(message: "string without its terminating NUL", offset: offset)
        }
        defer { offset = end + 1 }
        return String(decoding: bytes[offset..<end], as: UTF8.self)
    }

    mutating func expect(_ marker: Character) throws {
        let b = try u8()
        guard b == marker.asciiValue! else {
            throw PgOutputError(message: "expected '\(marker)', found \(b)", offset: offset - 1)
        }
    }

    /// TupleData: i16 column count, then per column `n`, `u`, `t` + u32 length + bytes, or `b` + u32 length + bytes.
    mutating func tuple() throws -> PgTuple {
        let count = try i16()
        guard count >= 0 else { throw PgOutputError(message: "negative tuple column count \(count)", offset: offset - 2) }
        var values: PgTuple = []
        values.reserveCapacity(Int(count))
        for _ in 0..<count {
            let kind = try u8()
            switch kind {
            case UInt8(ascii: "n"): values.append(.null)
            case UInt8(ascii: "u"): values.append(.unchangedToast)
            case UInt8(ascii: "t"): values.append(.text(try bytes(Int(try u32()))))
            case UInt8(ascii: "b"): values.append(.binary(try bytes(Int(try u32()))))
            default: throw PgOutputError(message: "unknown tuple value kind \(kind)", offset: offset - 1)
            }
        }
        return values
    }
}
