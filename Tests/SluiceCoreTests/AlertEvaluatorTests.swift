import Foundation
@testable import SluiceCore
import SluiceTesting
import Synchronization
import Testing

/// The alert rules as a state machine over samples of a pipeline's counters.
@Suite struct AlertEvaluatorTests {
    let t0 = Date(timeIntervalSince1970: 1_800_000_000)

    func rules(_ yaml: AlertsConfig) -> [AlertRule] { AlertRule.rules(pipeline: "p", config: yaml) }

    func only(_ kind: AlertRule.Kind, _ config: AlertsConfig) -> AlertEvaluator {
        AlertEvaluator(rules: rules(config).filter { $0.kind == kind })
    }

    @Test func stoppedFiresAfterItsDurationWithoutACommitAndResolvesAtTheNext() {
        var e = only(.stopped, AlertsConfig(stopped: .init(after: ConfigDuration(.seconds(60)))))
        var s = PipelineStatus.Snapshot()
        s.startedAt = t0
        #expect(e.evaluate(s, now: t0 + 59).isEmpty)
        let fired = e.evaluate(s, now: t0 + 61)
        #expect(fired.map(\.state) == [.firing] && fired[0].value == 61)
        #expect(e.evaluate(s, now: t0 + 70).isEmpty, "one notification per transition")
        s.lastCommit = t0 + 75
        let resolved = e.evaluate(s, now: t0 + 76)
        #expect(resolved.map(\.state) == [.resolved] && resolved[0].firedAt == t0 + 61)
        // A scheduled source commits once a pull: the interval between pulls is allowed too.
        s.pullInterval = 3600
        #expect(e.evaluate(s, now: t0 + 75 + 3600).isEmpty)
        #expect(e.evaluate(s, now: t0 + 75 + 3661).map(\.state) == [.firing])
        // A finished run is not stopped; a failed one is, at once.
        s.finished = true
        #expect(e.evaluate(s, now: t0 + 9999).map(\.state) == [.resolved])
        s.failed = true
        #expect(e.evaluate(s, now: t0 + 10_000).map(\.state) == [.firing])
    }

    /// After a restart the signals are unknown at first (nothing read yet, no batch committed):
    /// adopted alerts keep firing instead of resolving for lack of data, then resolve on data.
    @Test func unknownSignalsKeepAnAlertsState() {
        var e = AlertEvaluator(
            rules: rules(AlertsConfig(errorRate: .init(forDuration: ConfigDuration(.zero)), latency: .init(forDuration: ConfigDuration(.zero))))
                .filter { [.errorRate, .latency].contains($0.kind) })
        e.adopt(name: "SluiceErrorRateHigh", firedAt: t0 - 60, id: 1)
        e.adopt(name: "SluiceLatencyAboveSLA", firedAt: t0 - 60, id: 2)
        var s = PipelineStatus.Snapshot()
        #expect(e.evaluate(s, now: t0).isEmpty)
        #expect(e.evaluate(s, now: t0 + 600).isEmpty)
        s.recordsIn = 100
        s.latencyBuckets[0] = 5
        #expect(Set(e.evaluate(s, now: t0 + 601).map(\.rule.kind)) == [.errorRate, .latency])
    }

    @Test func errorRateIsTakenOverItsWindowAndWaitsForItsForDuration() {
        var e = only(
            .errorRate,
            AlertsConfig(
                errorRate: .init(above: AlertThreshold(0.05, percent: true), forDuration: ConfigDuration(.seconds(20)), over: ConfigDuration(.seconds(60)))))
        var s = PipelineStatus.Snapshot()
        // 1000 records, 10 dead-lettered (1%): fine.
        s.recordsIn = 1000
        s.deadLettered = 10
        #expect(e.evaluate(s, now: t0).isEmpty)
        // Then 100 more, 50 of them dead-lettered: 40 of 100 (40%) in the window (the rate
        // counts what changed since the window's start, not the run's totals).
        s.recordsIn = 1100
        s.deadLettered = 60
        #expect(e.evaluate(s, now: t0 + 10).isEmpty, "pending: the condition must hold for 20 s")
        let fired = e.evaluate(s, now: t0 + 31)
        #expect(fired.map(\.state) == [.firing] && abs(fired[0].value - 0.5) < 1e-9, "\(fired)")
        // A minute later with clean records only, the window holds no dead letter: resolved.
        s.recordsIn = 2100
        #expect(e.evaluate(s, now: t0 + 95).map(\.state) == [.resolved])
        // A condition that stops holding while pending never fires.
        s.recordsIn = 2110
        s.deadLettered = 70
        #expect(e.evaluate(s, now: t0 + 100).isEmpty)
        s.recordsIn = 3000
        #expect(e.evaluate(s, now: t0 + 200).isEmpty)
        #expect(e.evaluate(s, now: t0 + 230).isEmpty)
    }

