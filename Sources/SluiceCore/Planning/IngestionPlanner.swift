import Foundation

/// The five questions of the ingestion decision framework, answered.
public struct PlanQuestions: Sendable, Hashable {
    public enum Source: String, Sendable, CaseIterable {
        case postgres, sqlite, files, s3
        case httpAPI = "http-api"
        case push, queue
    }
    public enum Change: String, Sendable, CaseIterable, Comparable {
        case inserts, updates, deletes
        public static func < (a: Change, b: Change) -> Bool { allCases.firstIndex(of: a)! < allCases.firstIndex(of: b)! }
    }
    public enum Reliability: String, Sendable, CaseIterable {
        case bestEffort = "best-effort"
        case atLeastOnce = "at-least-once"
        case exactlyOnce = "exactly-once"
    }

    /// Bytes a day.
    public var volume: Double
    /// How old the data may be when it is queried, in seconds.
    public var freshness: Double
    public var source: Source
    public var changes: Set<Change>
    public var reliability: Reliability

    public init(volume: Double, freshness: Double, source: Source, changes: Set<Change>, reliability: Reliability) {
        self.volume = volume
        self.freshness = freshness
        self.source = source
        self.changes = changes
        self.reliability = reliability
    }

    /// `200GB/day`, `5 TB/month`, `300MB/hour`, `1e9` (bytes a day).
    public static func parseVolume(_ text: String) -> Double? {
        let t = text.replacingOccurrences(of: " ", with: "").lowercased()
        let parts = t.split(separator: "/", maxSplits: 1)
        let per: Double
        switch parts.count == 2 ? String(parts[1]) : "day" {
        case "day", "d": per = 1
        case "hour", "h": per = 24
        case "month", "mo": per = 1.0 / 30
        case "s", "sec", "second": per = 86_400
        default: return nil
        }
        let amount = String(parts[0])
        let units: [(String, Double)] = [("tb", 1e12), ("gb", 1e9), ("mb", 1e6), ("kb", 1e3), ("b", 1)]
        // A finite, non-negative amount only (`inf` and `nan` parse as Doubles).
        func valid(_ n: Double?) -> Double? { n.flatMap { $0.isFinite && $0 >= 0 ? $0 : nil } }
        for (suffix, factor) in units where amount.hasSuffix(suffix) {
            return valid(Double(amount.dropLast(suffix.count))).map { $0 * factor * per }
        }
        return valid(Double(amount)).map { $0 * per }
    }
}

/// The answer: the pattern, why, its cost tier and a starter pipeline file.
public struct IngestionPlan: Sendable {
    public enum Pattern: String, Sendable {
        case batch
        case microBatch = "micro-batch"
        case streaming
        case cdc = "CDC"
    }
    public enum Direction: String, Sendable { case push, pull }

    /// A row of the cost-vs-freshness table.
    public struct CostTier: Sendable, Hashable {
        public var freshness: String
        public var style: String
        public var low: Double
        public var high: Double
    }

    public var pattern: Pattern
    public var direction: Direction
    /// One line: what to run, e.g. "log-based CDC from PostgreSQL, micro-batched every minute".
    public var summary: String
    public var why: [String]
    public var tier: CostTier
    /// Dollars a month at the tier's low and high price per GB.
    public var monthly: (low: Double, high: Double)
    public var warnings: [String]
    /// Which tools of the classic landscape would otherwise fit.
    public var classicTools: [String]
    /// A pipeline file for Sluice that `sluice validate` accepts.
    public var yaml: String
}

/// The decision framework as a table: freshness picks the cost tier and the style, the source
/// and its changes pick the connector, reliability and volume add advice. Pure; `sluice plan`
/// asks the questions and prints the answer.
public enum IngestionPlanner {
    /// The cost-vs-freshness table (per GB ingested).
    public static let tiers: [(upTo: Double, tier: IngestionPlan.CostTier)] = [
        (60, .init(freshness: "< 1 min", style: "streaming", low: 0.10, high: 0.50)),
        (900, .init(freshness: "1–15 min", style: "micro-batch", low: 0.05, high: 0.15)),
        (3600, .init(freshness: "15 min–1 h", style: "frequent batch", low: 0.02, high: 0.05)),
        (86_400, .init(freshness: "1–24 h", style: "batch", low: 0.01, high: 0.02)),
        (.infinity, .init(freshness: "> 24 h", style: "daily batch", low: 0.005, high: 0.01)),
    ]

