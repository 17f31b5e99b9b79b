import Crypto
import Foundation
import SluiceCore

/// API keys: `slk_<id>_<secret>`. Only the SHA-256 of the secret is stored; the id finds the row.
public enum APIKeyFormat {
    public static let prefix = "slk_"

    /// A new random key and the row to store for it. `scopes` are stream names, `*` (every
    /// stream) and ``StoredAPIKey/registryWriteScope``; a key without scopes can do nothing.
    public static func generate(name: String, streams scopes: [String], now: Date = Date()) -> (key: String, stored: StoredAPIKey) {
        let id = randomToken(bytes: 6)
        let secret = randomToken(bytes: 24)
        let stored = StoredAPIKey(id: id, name: name, secretHash: hash(secret: secret), streams: scopes, createdAt: now)
        return ("\(prefix)\(id)_\(secret)", stored)
    }

    /// Splits a presented key into id and secret; nil when it is not shaped like one.
    public static func parse(_ key: Substring) -> (id: String, secret: Substring)? {
        guard key.hasPrefix(prefix), key.utf8.count <= 200 else { return nil }
        let rest = key.dropFirst(prefix.count)
        guard let underscore = rest.firstIndex(of: "_") else { return nil }
        let id = rest[..<underscore], secret = rest[rest.index(after: underscore)...]
        guard !id.isEmpty, !secret.isEmpty else { return nil }
        return (String(id), secret)
    }

    public static func hash(secret: some StringProtocol) -> String {
        SHA256.hash(data: Array(secret.utf8)).map { String(format: "%02x", $0) }.joined()
    }

    /// True when `secret` hashes to `storedHash`, compared in constant time.
    public static func matches(secret: Substring, storedHash: String) -> Bool {
        constantTimeEqual(Array(hash(secret: secret).utf8), Array(storedHash.utf8))
    }

    static func randomToken(bytes: Int) -> String {
        var g = SystemRandomNumberGenerator()
        let alphabet = Array("abcdefghijklmnopqrstuvwxyz0123456789")
        // ~5.17 bits per character: 8 bits of entropy per byte asked for, rounded up.
        let count = (bytes * 8 + 4) / 5
        return String((0..<count).map { _ in alphabet[Int(g.next() % UInt64(alphabet.count))] })
    }
}

/// Compares two byte strings without an early exit (length differences still return false).
public func constantTimeEqual(_ a: [UInt8], _ b: [UInt8]) -> Bool {
    var diff: UInt8 = a.count == b.count ? 0 : 1
    for i in 0..<max(a.count, b.count) {
        diff |= (i < a.count ? a[i] : 0) ^ (i < b.count ? b[i] : 0)
    }
    return diff == 0
}

/// HMAC-SHA256 webhook signatures: `sha256=<hex>` over `"<timestamp>.<raw body>"`.
public enum WebhookSignature {
    /// The header value a sender sends.
    public static func sign(body: some Sequence<UInt8>, timestamp: Int, secret: String) -> String {
        let mac = HMAC<SHA256>.authenticationCode(for: Array("\(timestamp).".utf8) + Array(body), using: SymmetricKey(data: Array(secret.utf8)))
        return "sha256=" + mac.map { String(format: "%02x", $0) }.joined()
    }

    /// The key under which a verified signed request is remembered for its tolerance window, so
    /// a replay of it (same timestamp, same body) is refused: `hmac <hex MAC>`.
    public static func replayKey(body: [UInt8], timestampHeader: String?, secret: String) -> String? {
        guard let t = timestampHeader, let timestamp = Int(t.trimmingCharacters(in: .whitespaces)) else { return nil }
        return "hmac " + sign(body: body, timestamp: timestamp, secret: secret).dropFirst("sha256=".count)
    }

    /// How long a replay key must be kept: a timestamp is accepted up to `tolerance` either side
    /// of the receiver's clock, so one signature stays valid for twice the tolerance.
    public static func replayWindow(tolerance: Duration) -> Duration { tolerance * 2 + .seconds(60) }

    /// Why a signature is refused (never sent to the client; counted and logged), or nil when it holds.
    public static func verify(
        body: [UInt8], timestampHeader: String?, signatureHeader: String?, secret: String,
        tolerance: Duration, now: Date = Date()
    ) -> String? {
        guard let t = timestampHeader, let timestamp = Int(t.trimmingCharacters(in: .whitespaces)) else { return "missing_timestamp" }
        guard abs(now.timeIntervalSince1970 - Double(timestamp)) <= Double(tolerance.components.seconds) else { return "stale_timestamp" }
        guard let header = signatureHeader else { return "missing_signature" }
        // Several signatures may be sent during a secret rotation: `sha256=a, sha256=b`.
        let expected = Array(sign(body: body, timestamp: timestamp, secret: secret).utf8)
        var ok = false
        for part in header.split(separator: ",") {
            let candidate = Array(part.trimmingCharacters(in: .whitespaces).utf8)
            if constantTimeEqual(candidate, expected) { ok = true }
        }
        return ok ? nil : "bad_signature"
    }
}
