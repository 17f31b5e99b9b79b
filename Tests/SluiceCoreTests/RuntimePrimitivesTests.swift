@testable import SluiceCore
import Testing

@Suite struct AcknowledgementTrackerTests {
    @Test func watermarkWaitsForTheOldestOutstandingBatch() {
        var t = AcknowledgementTracker()
        let a = t.register(SourcePosition(partition: "f", value: "10"))
        let b = t.register(SourcePosition(partition: "f", value: "20"))
        let c = t.register(SourcePosition(partition: "g", value: "5"))
        #expect(t.complete(b).isEmpty)
        #expect(t.complete(c).isEmpty)
        #expect(t.complete(a) == ["f": "20", "g": "5"])
        #expect(t.inFlight == 0)
    }

    @Test func inOrderCompletionAdvancesEachTime() {
        var t = AcknowledgementTracker()
        for i in 1...3000 {
            let s = t.register(SourcePosition(partition: "", value: "\(i)"))
            #expect(t.complete(s) == ["": "\(i)"])
        }
    }
}

@Suite struct RetryPolicyTests {
    @Test func ceilingDoublesUpToMax() {
        let p = RetryPolicy(maxAttempts: 10, baseDelay: .milliseconds(100), maxDelay: .seconds(1))
        #expect(p.ceiling(attempt: 1) == .milliseconds(100))
        #expect(p.ceiling(attempt: 2) == .milliseconds(200))
        #expect(p.ceiling(attempt: 4) == .milliseconds(800))
        #expect(p.ceiling(attempt: 5) == .seconds(1))
        #expect(p.ceiling(attempt: 60) == .seconds(1))
    }

    @Test func fullJitterStaysWithinCeiling() {
        let p = RetryPolicy(maxAttempts: 10, baseDelay: .milliseconds(100), maxDelay: .seconds(1))
        var g = SystemRandomNumberGenerator()
        var distinct = Set<Duration>()
        for _ in 0..<200 {
            let d = p.delay(attempt: 3, using: &g)
            #expect(d >= .zero && d <= .milliseconds(400))
            distinct.insert(d)
        }
        #expect(distinct.count > 50)
    }

    @Test func retryAfterIsHonoured() {
        let p = RetryPolicy(maxAttempts: 10, baseDelay: .milliseconds(10), maxDelay: .seconds(1))
        var g = SystemRandomNumberGenerator()
        #expect(p.delay(attempt: 1, retryAfter: .seconds(3), using: &g) == .seconds(3))
    }
}

@Suite struct BoundedBufferTests {
    @Test func producerWaitsWhenFull() async throws {
        let buffer = BoundedBuffer<Int>(maxCount: 2, maxBytes: 1 << 30)
        try await buffer.send(1, bytes: 1)
        try await buffer.send(2, bytes: 1)
        let producer = Task {
            try await buffer.send(3, bytes: 1); return true
        }
        try await Task.sleep(for: .milliseconds(100))
        #expect(buffer.depth == 2)
        guard case .element(1) = try await buffer.next() else { Issue.record("expected 1"); return }
        #expect(try await producer.value)
        #expect(buffer.depth == 2)
        buffer.finish()
        guard case .element(2) = try await buffer.next(), case .element(3) = try await buffer.next(),
            case .finished = try await buffer.next()
        else { Issue.record("wrong order"); return }
    }

    @Test func byteBoundAdmitsOneOversizedElement() async throws {
        let buffer = BoundedBuffer<Int>(maxCount: 10, maxBytes: 100)
        try await buffer.send(1, bytes: 500)
        let producer = Task { try await buffer.send(2, bytes: 10) }
        try await Task.sleep(for: .milliseconds(50))
        #expect(buffer.depth == 1)
        _ = try await buffer.next()
        try await producer.value
        #expect(buffer.depth == 1)
    }

    @Test func timeoutsNeverLoseElements() async throws {
        let buffer = BoundedBuffer<Int>(maxCount: 4, maxBytes: 1 << 30)
        let n = 2000
        let producer = Task {
            for i in 0..<n {
                try await buffer.send(i, bytes: 1)
                if i % 7 == 0 { try await Task.sleep(for: .microseconds(200)) }
            }
            buffer.finish()
        }
        var received: [Int] = []
        var timeouts = 0
        loop: while true {
            switch try await buffer.next(timeout: .microseconds(100)) {
            case let .element(v): received.append(v)
            case .timeout: timeouts += 1
            case .finished: break loop
            }
        }
        try await producer.value
        #expect(received == Array(0..<n))
    }

    final class Payload: Sendable {}

