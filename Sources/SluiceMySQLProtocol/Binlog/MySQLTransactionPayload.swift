import CZstd

/// A MySQL transaction compressed as one event (`TRANSACTION_PAYLOAD_EVENT`, MySQL 8.0.20+ with
/// `binlog_transaction_compression=ON`): the events of the transaction, each with its 19-byte
/// header and without a checksum, one after the other. The GTID event stays outside.
///
/// The events are decoded one at a time (``MySQLBinlogDecoder/decodeInner(_:at:)``), so a large
/// transaction is held once, as bytes, not again as decoded events.
public struct MySQLTransactionPayload: Equatable, Sendable {
    /// The decompressed events.
    public var events: [UInt8]

    public init(events: [UInt8]) {
        self.events = events
    }

    /// The compression types of MySQL's `transaction::compression::type`.
    static let zstd: UInt64 = 0
    static let none: UInt64 = 255

    /// Reads the event's body: fields as (type, length, value) triples of length-encoded integers
    /// (the compression type, the uncompressed size, the payload's size) up to an end mark (type
    /// 0), then the payload.
    init(body: [UInt8]) throws {
        var r = MySQLByteReader(body)
        var compression: UInt64?
        var payloadSize: UInt64?
        var uncompressedSize: UInt64?
        while true {
            guard let type = try r.lengthEncodedInteger("payload field type") else {
                throw MySQLProtocolError("a transaction payload field without a type", at: r.offset)
            }
            if type == 0 { break }
            guard let length = try r.lengthEncodedInteger("payload field length"), length <= 9 else {
                throw MySQLProtocolError("a transaction payload field of an impossible length", at: r.offset)
            }
            switch type {
            case 1, 2, 3:
                let start = r.offset
                guard let value = try r.lengthEncodedInteger("payload field value"), r.offset - start == Int(length) else {
                    throw MySQLProtocolError("a transaction payload field whose value does not fill its length", at: start)
                }
                if type == 1 { payloadSize = value } else if type == 2 { compression = value } else { uncompressedSize = value }
            default:
                try r.skip(Int(length), "an unknown transaction payload field")  // later fields are skipped, as MySQL does
            }
        }
        let payload = r.rest()
        guard let payloadSize, payloadSize == UInt64(payload.count) else {
            throw MySQLProtocolError(
                "a transaction payload of \(payload.count) bytes that says it has \(payloadSize.map(String.init) ?? "no size")", at: r.offset)
        }
        switch compression ?? Self.none {
        case Self.none:
            events = payload
        case Self.zstd:
            events = try Self.decompress(payload, size: uncompressedSize ?? payloadSize, at: r.offset)
        case let other:
            throw MySQLProtocolError("a transaction payload compressed with type \(other); only zstd (0) and none (255) are known", at: r.offset)
        }
    }

    /// Decompresses a zstd payload that must hold exactly `size` bytes (at most
    /// ``MySQLBinlogDecoder/largestUncompressed``).
    static func decompress(_ payload: [UInt8], size: UInt64, at offset: Int) throws -> [UInt8] {
        guard size > 0, size <= UInt64(MySQLBinlogDecoder.largestUncompressed) else {
            throw MySQLProtocolError("a compressed transaction that says it holds \(size) bytes (at most 1 GiB is read)", at: offset)
        }
        let declared = payload.withUnsafeBytes { ZSTD_getFrameContentSize($0.baseAddress, $0.count) }
        // ZSTD_CONTENTSIZE_UNKNOWN and _ERROR are the two largest values: either is refused below.
        guard declared == size else {
            throw MySQLProtocolError("a compressed transaction whose zstd frame holds \(declared) bytes, not the \(size) its event says", at: offset)
        }
        var out = [UInt8](repeating: 0, count: Int(size))
        let n = out.withUnsafeMutableBytes { dst in
            payload.withUnsafeBytes { src in ZSTD_decompress(dst.baseAddress, dst.count, src.baseAddress, src.count) }
        }
        guard ZSTD_isError(n) == 0, n == Int(size) else {
            let reason = ZSTD_isError(n) != 0 ? String(cString: ZSTD_getErrorName(n)) : "\(n) bytes"
            throw MySQLProtocolError("a compressed transaction that does not decompress to its \(size) bytes (\(reason))", at: offset)
        }
        return out
    }
}

extension MySQLBinlogDecoder {
    /// The next event of `payload` from `offset` (which it moves past the event), or nil after the
    /// last. Its header is the one inside the payload: its position is not a place in the file.
    public mutating func decodeInner(_ payload: MySQLTransactionPayload, at offset: inout Int) throws -> (
        header: MySQLBinlogEventHeader, event: MySQLBinlogEvent
    )? {
        let events = payload.events
        guard offset < events.count else { return nil }
        guard events.count - offset >= MySQLBinlogEventHeader.size else {
            throw MySQLProtocolError("a compressed transaction ends inside an event header", at: offset)
        }
        let header = try MySQLBinlogEventHeader(parsing: Array(events[offset..<(offset + MySQLBinlogEventHeader.size)]))
        let size = Int(header.eventSize)
        guard size >= MySQLBinlogEventHeader.size, size <= events.count - offset else {
            throw MySQLProtocolError("an event of \(size) bytes inside a compressed transaction of \(events.count - offset) more", at: offset + 9)
        }
        switch header.type {
        case MySQLBinlogEventType.transactionPayload, MySQLBinlogEventType.formatDescription, MySQLBinlogEventType.rotate:
            throw MySQLProtocolError("a binlog event of type \(header.type) inside a compressed transaction", at: offset + 4)
        default:
            break
        }
        let body = Array(events[(offset + MySQLBinlogEventHeader.size)..<(offset + size)])
        offset += size
        return (header, try decodeBody(header.type, body, checksummed: false))
    }
}
