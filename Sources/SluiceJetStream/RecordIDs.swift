import Foundation
import SluiceCore

/// The `Sluice-Record-Ids` header of a message that packs change events: one token per record,
/// in the order of the payload's lines, separated by spaces. A token is the 128-bit SipHash-2-4
/// (fixed public seed) of the record's own id (the id it would have as a message of its own:
/// `<pipeline>:<lsn>:<seq>`, or a snapshot read's epoch, table and key; see
/// ``ChangeEventIDs``), in unpadded base64url: 22 characters.
///
/// The message itself is named by its first record's id. After a crash the writer reads what
/// the stream took since the last commit and skips the records it finds here when the source
/// sends them again, whatever messages the replay packs them into (a snapshot read again with
/// watermarks comes in other chunks than the first time).
enum RecordIDs {
    static let header = "Sluice-Record-Ids"
    /// At most this many records a message: JetStream refuses headers over 64 KB, and each
    /// token takes 23 bytes.
    static let maxPerMessage = 2_700
    /// Not a secret: the hash names records, it does not hide them.
    static let seed = DedupeSeed(k0: 0x736c_7569_6365_2d72, k1: 0x6563_6f72_642d_6964)

    /// The token of a record's own id.
    static func hash(_ id: String) -> DedupeHash { SipHash128.hash(text: id, seed: seed) }

    /// The `Nats-Msg-Id` of a packed message: its first record's id and a hash of all its
    /// tokens (the header value). A replay that packs other records behind the same first one
    /// (the stream lost the first message to a limit, its id still in the duplicate window) is
    /// then stored, not dropped whole with the records the first message lacked.
    static func messageID(first: String, tokens: [UInt8]) -> String {
        let h = SipHash128.hash(tokens, seed: seed)
        return first + "#" + String(h.high, radix: 16)
    }

    static let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_".utf8)
    static let values: [UInt8] = {
        var table = [UInt8](repeating: 0xff, count: 256)
        for (i, c) in alphabet.enumerated() { table[Int(c)] = UInt8(i) }
        return table
    }()

    /// Appends the header value for `hashes`.
    static func encode(_ hashes: [DedupeHash], into out: inout [UInt8]) {
        for (n, h) in hashes.enumerated() {
            if n > 0 { out.append(32) }
            // 128 bits, high first, as 21 groups of 6 bits and the last 2 (unpadded base64url).
            for k in 0..<21 {
                let p = 6 * k
                let sextet: UInt64
                if p + 6 <= 64 {
                    sextet = h.high >> UInt64(58 - p)
                } else if p >= 64 {
                    sextet = h.low >> UInt64(122 - p)
                } else {
                    sextet = h.high << UInt64(p + 6 - 64) | h.low >> UInt64(128 - p - 6)
                }
                out.append(alphabet[Int(sextet & 63)])
            }
            out.append(alphabet[Int((h.low & 3) << 4)])
        }
    }

    static func encode(_ hashes: [DedupeHash]) -> String {
        var out: [UInt8] = []
        out.reserveCapacity(hashes.count * 23)
        encode(hashes, into: &out)
        return String(decoding: out, as: UTF8.self)
    }

    /// The hashes of a header value, or nil when a token is not 22 characters of base64url.
    static func parse(_ value: some StringProtocol) -> [DedupeHash]? {
        var hashes: [DedupeHash] = []
        for token in value.utf8.split(separator: 32) {
            guard token.count == 22 else { return nil }
            var bytes = [UInt8](repeating: 0, count: 16)
            var digits: [UInt8] = []
            digits.reserveCapacity(22)
            for c in token {
                let v = values[Int(c)]
                guard v != 0xff else { return nil }
                digits.append(v)
            }
            for g in 0..<5 {
                let v = UInt32(digits[4 * g]) << 18 | UInt32(digits[4 * g + 1]) << 12 | UInt32(digits[4 * g + 2]) << 6 | UInt32(digits[4 * g + 3])
                bytes[3 * g] = UInt8(truncatingIfNeeded: v >> 16)
                bytes[3 * g + 1] = UInt8(truncatingIfNeeded: v >> 8)
                bytes[3 * g + 2] = UInt8(truncatingIfNeeded: v)
            }
            guard digits[21] & 15 == 0 else { return nil }
            bytes[15] = digits[20] << 2 | digits[21] >> 4
            var high: UInt64 = 0, low: UInt64 = 0
            for i in 0..<8 {
                high = high << 8 | UInt64(bytes[i])
                low = low << 8 | UInt64(bytes[8 + i])
            }
            hashes.append(DedupeHash(high: high, low: low))
        }
        return hashes
    }

    /// The value of header `name` in a message's raw header block (`NATS/1.0\r\n…`), if present.
    static func field(_ name: String, in headers: Data) -> Substring? {
        let text = String(decoding: headers, as: UTF8.self)
        for line in text.split(separator: "\r\n") {
            guard let colon = line.firstIndex(of: ":") else { continue }
            if line[..<colon].lowercased() == name.lowercased() {
                return line[line.index(after: colon)...].drop(while: { $0 == " " })
            }
        }
        return nil
    }
}
