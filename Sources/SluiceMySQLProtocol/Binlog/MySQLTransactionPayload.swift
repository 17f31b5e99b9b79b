import CZstd

/// A MySQL transaction compressed as one event (`TRANSACTION_PAYLOAD_EVENT`, MySQL 8.0.20+ with
/// `binlog_transaction_compression=ON`): the events of the transaction, each with its 19-byte
/// header and without a checksum, one after the other, in a zstd frame (or uncompressed). The
/// GTID event stays outside. Read it with a ``MySQLTransactionPayloadReader``.
public struct MySQLTransactionPayload: Equatable, Sendable {
    /// The payload as the event holds it (compressed unless ``compression`` is `none`).
    public var bytes: [UInt8]
    /// MySQL's `transaction::compression::type`: 0 zstd, 255 none.
    public var compression: UInt64
    /// The size of the events once decompressed, when the event says it.
    public var uncompressedSize: UInt64?

    static let zstd: UInt64 = 0
    static let none: UInt64 = 255

    /// Reads the event's body as MySQL's codec writes it: fields as (type, length, value)
    /// triples of length-encoded integers (compression type, uncompressed size, payload size),
    /// up to an end mark (type 0), then the payload. Unknown fields are skipped, as MySQL does.
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
            guard let length = try r.lengthEncodedInteger("payload field length"), length <= UInt64(body.count - r.offset) else {
                throw MySQLProtocolError("a transaction payload field longer than the event", at: r.offset)
            }
            switch type {
            case 1, 2, 3:
                let start = r.offset
                guard let value = try r.lengthEncodedInteger("payload field value"), r.offset - start == Int(length) else {
                    throw MySQLProtocolError("a transaction payload field whose value does not fill its length", at: start)
                }
                if type == 1 { payloadSize = value } else if type == 2 { compression = value } else { uncompressedSize = value }
            default:
                try r.skip(Int(length), "an unknown transaction payload field")
            }
        }
        bytes = r.rest()
        guard let payloadSize, payloadSize == UInt64(bytes.count) else {
            throw MySQLProtocolError(
                "a transaction payload of \(bytes.count) bytes that says it has \(payloadSize.map(String.init) ?? "no size")", at: r.offset)
        }
        // MySQL's defaults: no compression; a zero or missing uncompressed size is unknown.
        self.compression = compression ?? Self.none
        self.uncompressedSize = uncompressedSize == 0 ? nil : uncompressedSize
        guard self.compression == Self.zstd || self.compression == Self.none else {
            throw MySQLProtocolError(
                "a transaction payload compressed with type \(self.compression); only zstd (0) and none (255) are known", at: r.offset)
        }
    }
}

/// Hands out the events of a ``MySQLTransactionPayload`` one at a time, decompressing only as
/// far as the next event: a large transaction is never held whole, decompressed. The zstd
/// frame need not state its size (MySQL 8.0.20 streams it without); when the event states the
/// uncompressed size, the events must fill it exactly.
public final class MySQLTransactionPayloadReader {
    public let payload: MySQLTransactionPayload
    private var context: OpaquePointer?
    /// Bytes of the payload given to zstd so far.
    private var consumed = 0
    /// Decompressed bytes not handed out yet start at `start`.
    private var buffer: [UInt8] = []
    private var start = 0
    /// Decompressed bytes so far.
    private var produced: UInt64 = 0
    /// The frame has ended and nothing more will come.
    private var ended = false

    /// Bytes decompressed at a time.
    static let step = 1 << 17

    public init(_ payload: MySQLTransactionPayload) throws {
        self.payload = payload
        if payload.compression == MySQLTransactionPayload.zstd {
            guard let context = ZSTD_createDCtx() else { throw MySQLProtocolError("zstd could not make a decompression context", at: 0) }
            self.context = context
        } else {
            buffer = payload.bytes
            produced = UInt64(buffer.count)
            ended = true
        }
    }

    deinit {
        if let context { ZSTD_freeDCtx(context) }
    }

