import Foundation
import Logging
import Metrics
import Synchronization

/// Where alert notifications go besides the log (a webhook). ``AlertEngine`` queues and
/// retries; `send` makes one attempt and throws when it was not delivered.
public protocol AlertNotifier: Sendable {
    /// Names the receiver in logs and metrics (no secrets).
    var name: String { get }
    func send(_ transition: AlertTransition) async throws
}

/// Evaluates the alert rules of running pipelines inside `sluice run` and `sluice serve`:
/// samples each pipeline's live counters every `interval`, records firing and resolved
/// transitions in the state store, logs them, and hands them to the notifiers.
///
/// Notifications go through a queue per receiver, delivered in order by its own task and
/// retried with backoff until delivered: a slow or dead receiver never slows the pipelines or
/// the evaluation, and loses nothing while the process lives. At the end
/// (``stop()``), what is still queued gets `drainTimeout` to go out.
public struct AlertEngine: Sendable {
    public struct Pipeline: Sendable {
        public var status: PipelineStatus
        public var rules: [AlertRule]
        /// Indices into the engine's notifiers.
        public var notifiers: [Int]
        /// Prices of the cost-spike rule's signal (the usage cost accounting records).
        public var pricing: PricingConfig

        public init(status: PipelineStatus, rules: [AlertRule], notifiers: [Int], pricing: PricingConfig = PricingConfig()) {
            self.status = status
            self.rules = rules
            self.notifiers = notifiers
            self.pricing = pricing
        }
    }

    public let pipelines: [Pipeline]
    public let notifiers: [any AlertNotifier]
    public let store: any StateStore
    public let interval: Duration
    public let historyTTL: Duration
    public let logger: Logger
    public var drainTimeout: Duration = .seconds(10)
    /// The delay before the first retry of a notification; doubled up to ``maxRetryDelay``.
    public var retryDelay: Duration = .milliseconds(500)
    public var maxRetryDelay: Duration = .seconds(30)
    private let stopped = StopSignal()

    public init(
        pipelines: [Pipeline], notifiers: [any AlertNotifier], store: any StateStore, interval: Duration, historyTTL: Duration, logger: Logger
    ) {
        self.pipelines = pipelines
        self.notifiers = notifiers
        self.store = store
        self.interval = interval
        self.historyTTL = historyTTL
        self.logger = logger
    }

    /// Ends ``run()``: no more evaluations; queued notifications get `drainTimeout`.
    public func stop() { stopped.set() }

    public func run() async {
        let queues = notifiers.map { _ in DeliveryQueue() }
        await withTaskGroup(of: Void.self) { group in
            for (notifier, queue) in zip(notifiers, queues) {
                group.addTask { await deliver(to: notifier, from: queue) }
            }
            await evaluate(into: queues)
            let deadline = ContinuousClock.now + drainTimeout
            for queue in queues { queue.finish(deadline: deadline) }
        }
    }