    public static func tier(freshness: Double) -> IngestionPlan.CostTier {
        // The last tier has no upper bound (a run that ends by itself is fresh "never").
        tiers.first { freshness < $0.upTo }?.tier ?? tiers[tiers.count - 1].tier
    }

    public static func plan(_ q: PlanQuestions) -> IngestionPlan {
        let tier = tier(freshness: q.freshness)
        let gbMonth = q.volume / 1e9 * 30
        let fresh = describe(q.freshness)
        let deletes = q.changes.contains(.deletes)
        let updates = q.changes.contains(.updates)
        var why: [String] = ["data may be \(fresh) old: the \(tier.freshness) tier (\(tier.style))"]
        var warnings: [String] = []
        var pattern: IngestionPlan.Pattern
        var direction = IngestionPlan.Direction.pull
        var summary: String
        var tools: [String]
        // How often a pull runs: well inside the freshness (a third of it), at least every 10 s.
        let interval = max(10, min(q.freshness / 3, 86_400))
        let every = "every \(durationText(interval))"

        switch q.source {
        case .postgres, .sqlite:
            let db = q.source == .postgres ? "PostgreSQL" : "SQLite"
            let cdc = deletes || q.freshness < 60 || (updates && q.freshness < 900)
            if cdc {
                pattern = .cdc
                summary =
                    q.source == .postgres
                    ? "log-based CDC from \(db) (a logical replication slot), \(q.freshness < 60 ? "streamed" : "micro-batched")"
                    : "trigger-based CDC from \(db) (a change table filled by triggers), polled"
                why.append(
                    deletes
                        ? "deletes are only visible in the database's log (or a change table): a pull of the table cannot see a row that is gone"
                        : "changes must arrive within \(fresh): reading the log is cheaper than re-reading the table that often")
                tools = q.source == .postgres ? ["Debezium (Kafka Connect)", "Datastream"] : ["Debezium", "Fivetran"]
            } else {
                pattern = q.freshness < 900 ? .microBatch : .batch
                summary = "incremental pull from \(db) by an updated_at cursor, \(every)"
                why.append("inserts\(updates ? " and updates" : "") with an ever-growing cursor column are read incrementally; no log access needed")
                tools = q.freshness >= 3600 ? ["Airflow + Spark", "Fivetran", "Stitch"] : ["Fivetran", "Stitch"]
            }
        case .files, .s3:
            let place = q.source == .s3 ? "S3 objects" : "files"
            if q.freshness < 900 {
                pattern = q.freshness < 60 ? .streaming : .microBatch
                summary = "watch the \(place) and ingest each new one as it lands"
                why.append("new \(place) are picked up as they appear (watched, polled)")
                if q.freshness < 60 { warnings.append("files land in batches: under a minute means many small files; a push endpoint or a queue fits better") }
            } else {
                pattern = .batch
                summary = "ingest the \(place) in batch runs, \(every) (cron or a systemd timer running `sluice run`)"
                why.append("\(place) that arrive over the day are cheapest read in one run per interval")
            }
            if deletes || updates { warnings.append("\(place) only append: deletes need CDC or soft deletes (a deleted flag in the data)") }
            tools = ["Airflow + Spark", "Dataflow"]
        case .httpAPI:
            pattern = q.freshness < 900 ? .microBatch : .batch
            summary = "pull the HTTP API incrementally (a cursor such as updated_since), \(q.freshness < 900 ? "with adaptive polling" : every)"
            why.append("an API is pulled: its pages are read incrementally from the last cursor")
            if q.freshness < 60 { warnings.append("APIs rate-limit: polling under a minute is expensive; ask the provider for webhooks (push)") }
            if deletes { warnings.append("deletes need CDC or soft deletes: most APIs list deleted objects only with a flag or an events endpoint") }
            tools = ["Fivetran", "Stitch", "Airflow"]
        case .push, .queue:
            direction = q.source == .push ? .push : .pull
            let what = q.source == .push ? "an HTTP push endpoint (`sluice serve`)" : "a NATS JetStream queue (a pull consumer; workers scale out)"
            if q.freshness < 60 {
                pattern = .streaming
                summary = "stream from \(what), committing every few seconds"
            } else if q.freshness < 3600 {
                pattern = .microBatch
                summary = "micro-batch from \(what): records are landed in files closed every \(durationText(interval))"
            } else {
                pattern = .batch
                summary = "land \(what) in large files closed every \(durationText(min(interval, 3600)))"
                warnings.append(
                    "streaming costs 3–5× more than batch; the \(fresh) freshness you need allows \(q.freshness >= 86_400 ? "daily" : "hourly") batch: keep the endpoint but land large files (max_file_age)"
                )
            }
            why.append(
                q.source == .push
                    ? "producers send events as they happen: they push, Sluice acknowledges once durable" : "a queue holds events until a consumer commits them"
            )
            if deletes { warnings.append("events only append: deletes must come as events (op: delete) or soft deletes") }
            tools = q.source == .push ? ["Dataflow (Pub/Sub)", "Kafka Connect (HTTP source)"] : ["Kafka Connect", "Dataflow"]
        }
        if tier.style == "streaming", pattern != .streaming, pattern != .cdc {
            why.append("a pull cannot be streaming; it runs as often as the freshness asks")
        }
        if q.freshness < 60 {
            warnings.append(
                "streaming costs 3–5× more than micro-batch (\(money(tiers[1].tier.low))–\(money(tiers[1].tier.high))/GB); make sure nobody can wait a few minutes"
            )
        }
        switch q.reliability {
        case .exactlyOnce:
            why.append(
                "exactly-once: Sluice commits output and checkpoint together"
                    + (q.source == .push || q.source == .queue ? "; producers that retry need an idempotency key or a dedupe key (`dedupe:`)" : ""))
        case .atLeastOnce:
            why.append("at-least-once is met; Sluice delivers exactly once anyway, at no extra cost")
        case .bestEffort:
            why.append("best effort is met; Sluice delivers exactly once anyway, at no extra cost")
        }
        if q.volume > 1e12 {
            warnings.append("over 1 TB/day: partition the output by day or hour, and scale out (JetStream workers, parallel pulls)")
        }
        return IngestionPlan(
            pattern: pattern, direction: direction, summary: summary, why: why, tier: tier,
            monthly: (gbMonth * tier.low, gbMonth * tier.high), warnings: warnings, classicTools: tools,
            yaml: StarterPipeline.yaml(q, pattern: pattern, interval: interval))
    }

    static func money(_ x: Double) -> String { x < 1 ? String(format: "$%.3g", x) : String(format: "$%.2f", x) }

    /// 30 s, 5 min, 2 h, 3 days.
    public static func describe(_ seconds: Double) -> String {
        if seconds < 60 { return "\(Int(seconds)) s" }
        if seconds < 3600 { return "\(Int(seconds / 60)) min" }
        if seconds < 86_400 { return "\(formatted(seconds / 3600)) h" }
        return "\(formatted(seconds / 86_400)) days"
    }

    /// A duration as Sluice's config writes it: 30s, 5m, 2h, 1d.
    public static func durationText(_ seconds: Double) -> String {
        let s = Int(seconds.rounded())
        if s % 86_400 == 0 { return "\(s / 86_400)d" }
        if s % 3600 == 0 { return "\(s / 3600)h" }
        if s % 60 == 0 { return "\(s / 60)m" }
        return "\(s)s"
    }

    static func formatted(_ x: Double) -> String { x == x.rounded() ? String(Int(x)) : String(format: "%.1f", x) }
}