    /// The next event, whole (its header, body and no checksum), or nil after the last.
    public func nextEvent() throws -> [UInt8]? {
        try fill(atLeast: MySQLBinlogEventHeader.size)
        let available = buffer.count - start
        if available == 0 {
            if let size = payload.uncompressedSize, size != produced {
                throw MySQLProtocolError("a compressed transaction of \(produced) bytes that says it has \(size)", at: consumed)
            }
            return nil
        }
        guard available >= MySQLBinlogEventHeader.size else {
            throw MySQLProtocolError("a compressed transaction ends inside an event header", at: consumed)
        }
        let size = Int(buffer[start + 9]) | Int(buffer[start + 10]) << 8 | Int(buffer[start + 11]) << 16 | Int(buffer[start + 12]) << 24
        guard size >= MySQLBinlogEventHeader.size, size <= MySQLBinlogDecoder.largestUncompressed else {
            throw MySQLProtocolError("an event of \(size) bytes inside a compressed transaction", at: consumed)
        }
        try fill(atLeast: size)
        guard buffer.count - start >= size else {
            throw MySQLProtocolError("an event of \(size) bytes inside a compressed transaction of \(buffer.count - start) more", at: consumed)
        }
        let event = Array(buffer[start..<(start + size)])
        start += size
        return event
    }

    /// Decompresses until `count` bytes wait, or the frame ends.
    private func fill(atLeast count: Int) throws {
        while buffer.count - start < count, !ended, let context {
            if start > 0 {
                buffer.removeFirst(start)
                start = 0
            }
            // A step at a time: memory grows with what zstd gives, not with what a header claims.
            let room = Self.step
            let before = buffer.count
            buffer.append(contentsOf: repeatElement(0, count: room))
            let (written, read, status) = buffer.withUnsafeMutableBytes { dst in
                payload.bytes.withUnsafeBytes { src in
                    var output = ZSTD_outBuffer(dst: dst.baseAddress! + before, size: room, pos: 0)
                    var input = ZSTD_inBuffer(src: src.baseAddress, size: src.count, pos: consumed)
                    let status = ZSTD_decompressStream(context, &output, &input)
                    return (output.pos, input.pos, status)
                }
            }
            buffer.removeLast(room - written)
            if ZSTD_isError(status) != 0 {
                throw MySQLProtocolError("a compressed transaction that zstd refuses (\(String(cString: ZSTD_getErrorName(status))))", at: consumed)
            }
            let progressed = written > 0 || read > consumed
            consumed = read
            produced += UInt64(written)
            if let size = payload.uncompressedSize, produced > size {
                throw MySQLProtocolError("a compressed transaction that holds more than the \(size) bytes it says", at: consumed)
            }
            // All input taken and the output not filled: zstd has given everything it can.
            if consumed == payload.bytes.count, written < room {
                guard status == 0 else { throw MySQLProtocolError("a compressed transaction whose zstd frame is cut short", at: consumed) }
                ended = true
            } else if !progressed {
                throw MySQLProtocolError("a compressed transaction zstd makes no progress on", at: consumed)
            }
        }
    }
}

extension MySQLBinlogDecoder {
    /// The next event of `reader`'s transaction, or nil after the last. Its header is the one
    /// inside the payload: its position is not a place in the file (see ``placed(_:in:)``).
    public mutating func decodeInner(_ reader: MySQLTransactionPayloadReader) throws -> (
        header: MySQLBinlogEventHeader, event: MySQLBinlogEvent
    )? {
        guard let event = try reader.nextEvent() else { return nil }
        let header = try MySQLBinlogEventHeader(parsing: event)
        switch header.type {
        case MySQLBinlogEventType.transactionPayload, MySQLBinlogEventType.formatDescription, MySQLBinlogEventType.rotate:
            throw MySQLProtocolError("a binlog event of type \(header.type) inside a compressed transaction", at: 4)
        default:
            break
        }
        return (header, try decodeBody(header.type, Array(event[MySQLBinlogEventHeader.size...]), checksummed: false))
    }

    /// An event of a compressed transaction, placed where its payload event is in the file (its
    /// own header has no place there): it starts where the payload starts and ends where the
    /// payload ends, so a transaction inside one commits, and resumes, at the payload's end.
    public static func placed(_ inner: MySQLBinlogEventHeader, in outer: MySQLBinlogEventHeader) -> MySQLBinlogEventHeader {
        var header = inner
        header.nextPosition = outer.nextPosition
        header.eventSize = outer.eventSize
        return header
    }
}
