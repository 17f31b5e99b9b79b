/// Exponential backoff with full jitter (AWS architecture blog, "Exponential Backoff And Jitter").
///
/// Attempt `n` (1-based) waits a uniformly random time in `0 ... min(maxDelay, baseDelay · 2^(n-1))`,
/// or the server's `Retry-After` when it asked for longer.
public struct RetryPolicy: Sendable {
    public var maxAttempts = 5
    public var baseDelay: Duration = .seconds(1)
    public var maxDelay: Duration = .seconds(60)
    /// How long a finite source that broke off mid-run may stay unreachable (see ``PipelineRunner/run()``).
    public var maxOutage: Duration = .seconds(600)

    public init(maxAttempts: Int = 5, baseDelay: Duration = .seconds(1), maxDelay: Duration = .seconds(60)) {
        self.maxAttempts = maxAttempts
        self.baseDelay = baseDelay
        self.maxDelay = maxDelay
    }

    /// The largest wait before retry number `attempt` (1 = the first retry).
    public func ceiling(attempt: Int) -> Duration {
        let exponent = min(max(attempt - 1, 0), 40)
        let ceiling = baseDelay * (1 << exponent)
        return min(ceiling, maxDelay)
    }

    /// The wait before retry number `attempt`, honouring a server-requested `retryAfter`.
    public func delay(
        attempt: Int, retryAfter: Duration? = nil,
        using generator: inout some RandomNumberGenerator
    ) -> Duration {
        let ceiling = ceiling(attempt: attempt)
        let ceilingNanos = max(Int64(0), ceiling.components.seconds * 1_000_000_000 + ceiling.components.attoseconds / 1_000_000_000)
        let jittered = Duration.nanoseconds(Int64.random(in: 0...ceilingNanos, using: &generator))
        if let retryAfter, retryAfter > jittered { return min(retryAfter, maxDelay * 10) }
        return jittered
    }

    public func delay(attempt: Int, retryAfter: Duration? = nil) -> Duration {
        var g = SystemRandomNumberGenerator()
        return delay(attempt: attempt, retryAfter: retryAfter, using: &g)
    }
}
