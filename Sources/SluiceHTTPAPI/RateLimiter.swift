/// A token bucket: `burst` requests at once, refilled at `perSecond`. Used by one task.
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

    /// Waits until a request may go, and takes its token.
    mutating func acquire() async throws {
        refill()
        if tokens < 1 {
            let wait = (1 - tokens) / perSecond
            try await Task.sleep(for: .nanoseconds(Int64((wait * 1e9).rounded(.up))))
            refill()
        }
        tokens -= 1
    }

    private mutating func refill() {
        let now = ContinuousClock.Instant.now
        let elapsed = updated.duration(to: now)
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        tokens = min(burst, tokens + seconds * perSecond)
        updated = now
    }
}
