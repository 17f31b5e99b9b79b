import Foundation
import Synchronization

/// An hour of each pipeline's live counters, sampled every few seconds, in memory (a ring per
/// pipeline, bounded), for the dashboard's charts and its JSON endpoint.
public final class StatusHistory: Sendable {
    struct Sample: Sendable {
        var time: Double
        var snapshot: PipelineStatus.Snapshot
    }

    public let statuses: [PipelineStatus]
    public let interval: Duration
    /// Samples kept per pipeline.
    public let capacity: Int
    private let rings: Mutex<[[Sample]]>

    public init(statuses: [PipelineStatus], interval: Duration = .seconds(5), keep: Duration = .seconds(3600)) {
        self.statuses = statuses
        self.interval = interval
        capacity = Int(AlertRule.seconds(keep) / max(AlertRule.seconds(interval), 0.001)) + 1
        rings = Mutex(statuses.map { _ in [] })
    }

    /// Records a sample of every pipeline at `now`.
    public func sample(now: Date = Date()) {
        let snapshots = statuses.map(\.snapshot)
        rings.withLock { rings in
            for (i, s) in snapshots.enumerated() {
                rings[i].append(Sample(time: now.timeIntervalSince1970, snapshot: s))
                if rings[i].count > capacity { rings[i].removeFirst(rings[i].count - capacity) }
            }
        }
    }

    /// Samples every `interval` until the task is cancelled.
    public func run() async {
        sample()
        while (try? await Task.sleep(for: interval)) != nil { sample() }
    }

    /// `GET /api/v1/status`: every pipeline's state, totals, latency, alerts and an hour of
    /// per-interval rates, as JSON (shared by the dashboard and scripts).
    public func json(now: Date = Date()) -> [UInt8] {
        let all = rings.withLock { $0 }
        var pipelines: [String] = []
        for (i, status) in statuses.enumerated() {
            let s = status.snapshot
            let samples = all[i] + [Sample(time: now.timeIntervalSince1970, snapshot: s)]
            // The latency over the last 5 minutes (the sample at or before its start).
            let start = samples.last { $0.time <= now.timeIntervalSince1970 - 300 } ?? samples[0]
            let window = zip(s.latencyBuckets, start.snapshot.latencyBuckets).map { $0 - $1 }
            let state = s.failed ? "failed" : s.finished ? "finished" : s.startedAt == nil ? "starting" : "running"
            var series: [String: [Double]] = [
                "t": [], "records_in_per_s": [], "records_out_per_s": [], "bytes_in_per_s": [], "bytes_out_per_s": [], "dead_letter_queue": [],
                "p99_seconds": [],
            ]
            for (a, b) in zip(samples, samples.dropFirst()) where b.time > a.time {
                let dt = b.time - a.time
                series["t"]!.append(b.time)
                series["records_in_per_s"]!.append(Double(b.snapshot.recordsIn - a.snapshot.recordsIn) / dt)
                series["records_out_per_s"]!.append(Double(b.snapshot.recordsOut - a.snapshot.recordsOut) / dt)
                series["bytes_in_per_s"]!.append(Double(b.snapshot.bytesIn - a.snapshot.bytesIn) / dt)
                series["bytes_out_per_s"]!.append(Double(b.snapshot.bytesOut - a.snapshot.bytesOut) / dt)
                series["dead_letter_queue"]!.append(Double(b.snapshot.deadLetterQueue ?? 0))
                let counts = zip(b.snapshot.latencyBuckets, a.snapshot.latencyBuckets).map { $0 - $1 }
                series["p99_seconds"]!.append(AlertEvaluator.quantile(0.99, counts: counts) ?? -1)
            }
            let fields: [(String, Any)] = [
                ("name", status.pipeline), ("state", state), ("records_in", s.recordsIn), ("records_out", s.recordsOut),
                ("bytes_in", s.bytesIn), ("bytes_out", s.bytesOut), ("dead_lettered", s.deadLettered), ("duplicates", s.duplicates),
                ("dead_letter_queue", s.deadLetterQueue.map { $0 as Any } ?? NSNull()),
                ("last_commit", s.lastCommit.map { $0.timeIntervalSince1970 as Any } ?? NSNull()),
                ("started_at", s.startedAt.map { $0.timeIntervalSince1970 as Any } ?? NSNull()),
                ("latency_p50_seconds", AlertEvaluator.quantile(0.5, counts: window).map { $0 as Any } ?? NSNull()),
                ("latency_p99_seconds", AlertEvaluator.quantile(0.99, counts: window).map { $0 as Any } ?? NSNull()),
                ("schema_drifts", s.schemaDrifts), ("missing_records", s.missingRecords), ("alerts", s.firingAlerts),
                ("last_pull", s.lastPull.map { $0.timeIntervalSince1970 as Any } ?? NSNull()),
                ("schema_version", s.schemaVersion.map { $0 as Any } ?? NSNull()),
                ("lag", s.lag.map { ["value": $0.value, "unit": $0.unit] as Any } ?? NSNull()),
                ("dead_letters_by_reason", s.deadLetterReasons), ("series", series),
            ]
            pipelines.append(Self.object(fields))
        }
        let body =
            "{\"generated_at\":\(now.timeIntervalSince1970),\"interval_seconds\":\(AlertRule.seconds(interval)),\"pipelines\":[\(pipelines.joined(separator: ","))]}"
        return Array(body.utf8)
    }

    static func object(_ fields: [(String, Any)]) -> String {
        "{" + fields.map { key, value in "\"\(key)\":\(encode(value))" }.joined(separator: ",") + "}"
    }

    static func encode(_ value: Any) -> String {
        switch value {
        case let s as String: return AlertPayload.quote(s)
        case let n as Int: return String(n)
        case let d as Double: return d.isFinite ? String(d) : "null"
        case let a as [String]: return "[" + a.map(AlertPayload.quote).joined(separator: ",") + "]"
        case let counts as [String: Int]: return "{" + counts.keys.sorted().map { "\(AlertPayload.quote($0)):\(counts[$0]!)" }.joined(separator: ",") + "}"
        case let series as [String: [Double]]:
            return "{"
                + series.keys.sorted().map { "\"\($0)\":[" + series[$0]!.map { $0.isFinite ? String($0) : "null" }.joined(separator: ",") + "]" }.joined(
                    separator: ",") + "}"
        case let lag as [String: Any]:
            return "{\"value\":\(encode(lag["value"] ?? NSNull())),\"unit\":\(encode(lag["unit"] ?? NSNull()))}"
        default: return "null"
        }
    }
}