    /// A consumed element must not stay referenced by the buffer (that kept ~65 batches alive).
    @Test func consumedElementsAreReleased() async throws {
        let buffer = BoundedBuffer<Payload>(maxCount: 8, maxBytes: 1 << 30)
        weak var first: Payload?
        try await {
            let p = Payload()
            first = p
            try await buffer.send(p, bytes: 1)
        }()
        try await buffer.send(Payload(), bytes: 1)
        try await buffer.send(Payload(), bytes: 1)
        _ = try await buffer.next()
        #expect(first == nil, "the buffer still holds a consumed element")
        #expect(buffer.depth == 2)
    }

    @Test func failurePropagatesAfterRemainingElements() async throws {
        struct Boom: Error {}
        let buffer = BoundedBuffer<Int>(maxCount: 4, maxBytes: 100)
        try await buffer.send(1, bytes: 1)
        buffer.finish(throwing: Boom())
        guard case .element(1) = try await buffer.next() else { Issue.record("expected 1"); return }
        await #expect(throws: Boom.self) { _ = try await buffer.next() }
    }
}

@Suite struct TemporalTextTests {
    func ts(_ s: String) -> Int64? {
        var s = s
        return s.withUTF8 { TemporalText.parseTimestamp($0) }
    }

    @Test func parsesAndFormatsTimestamps() {
        #expect(ts("1970-01-01T00:00:00Z") == 0)
        #expect(ts("2026-11-25T10:20:30.123456Z") == 1_795_602_030_123_456)
        #expect(ts("2026-11-25 10:20:30+01:00") == 1_795_598_430_000_000)
        #expect(ts("1969-12-31T23:59:59.5Z") == -500_000)
        #expect(ts("2026-02-30T00:00:00Z") == nil)
        #expect(ts("2026-11-25T10:20") == 1_795_602_000_000_000)
        #expect(ts("garbage") == nil)
        for micros: Int64 in [0, -1, 1_795_602_030_123_456, -62_135_596_800_000_000, 4_102_444_800_000_001, -2_208_988_800_000_000] {
            #expect(ts(TemporalText.formatTimestamp(micros: micros)) == micros)
        }
        #expect(TemporalText.formatTimestamp(micros: -500_000) == "1969-12-31T23:59:59.500000Z")
        #expect(TemporalText.formatDate(days: 0) == "1970-01-01")
        #expect(TemporalText.formatDate(days: 47_482) == "2100-01-01")
    }

    @Test func decimals() {
        func dec(_ s: String, _ p: Int, _ sc: Int) -> Int128? {
            var s = s
            return s.withUTF8 { DecimalText.parse($0, precision: p, scale: sc) }
        }
        #expect(dec("123.45", 10, 2) == 12345)
        #expect(dec("-0.5", 10, 2) == -50)
        #expect(dec("1.234", 10, 2) == nil)
        #expect(dec("123456789", 10, 2) == nil)
        #expect(DecimalText.format(-5, scale: 2) == "-0.05")
        #expect(DecimalText.format(12345, scale: 0) == "12345")
        let max38 = Int128("99999999999999999999999999999999999999")!
        #expect(DecimalText.format(max38, scale: 10) == "9999999999999999999999999999.9999999999")
    }
}

@Suite(.timeLimit(.minutes(1))) struct StopSignalTests {
    /// Waits until `signal` has a sleeper registered (a condition, not a delay).
    static func untilWaiting(_ signal: StopSignal) async {
        while signal.waiting == 0 { await Task.yield() }
    }

    @Test func setWakesASleeperLongBeforeItsDeadline() async {
        let signal = StopSignal()
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await signal.sleep(for: .seconds(3600)) }
            // The sleeper is registered, so `set` must wake it (a set before it would not test that).
            await Self.untilWaiting(signal)
            signal.set()
        }
        #expect(signal.isSet)
        #expect(signal.waiting == 0)
        // Once set, sleeping returns at once.
        await signal.sleep(for: .seconds(3600))
    }

    @Test func cancellationWakesASleeper() async {
        let signal = StopSignal()
        let sleeper = Task { await signal.sleep(for: .seconds(3600)) }
        await Self.untilWaiting(signal)
        sleeper.cancel()
        await sleeper.value
        #expect(!signal.isSet)
        #expect(signal.waiting == 0)
    }

    @Test func aSleepEndsAtItsDeadline() async {
        let signal = StopSignal()
        let started = ContinuousClock.now
        await signal.sleep(for: .milliseconds(20))
        #expect(ContinuousClock.now - started >= .milliseconds(20))
        #expect(!signal.isSet)
    }
}
