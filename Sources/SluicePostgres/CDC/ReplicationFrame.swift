/// The frames of PostgreSQL's streaming replication protocol inside CopyBoth data (the docs'
/// "Streaming Replication Protocol"): what the server sends and the standby status update
/// Sluice answers with. Pure encoding and decoding; the connection is libpq's.
public enum ReplicationFrame: Sendable, Hashable {
    /// `w` XLogData: WAL data starting at `walStart`; `walEnd` is the server's current end of WAL.
    case xLogData(walStart: UInt64, walEnd: UInt64, sendTime: Int64, payload: [UInt8])
    /// `k` Primary keepalive: the server's end of WAL; `replyRequested` asks for a status update now.
    case keepalive(walEnd: UInt64, sendTime: Int64, replyRequested: Bool)

    /// Decodes one CopyData payload sent by the server.
    public static func decode(_ bytes: [UInt8]) throws -> ReplicationFrame {
        var r = ByteReader(bytes)
        let tag = try r.u8()
        switch tag {
        case UInt8(ascii: "w"):
            let start = try r.u64(), end = try r.u64(), time = try r.i64()
            return .xLogData(walStart: start, walEnd: end, sendTime: time, payload: try r.bytes(r.remaining))
        case UInt8(ascii: "k"):
            let frame = ReplicationFrame.keepalive(walEnd: try r.u64(), sendTime: try r.i64(), replyRequested: try r.u8() == 1)
            guard r.remaining == 0 else { throw PgOutputError(message: "\(r.remaining) bytes left after a keepalive", offset: r.offset) }
            return frame
        default:
            throw PgOutputError(message: "unknown replication frame type \(tag)", offset: 0)
        }
    }

    /// `r` Standby status update: WAL up to `flushed` is durable downstream, so the server may
    /// advance the slot's `confirmed_flush_lsn` there and release older WAL.
    public static func standbyStatus(written: UInt64, flushed: UInt64, applied: UInt64, clock: Int64, replyNow: Bool) -> [UInt8] {
        var out: [UInt8] = [UInt8(ascii: "r")]
        for v in [written, flushed, applied] { withUnsafeBytes(of: v.bigEndian) { out.append(contentsOf: $0) } }
        withUnsafeBytes(of: clock.bigEndian) { out.append(contentsOf: $0) }
        out.append(replyNow ? 1 : 0)
        return out
    }
}

/// Log sequence numbers as PostgreSQL writes them: `16/B374D848` (high and low 32 bits in hex).
public enum LSN {
    public static func format(_ lsn: UInt64) -> String {
        String(lsn >> 32, radix: 16, uppercase: true) + "/" + String(lsn & 0xFFFF_FFFF, radix: 16, uppercase: true)
    }

    public static func parse(_ text: String) -> UInt64? {
        let parts = text.split(separator: "/")
        guard parts.count == 2, let high = UInt32(parts[0], radix: 16), let low = UInt32(parts[1], radix: 16) else { return nil }
        return UInt64(high) << 32 | UInt64(low)
    }
}
