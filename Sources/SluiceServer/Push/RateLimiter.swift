import Foundation
import Synchronization

/// Token buckets by name (a stream, an API key). One token per request.
public final class RateLimiter: Sendable {
    public struct Decision: Sendable {
        public var allowed: Bool
        public var limit: Int
        public var remaining: Int
        /// Seconds until a token is available (when refused) or the bucket is full again.
        public var resetSeconds: Int
        public var retryAfterSeconds: Int
    }

    struct Bucket {
        var tokens: Double
        var updated: ContinuousClock.Instant
    }

    private let buckets = Mutex<[String: Bucket]>([:])

    public init() {}

    /// Takes a token from the bucket `name` configured by `options`.
    public func take(_ name: String, _ options: RateLimitOptions, now: ContinuousClock.Instant = .now) -> Decision {
        let rate = options.requestsPerSecond
        let capacity = Double(options.burst)
        return buckets.withLock { map in
            var b = map[name] ?? Bucket(tokens: capacity, updated: now)
            let elapsed = now - b.updated
            let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
            b.tokens = min(capacity, b.tokens + max(0, seconds) * rate)
            b.updated = now
            let allowed = b.tokens >= 1
            if allowed { b.tokens -= 1 }
            map[name] = b
            let retry = allowed ? 0 : Int(((1 - b.tokens) / rate).rounded(.up))
            let reset = Int(((capacity - b.tokens) / rate).rounded(.up))
            return Decision(
                allowed: allowed, limit: options.burst, remaining: Int(b.tokens), resetSeconds: max(reset, retry),
                retryAfterSeconds: max(1, retry))
        }
    }
}
