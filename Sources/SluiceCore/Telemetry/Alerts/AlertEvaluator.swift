import Foundation

/// A transition of one alert, as recorded and notified.
public struct AlertTransition: Sendable, Hashable {
    public enum State: String, Sendable { case firing, resolved }
    public var state: State
    public var rule: AlertRule
    /// The measured value at the transition.
    public var value: Double
    /// When the alert started firing (for a resolution: when it had fired).
    public var firedAt: Date
    public var at: Date
    /// The alert's id in the state store (set once recorded).
    public var id: Int64?

    public init(state: State, rule: AlertRule, value: Double, firedAt: Date, at: Date, id: Int64? = nil) {
        self.state = state
        self.rule = rule
        self.value = value
        self.firedAt = firedAt
        self.at = at
        self.id = id
    }
}

/// The alert rules of one pipeline evaluated over samples of its live counters (never over the
/// metrics registry): a pure state machine, fed a snapshot per evaluation, that says which
/// alerts start firing and which resolve.
///
/// A rule's condition must hold for its `for:` duration before the alert fires (pending until
/// then); it resolves at the first evaluation where the condition no longer holds.
public struct AlertEvaluator: Sendable {
    public struct Sample: Sendable {
        var time: Date
        var snapshot: PipelineStatus.Snapshot
    }

    public let rules: [AlertRule]
    /// Samples within the longest window, oldest first.
    private(set) var samples: [Sample] = []
    /// Since when each rule's condition has held (pending or firing), by rule name.
    private(set) var holdingSince: [String: Date] = [:]
    /// Alerts firing now: when they fired, and their store id.
    private(set) var firing: [String: (since: Date, id: Int64?)] = [:]
    private let keep: TimeInterval

    public init(rules: [AlertRule]) {
        self.rules = rules
        keep = rules.map { AlertRule.seconds($0.window) }.max() ?? 0
    }

    /// Takes over alerts a previous process left firing (they resolve, rather than fire again).
    public mutating func adopt(name: String, firedAt: Date, id: Int64) {
        guard rules.contains(where: { $0.name == name }) else { return }
        firing[name] = (firedAt, id)
        holdingSince[name] = firedAt
    }

    public mutating func setID(_ id: Int64, for name: String) {
        firing[name]?.id = id
    }

    public func id(of name: String) -> Int64? { firing[name]?.id }

    public var firingNames: [String] { firing.keys.sorted() }

    /// Adds a sample of the pipeline's counters at `now` and evaluates every rule.
    /// `volumeBaseline` is the volume-drop rule's signal: the last complete hour's records read
    /// and the average of the same hour on previous days (nil when history does not allow it).
    public mutating func evaluate(
        _ snapshot: PipelineStatus.Snapshot, now: Date, volume: (lastHour: Int, baseline: Double)? = nil, cost: (lastHour: Double, baseline: Double)? = nil
    ) -> [AlertTransition] {
        samples.append(Sample(time: now, snapshot: snapshot))
        // Keep one sample at or before the longest window's start, for its deltas.
        while samples.count > 2, now.timeIntervalSince(samples[1].time) >= keep { samples.removeFirst() }
        var transitions: [AlertTransition] = []
        for rule in rules {
            let (known, value) = Self.condition(rule, samples: samples, now: now, volume: volume, cost: cost)
            // Unknown (nothing read in the window, no batch committed, no history): the alert
            // keeps its state, so an alert adopted after a restart does not resolve for lack of data.
            guard let holds = known else { continue }
            if holds {
                let since = holdingSince[rule.name] ?? now
                holdingSince[rule.name] = since
                if firing[rule.name] == nil, now.timeIntervalSince(since) >= AlertRule.seconds(rule.forDuration) {
                    firing[rule.name] = (now, nil)
                    transitions.append(AlertTransition(state: .firing, rule: rule, value: value, firedAt: now, at: now))
                }
            } else {
                holdingSince[rule.name] = nil
                if let fired = firing.removeValue(forKey: rule.name) {
                    transitions.append(AlertTransition(state: .resolved, rule: rule, value: value, firedAt: fired.since, at: now, id: fired.id))
                }
            }
        }
        return transitions
    }

    /// Whether `rule`'s condition holds over `samples` (the last is now), nil when its signal is
    /// unknown, and the value measured.
    static func condition(
        _ rule: AlertRule, samples: [Sample], now: Date, volume: (lastHour: Int, baseline: Double)?, cost: (lastHour: Double, baseline: Double)?
    ) -> (Bool?, Double) {
        guard let current = samples.last?.snapshot else { return (nil, 0) }
        // The sample at the start of the window (the newest one at or before it, else the oldest).
        let start = now.addingTimeInterval(-AlertRule.seconds(rule.window))
        let base = samples.last { $0.time <= start }?.snapshot ?? samples.first!.snapshot
        switch rule.kind {
        case .stopped:
            guard let since = current.lastCommit ?? current.startedAt else { return (nil, 0) }
            let idle = now.timeIntervalSince(since)
            // A failed pipeline has stopped, whatever the time; a finished one has not.
            if current.failed { return (true, idle) }
            if current.finished { return (false, idle) }
            // A scheduled source commits once per pull: allow the interval between pulls.
            return (idle > rule.threshold + (current.pullInterval ?? 0), idle)
        case .errorRate:
            let read = current.recordsIn - base.recordsIn
            let dead = current.deadLettered - base.deadLettered
            guard read > 0 else { return (nil, 0) }
            let rate = Double(dead) / Double(read)
            return (rate > rule.threshold, rate)
        case .latency:
            let counts = zip(current.latencyBuckets, base.latencyBuckets).map { $0 - $1 }
            guard let p99 = quantile(0.99, counts: counts) else { return (nil, 0) }
            return (p99 > rule.threshold, p99)
        case .deadLetters:
            guard let size = current.deadLetterQueue.map(Double.init) else { return (nil, 0) }
            return (size > rule.threshold, size)
        case .missingData:
            let missing = Double(current.missingRecords - base.missingRecords)
            return (missing > 0, missing)
        case .schemaDrift:
            let drifts = Double(current.schemaDrifts - base.schemaDrifts)
            return (drifts > 0, drifts)
        case .volumeDrop:
            guard let volume, volume.baseline > 0 else { return (nil, 0) }
            let drop = 1 - Double(volume.lastHour) / volume.baseline
            return (drop > rule.threshold, drop)
        case .costSpike:
            guard let cost, cost.baseline > 0 else { return (nil, 0) }
            let rise = cost.lastHour / cost.baseline - 1
            return (rise > rule.threshold, rise)
        }
    }

    /// The `q` quantile of latencies counted per bucket, interpolated within its bucket as
    /// Prometheus's `histogram_quantile` does; nil when nothing was counted.
    static func quantile(_ q: Double, counts: [Int]) -> Double? {
        let total = counts.reduce(0, +)
        guard total > 0 else { return nil }
        let bounds = PipelineMetrics.endToEndLatencyBuckets.map(AlertRule.seconds)
        let rank = q * Double(total)
        var seen = 0
        for (index, count) in counts.enumerated() {
            if Double(seen + count) >= rank, count > 0 {
                guard index < bounds.count else { return bounds.last }  // +Inf: the highest finite bound
                let lower = index == 0 ? 0 : bounds[index - 1]
                return lower + (bounds[index] - lower) * (rank - Double(seen)) / Double(count)
            }
            seen += count
        }
        return bounds.last
    }
}