    /// The evaluation loop, until ``stop()``.
    func evaluate(into queues: [DeliveryQueue]) async {
        var evaluators = pipelines.map { AlertEvaluator(rules: $0.rules) }
        // Alerts a previous process left firing resolve here rather than fire a second time.
        if let open = try? await store.alerts(pipeline: nil, firingOnly: true, limit: 10_000) {
            for alert in open {
                for (i, p) in pipelines.enumerated() where p.status.pipeline == alert.pipeline {
                    evaluators[i].adopt(name: alert.name, firedAt: alert.firedAt, id: alert.id)
                }
            }
        }
        let started = Date()
        var volume = VolumeTracker(pipelines: pipelines.map { $0.status.pipeline }, started: started)
        var lastSweep: Date?
        var lastDeadLetterRead: Date?
        var reasons = pipelines.map { _ in Set<[String]>() }
        /// One evaluation of every pipeline's rules.
        func evaluateAll(final: Bool) async {
            let now = Date()
            if final || lastDeadLetterRead.map({ now.timeIntervalSince($0) >= 1 }) ?? true {
                // The queue also shrinks from outside (dropped, replayed, by another process):
                // read it here rather than only after commits that dead-lettered records.
                lastDeadLetterRead = now
                for (i, pipeline) in pipelines.enumerated() { await refreshDeadLetters(pipeline.status, reasons: &reasons[i]) }
            }
            await volume.record(pipelines.map { $0.status.snapshot.recordsIn }, now: now, store: store, logger: logger)
            for (i, pipeline) in pipelines.enumerated() {
                let snapshot = pipeline.status.snapshot
                let signal = evaluators[i].rules.contains { $0.kind == .volumeDrop } ? await volume.signal(i, now: now, store: store) : nil
                let cost =
                    evaluators[i].rules.contains { $0.kind == .costSpike }
                    ? await CostSignal.read(pipeline: pipeline.status.pipeline, pricing: pipeline.pricing, now: now, started: started, store: store) : nil
                for var transition in evaluators[i].evaluate(snapshot, now: now, volume: signal, cost: cost) {
                    await record(&transition, evaluator: &evaluators[i])
                    for n in pipeline.notifiers { queues[n].push(transition) }
                }
                let firing = evaluators[i].firingNames
                if firing != snapshot.firingAlerts { pipeline.status.update { $0.firingAlerts = firing } }
            }
        }
        while !stopped.isSet, !Task.isCancelled {
            await evaluateAll(final: false)
            let now = Date()
            if lastSweep.map({ now.timeIntervalSince($0) >= 3600 }) ?? true {
                lastSweep = now
                let cutoff = now.addingTimeInterval(-AlertRule.seconds(historyTTL))
                if let removed = try? await store.sweepAlerts(before: cutoff), removed > 0 {
                    logger.info("old resolved alerts removed", metadata: ["count": "\(removed)"])
                }
            }
            await stopped.sleep(for: interval)
        }
        // What the pipelines' last commits changed (a finite run shorter than the interval, a
        // pipeline that failed) is evaluated once more before the notifications drain.
        if !Task.isCancelled { await evaluateAll(final: true) }
    }

    /// The dead-letter queue's size and oldest age, into the status and the gauges, in all and
    /// by stage and reason (a reason no longer in the queue goes to 0).
    func refreshDeadLetters(_ status: PipelineStatus, reasons: inout Set<[String]>) async {
        let now = Date()
        guard let groups = try? await store.deadLetterStats(matching: DeadLetterFilter(pipeline: status.pipeline), now: now) else { return }
        let count = groups.reduce(0) { $0 + $1.count }
        var byReason: [String: Int] = [:]
        for g in groups { byReason["\(g.stage)/\(g.kind)", default: 0] += g.count }
        status.update {
            $0.deadLetterQueue = count
            $0.deadLetterReasons = byReason
        }
        let d = [("pipeline", status.pipeline)]
        Gauge(label: "sluice_dead_letter_queue_records", dimensions: d).record(count)
        Gauge(label: "sluice_dead_letter_queue_oldest_age_seconds", dimensions: d).record(
            groups.map(\.oldest).min().map { now.timeIntervalSince($0) } ?? 0)
        var seen: Set<[String]> = []
        for g in groups {
            seen.insert([g.stage, g.kind])
            let labels = d + [("stage", g.stage), ("reason", g.kind)]
            Gauge(label: "sluice_dead_letter_queue_reason_records", dimensions: labels).record(g.count)
            Gauge(label: "sluice_dead_letter_queue_reason_oldest_age_seconds", dimensions: labels).record(now.timeIntervalSince(g.oldest))
        }
        for gone in reasons.subtracting(seen) {
            let labels = d + [("stage", gone[0]), ("reason", gone[1])]
            Gauge(label: "sluice_dead_letter_queue_reason_records", dimensions: labels).record(0)
            Gauge(label: "sluice_dead_letter_queue_reason_oldest_age_seconds", dimensions: labels).record(0)
        }
        reasons = seen
    }