    @Test func latencyIsTheNinetyNinthPercentileOfTheWindowsBatches() {
        var e = only(.latency, AlertsConfig(latency: .init(above: AlertThreshold(60), forDuration: ConfigDuration(.zero), over: ConfigDuration(.seconds(120)))))
        var s = PipelineStatus.Snapshot()
        #expect(e.evaluate(s, now: t0).isEmpty, "no batch yet: no latency")
        // 99 batches under 1 s and one of an hour: the p99 is still under a minute.
        s.latencyBuckets[PipelineMetrics.latencyBucket(seconds: 0.5)] += 99
        s.latencyBuckets[PipelineMetrics.latencyBucket(seconds: 3000)] += 1
        #expect(e.evaluate(s, now: t0 + 10).isEmpty)
        // Ten more of an hour: now the p99 is an hour.
        s.latencyBuckets[PipelineMetrics.latencyBucket(seconds: 3000)] += 10
        let fired = e.evaluate(s, now: t0 + 20)
        #expect(fired.map(\.state) == [.firing] && fired[0].value > 1800 && fired[0].value <= 3600, "\(fired)")
        #expect(AlertEvaluator.quantile(0.5, counts: [0, 0, 0, 0, 4] + Array(repeating: 0, count: 11)) == 0.5 + (1 - 0.5) * 0.5)
    }

    @Test func deadLettersDriftAndMissingDataFireOnTheirSignals() {
        var e = AlertEvaluator(
            rules: rules(AlertsConfig(deadLetters: .init(above: AlertThreshold(10)), schemaDrift: .init(over: ConfigDuration(.seconds(60)))))
                .filter { [.deadLetters, .schemaDrift, .missingData].contains($0.kind) })
        var s = PipelineStatus.Snapshot()
        s.deadLetterQueue = 11
        s.schemaDrifts = 1  // before the first sample: not new
        #expect(e.evaluate(s, now: t0).map(\.rule.kind) == [.deadLetters])
        s.schemaDrifts = 2
        s.missingRecords = 1
        #expect(Set(e.evaluate(s, now: t0 + 10).map(\.rule.kind)) == [.schemaDrift, .missingData])
        s.deadLetterQueue = 0
        let later = e.evaluate(s, now: t0 + 100)
        #expect(Set(later.map(\.rule.kind)) == [.deadLetters, .schemaDrift] && later.allSatisfy { $0.state == .resolved })
        #expect(e.evaluate(s, now: t0 + 1000).map(\.rule.kind) == [.missingData], "missing data resolves after its 15 minutes")
    }

    @Test func volumeDropComparesTheLastHourWithTheSameHourOfPreviousDays() async throws {
        let store = MemoryStateStore()
        let hour = VolumeTracker.hour(t0)
        // The same hour on three previous days: 1000, 1200 and 800 records; the last hour 500.
        for (day, records) in [(1, 1000), (2, 1200), (3, 800)] {
            try await store.addHourlyVolume(pipeline: "p", hour: hour - 3600 - Int64(day) * 86_400, records: records)
        }
        try await store.addHourlyVolume(pipeline: "p", hour: hour - 3600, records: 500)
        var tracker = VolumeTracker(pipelines: ["p"], started: t0 - 7200)
        let signal = await tracker.signal(0, now: t0 + 10, store: store)
        #expect(signal?.lastHour == 500 && signal?.baseline == 1000)
        var e = only(.volumeDrop, AlertsConfig(volumeDrop: .init(forDuration: ConfigDuration(.zero))))
        let fired = e.evaluate(PipelineStatus.Snapshot(), now: t0 + 10, volume: signal)
        #expect(fired.map(\.state) == [.firing] && fired[0].value == 0.5)
        // A process that did not see the whole last hour has no signal (a partial hour is no drop).
        var late = VolumeTracker(pipelines: ["p"], started: t0 - 1800)
        #expect(await late.signal(0, now: t0 + 10, store: store) == nil)
        // Records read are added to the current hour.
        await tracker.record([40], now: t0 + 20, store: store, logger: .init(label: "t"))
        await tracker.record([45], now: t0 + 30, store: store, logger: .init(label: "t"))
        #expect(try await store.hourlyVolume(pipeline: "p", hours: [hour]) == [hour: 45])
    }

    @Test func anAlertAPreviousProcessLeftFiringResolvesInsteadOfFiringAgain() {
        var e = only(.deadLetters, AlertsConfig(deadLetters: .init(above: AlertThreshold(1))))
        e.adopt(name: "SluiceDeadLetterQueueLarge", firedAt: t0 - 600, id: 42)
        var s = PipelineStatus.Snapshot()
        s.deadLetterQueue = 5
        #expect(e.evaluate(s, now: t0).isEmpty)
        s.deadLetterQueue = 0
        let resolved = e.evaluate(s, now: t0 + 1)
        #expect(resolved.map(\.state) == [.resolved] && resolved[0].id == 42 && resolved[0].firedAt == t0 - 600)
    }

