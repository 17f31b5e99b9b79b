/// A token bucket: `burst` requests at once, refilled at `perSecond`. Requests reserve their
/// token at once and wait their turn, so requests made together (fan-out) share the rate.
struct RateLimiter {
    let perSecond: Double
    let burst: Double
    private var tokens: Double
    private var updated: ContinuousClock.Instant

    init(perSecond: Double, burst: Int) {
        self.perSecond = perSecond
        self.burst = Double(burst)
        tokens = Double(burst)
        updated = .now
    }

    /// Takes a token and returns how long to wait before sending (zero when one was there).
    mutating func reserve() -> Duration {
        let now = ContinuousClock.Instant.now
        let elapsed = updated.duration(to: now)
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        tokens = min(burst, tokens + seconds * perSecond)
        updated = now
        tokens -= 1
        guard tokens < 0 else { return .zero }
        return .nanoseconds(Int64((-tokens / perSecond * 1e9).rounded(.up)))
    }
}