    /// Stores a transition, logs it and updates the firing gauge.
    func record(_ t: inout AlertTransition, evaluator: inout AlertEvaluator) async {
        let r = t.rule
        let gauge = Gauge(label: "sluice_alerts_firing", dimensions: [("pipeline", r.pipeline), ("alert", r.name), ("severity", r.severity.rawValue)])
        var metadata: Logger.Metadata = [
            "pipeline": "\(r.pipeline)", "alert": "\(r.name)", "severity": "\(r.severity.rawValue)",
            "value": "\(AlertPayload.format(t.value))", "summary": "\(r.summary)",
        ]
        do {
            switch t.state {
            case .firing:
                let id = try await store.alertFired(
                    pipeline: r.pipeline, name: r.name, severity: r.severity.rawValue, summary: r.summary, value: t.value, at: t.at)
                t.id = id
                evaluator.setID(id, for: r.name)
            case .resolved:
                // Without an id (recording the firing failed, or its answer was lost), the store's
                // firing alert of this pipeline and rule is the one.
                if t.id == nil {
                    t.id = try await store.alerts(pipeline: r.pipeline, firingOnly: true, limit: 100).first { $0.name == r.name }?.id
                }
                if let id = t.id { try await store.alertResolved(id: id, at: t.at) }
            }
        } catch {
            metadata["store_error"] = "\(error)"
        }
        if let id = t.id { metadata["id"] = "\(id)" }
        switch t.state {
        case .firing:
            gauge.record(1)
            logger.log(level: r.severity == .critical ? .error : .warning, "alert firing", metadata: metadata)
        case .resolved:
            gauge.record(0)
            logger.notice("alert resolved", metadata: metadata)
        }
    }

    /// Delivers a receiver's notifications in order, retrying each with backoff.
    func deliver(to notifier: any AlertNotifier, from queue: DeliveryQueue) async {
        let counter = { (result: String) in
            Counter(label: "sluice_alert_notifications_total", dimensions: [("receiver", notifier.name), ("result", result)]).increment()
        }
        while let t = await queue.next() {
            var delay = retryDelay
            var attempt = 1
            while true {
                do {
                    if let deadline = queue.deadline, ContinuousClock.now >= deadline { throw SluiceError(.timeout, "the time to drain ran out") }
                    try await Self.attempt(t, on: notifier, before: queue.deadline)
                    counter("delivered")
                    break
                } catch {
                    if Task.isCancelled || queue.deadline.map({ ContinuousClock.now >= $0 }) ?? false {
                        counter("dropped")
                        logger.error(
                            "alert notification not delivered before exit",
                            metadata: ["receiver": "\(notifier.name)", "alert": "\(t.rule.name)", "status": "\(t.state.rawValue)", "error": "\(error)"])
                        break
                    }
                    counter("retried")
                    logger.warning(
                        "alert notification failed; retrying",
                        metadata: [
                            "receiver": "\(notifier.name)", "alert": "\(t.rule.name)", "attempt": "\(attempt)", "delay": "\(delay)",
                            "error": "\(error)",
                        ])
                    // In short steps: the process may end meanwhile, and its deadline come first.
                    let wake = ContinuousClock.now + delay
                    while ContinuousClock.now < wake, queue.deadline.map({ ContinuousClock.now < $0 }) ?? true {
                        try? await Task.sleep(for: min(.milliseconds(100), wake - ContinuousClock.now))
                    }
                    delay = min(delay * 2, maxRetryDelay)
                    attempt += 1
                }
            }
        }
    }
}

extension AlertEngine {
    /// One delivery attempt, cut short at `deadline` (the process is ending) when there is one.
    static func attempt(_ t: AlertTransition, on notifier: any AlertNotifier, before deadline: ContinuousClock.Instant?) async throws {
        guard let deadline else { return try await notifier.send(t) }
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await notifier.send(t) }
            group.addTask {
                try await Task.sleep(until: deadline)
                throw SluiceError(.timeout, "the time to drain ran out")
            }
            defer { group.cancelAll() }
            try await group.next()
        }
    }
}

/// Records each pipeline's records read per hour in the state store (the volume-drop rule's
/// history), and reads the last complete hour against the same hour of the 7 days before.
struct VolumeTracker {
    let pipelines: [String]
    let started: Date
    var recorded: [Int]
    var cached: [Int: (hour: Int64, signal: (lastHour: Int, baseline: Double)?)] = [:]

