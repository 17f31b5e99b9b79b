/// Splits a byte stream from the server into packets, and frames payloads to send.
///
/// A packet is a 3-byte little-endian payload length and a 1-byte sequence id, then the payload.
/// A payload of 16 MiB − 1 bytes or more is sent as several packets, each full one (exactly
/// 0xFFFFFF bytes) followed by the next; the framer joins them into one logical payload.
public struct MySQLPacketFramer {
    public static let maxPacketPayload = 0xFF_FFFF

    /// One logical packet: its payload and the sequence id of its last part.
    public struct Packet: Equatable, Sendable {
        public var sequence: UInt8
        public var payload: [UInt8]
    }

    private var buffer: [UInt8] = []
    private var start = 0
    private var partial: [UInt8] = []
    /// The largest logical payload accepted; a longer one is refused rather than buffered.
    public var maxPayload: Int

    public init(maxPayload: Int = 1 << 30) {
        self.maxPayload = maxPayload
    }

    /// Bytes received and not yet part of a returned packet.
    public var bufferedBytes: Int { buffer.count - start + partial.count }

    public mutating func append(_ bytes: some Sequence<UInt8>) {
        if start > 0 && start >= buffer.count / 2 {
            buffer.removeFirst(start)
            start = 0
        }
        buffer.append(contentsOf: bytes)
    }

    /// The next complete logical packet, or nil until more bytes arrive.
    public mutating func next() throws -> Packet? {
        while buffer.count - start >= 4 {
            let length = Int(buffer[start]) | Int(buffer[start + 1]) << 8 | Int(buffer[start + 2]) << 16
            let sequence = buffer[start + 3]
            guard buffer.count - start - 4 >= length else { return nil }
            guard partial.count + length <= maxPayload else {
                throw MySQLProtocolError("a packet of more than \(maxPayload) bytes", at: 0)
            }
            partial.append(contentsOf: buffer[(start + 4)..<(start + 4 + length)])
            start += 4 + length
            if length == Self.maxPacketPayload { continue }
            defer { partial = [] }
            return Packet(sequence: sequence, payload: partial)
        }
        return nil
    }

    /// `payload` framed as packets from sequence id `sequence` on; returns the bytes and the next
    /// sequence id.
    public static func frame(_ payload: [UInt8], sequence: UInt8) -> (bytes: [UInt8], next: UInt8) {
        var out: [UInt8] = []
        out.reserveCapacity(payload.count + 4 * (payload.count / maxPacketPayload + 1))
        var seq = sequence
        var offset = 0
        while true {
            let length = min(payload.count - offset, maxPacketPayload)
            out += [UInt8(length & 0xFF), UInt8((length >> 8) & 0xFF), UInt8(length >> 16), seq]
            out += payload[offset..<(offset + length)]
            seq &+= 1
            offset += length
            // A payload ending on a full packet is closed by an empty one.
            if length < maxPacketPayload { break }
        }
        return (out, seq)
    }
}