    /// A receiver that fails gets each notification again, in order, until it takes it; the
    /// transitions are in the state store.
    @Test(.timeLimit(.minutes(2))) func theEngineRetriesAFailingReceiverAndKeepsTheOrder() async throws {
        final class Flaky: AlertNotifier {
            let received = Mutex<[String]>([])
            let failures = Mutex(3)
            var name: String { "flaky" }
            func send(_ t: AlertTransition) async throws {
                if failures.withLock({ f in
                    defer { f -= 1 }; return f > 0
                }) {
                    throw SluiceError(.connection, "down")
                }
                received.withLock { $0.append("\(t.rule.name) \(t.state.rawValue)") }
            }
        }
        let store = MemoryStateStore()
        let status = PipelineStatus(pipeline: "p")
        status.update {
            $0.startedAt = Date()
            $0.deadLetterQueue = 0
        }
        let flaky = Flaky()
        var configured = AlertEngine(
            pipelines: [
                .init(
                    status: status, rules: rules(AlertsConfig(stopped: .init(after: ConfigDuration(.milliseconds(200))))).filter { $0.kind == .stopped },
                    notifiers: [0])
            ],
            notifiers: [flaky], store: store, interval: .milliseconds(50), historyTTL: .seconds(3600), logger: .init(label: "t"))
        configured.retryDelay = .milliseconds(20)
        let engine = configured
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { await engine.run() }
            // Fires after 200 ms without a commit; a commit resolves it.
            while (try await store.alerts(pipeline: "p", firingOnly: true, limit: 1)).isEmpty { try await Task.sleep(for: .milliseconds(20)) }
            // (Finished too, so that a loaded machine cannot make it fire a second time.)
            status.update {
                $0.lastCommit = Date()
                $0.finished = true
            }
            while flaky.received.withLock({ $0.count }) < 2 { try await Task.sleep(for: .milliseconds(20)) }
            engine.stop()
            try await group.waitForAll()
        }
        #expect(flaky.received.withLock { $0 } == ["SluiceIngestionStopped firing", "SluiceIngestionStopped resolved"])
        #expect(try await store.alerts(pipeline: "p", firingOnly: false, limit: 10).count == 1)
    }

    @Test func payloadsAreJSONWithEscapedTextAndSlackTextMessages() throws {
        let rule = rules(AlertsConfig()).first { $0.kind == .errorRate }!
        var t = AlertTransition(state: .resolved, rule: rule, value: 0.125, firedAt: t0, at: t0 + 90, id: 7)
        t.rule.summary = "quote \" and \\ and\nnewline"
        let json = try JSONSerialization.jsonObject(with: Data(AlertPayload.json(t, host: "h"))) as? [String: Any]
        #expect(json?["status"] as? String == "resolved" && json?["summary"] as? String == "quote \" and \\ and\nnewline")
        #expect(json?["id"] as? Int == 7 && json?["value"] as? Double == 0.125 && json?["threshold"] as? Double == 0.05)
        #expect(json?["fired_at"] as? String == "2027-01-15T08:00:00.000Z" && json?["resolved_at"] as? String == "2027-01-15T08:01:30.000Z")
        let slack = try JSONSerialization.jsonObject(with: Data(AlertPayload.slack(t, host: "h"))) as? [String: Any]
        #expect((slack?["text"] as? String)?.hasPrefix("[RESOLVED] SluiceErrorRateHigh · pipeline p:") == true)
    }
}

/// `reconcile: { sequence, key }`: gaps per key, never a trap on hostile numbers.
@Suite struct SequenceGapCounterTests {
    func batch(_ rows: [(String, Int64)]) -> RecordBatch {
        var keys = ColumnBuilder(type: .string)
        var seqs = ColumnBuilder(type: .int64)
        for (k, s) in rows {
            keys.append(string: k)
            seqs.append(s)
        }
        return RecordBatch(schema: Schema([Field("k", .string), Field("seq", .int64)]), columns: [keys.finish(), seqs.finish()])
    }

    @Test func gapsAreCountedPerKeyAndRepeatsAreNot() {
        var counter = SequenceGapCounter(field: "seq", keyField: "k")
        #expect(counter.gaps(in: batch([("a", 1), ("b", 10), ("a", 2), ("a", 2), ("b", 11)])).missing == 0)
        let (missing, examples) = counter.gaps(in: batch([("a", 5), ("b", 9), ("b", 12)]))
        #expect(missing == 2 && examples == ["k=a 3…4"])
        // Not counted, but remembered: the next batch continues from 20.
        #expect(counter.gaps(in: batch([("a", 20)]), count: false).missing == 0)
        #expect(counter.gaps(in: batch([("a", 21)])).missing == 0)
    }

    @Test func hostileNumbersNeverTrap() {
        var counter = SequenceGapCounter(field: "seq", keyField: nil)
        #expect(counter.gaps(in: batch([("", .min), ("", .max), ("", .min), ("", .max)])).missing == SequenceGapCounter.maxGap)
        #expect(counter.gaps(in: batch([("", .max), ("", .max)])).missing == 0)
    }
}

@Suite struct MemoryStoreConformanceTests {
    @Test func theMemoryStoreBehavesAsEveryStoreMust() async throws {
        try await AlertHistoryConformance.run(MemoryStateStore(), prefix: "p")
        try await UsageConformance.run(MemoryStateStore(), prefix: "p")
        try await DeadLetterAdminConformance.run(MemoryStateStore(), prefix: "p")
    }
}