    init(pipelines: [String], started: Date) {
        self.pipelines = pipelines
        self.started = started
        recorded = Array(repeating: 0, count: pipelines.count)
    }

    static func hour(_ d: Date) -> Int64 { Int64(d.timeIntervalSince1970 / 3600) * 3600 }

    mutating func record(_ recordsIn: [Int], now: Date, store: any StateStore, logger: Logger) async {
        for (i, count) in recordsIn.enumerated() where count > recorded[i] {
            do {
                try await store.addHourlyVolume(pipeline: pipelines[i], hour: Self.hour(now), records: count - recorded[i])
                recorded[i] = count
            } catch {
                logger.debug("could not record the hourly volume", metadata: ["error": "\(error)"])
            }
        }
    }

    /// The last complete hour (when this process saw all of it) and the mean of the same hour
    /// on the previous days that have any volume; nil when there is no such history.
    mutating func signal(_ i: Int, now: Date, store: any StateStore) async -> (lastHour: Int, baseline: Double)? {
        let last = Self.hour(now) - 3600
        if let c = cached[i], c.hour == last { return c.signal }
        var signal: (lastHour: Int, baseline: Double)?
        if started.timeIntervalSince1970 <= Double(last) {
            let days = (1...7).map { last - Int64($0) * 86_400 }
            if let volume = try? await store.hourlyVolume(pipeline: pipelines[i], hours: [last] + days) {
                let previous = days.compactMap { volume[$0] }.filter { $0 > 0 }
                if !previous.isEmpty {
                    signal = (volume[last] ?? 0, Double(previous.reduce(0, +)) / Double(previous.count))
                }
            }
        }
        cached[i] = (last, signal)
        return signal
    }
}

/// The cost-spike rule's signal: the cost of the last complete hour (when this process saw all
/// of it) and of the same hour a day before, from the usage cost accounting records.
enum CostSignal {
    static func read(pipeline: String, pricing: PricingConfig, now: Date, started: Date, store: any StateStore) async -> (lastHour: Double, baseline: Double)? {
        let last = VolumeTracker.hour(now) - 3600
        guard started.timeIntervalSince1970 <= Double(last),
            let rows = try? await store.usage(pipeline: pipeline, since: last - 86_400)
        else { return nil }
        func cost(_ hour: Int64) -> Double {
            rows.first(where: { $0.hour == hour })?.cost(pricing).total ?? 0
        }
        return (cost(last), cost(last - 86_400))
    }
}

/// One receiver's queue of notifications, in order.
final class DeliveryQueue: Sendable {
    private struct State {
        var items: [AlertTransition] = []
        var deadline: ContinuousClock.Instant?
        var waiter: CheckedContinuation<AlertTransition?, Never>?
    }
    private let state = Mutex(State())

    func push(_ t: AlertTransition) {
        let waiter = state.withLock { s -> CheckedContinuation<AlertTransition?, Never>? in
            if let w = s.waiter {
                s.waiter = nil
                return w
            }
            s.items.append(t)
            return nil
        }
        waiter?.resume(returning: t)
    }

    /// No more notifications; those queued must go out by `deadline`.
    func finish(deadline: ContinuousClock.Instant) {
        let waiter = state.withLock { s -> CheckedContinuation<AlertTransition?, Never>? in
            s.deadline = deadline
            defer { s.waiter = nil }
            return s.waiter
        }
        waiter?.resume(returning: nil)
    }

    var deadline: ContinuousClock.Instant? { state.withLock { $0.deadline } }

    /// The next notification; nil once finished and empty.
    func next() async -> AlertTransition? {
        await withCheckedContinuation { (c: CheckedContinuation<AlertTransition?, Never>) in
            let ready = state.withLock { s -> AlertTransition?? in
                if !s.items.isEmpty { return .some(s.items.removeFirst()) }
                if s.deadline != nil { return .some(nil) }
                s.waiter = c
                return nil
            }
            if let ready { c.resume(returning: ready) }
        }
    }
}
