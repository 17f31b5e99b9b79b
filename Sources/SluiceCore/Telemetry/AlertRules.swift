import Foundation

/// `alerts:` at the top of a file (defaults for every pipeline) or in a pipeline (overrides,
/// key by key). Each rule can be turned off (`enabled: false`) and has a threshold and a `for:`
/// duration against flapping.
///
/// ```yaml
/// alerts:
///   stopped: { after: 15m }
///   error_rate: { above: 5%, for: 5m }
///   dead_letters: { above: 1000 }
///   volume_drop: { above: 20%, for: 30m }
///   schema_drift: { enabled: true }
/// ```
public struct AlertsConfig: Decodable, Sendable, Hashable {
    public struct Rule: Decodable, Sendable, Hashable {
        public var enabled: Bool?
        /// A duration (`stopped.after`), a percentage (`5%`) or a count.
        public var after: ConfigDuration?
        public var above: AlertThreshold?
        public var forDuration: ConfigDuration?

        enum CodingKeys: String, CodingKey {
            case enabled, after, above
            case forDuration = "for"
        }

        public init(enabled: Bool? = nil, after: ConfigDuration? = nil, above: AlertThreshold? = nil, forDuration: ConfigDuration? = nil) {
            self.enabled = enabled
            self.after = after
            self.above = above
            self.forDuration = forDuration
        }

        func overridden(by other: Rule?) -> Rule {
            guard let o = other else { return self }
            return Rule(
                enabled: o.enabled ?? enabled, after: o.after ?? after, above: o.above ?? above, forDuration: o.forDuration ?? forDuration)
        }
    }

    public var stopped: Rule?
    public var errorRate: Rule?
    public var deadLetters: Rule?
    public var volumeDrop: Rule?
    public var schemaDrift: Rule?
    public var latency: Rule?

    enum CodingKeys: String, CodingKey {
        case stopped, latency
        case errorRate = "error_rate"
        case deadLetters = "dead_letters"
        case volumeDrop = "volume_drop"
        case schemaDrift = "schema_drift"
    }

    public init(
        stopped: Rule? = nil, errorRate: Rule? = nil, deadLetters: Rule? = nil, volumeDrop: Rule? = nil, schemaDrift: Rule? = nil,
        latency: Rule? = nil
    ) {
        self.latency = latency
        self.stopped = stopped
        self.errorRate = errorRate
        self.deadLetters = deadLetters
        self.volumeDrop = volumeDrop
        self.schemaDrift = schemaDrift
    }

    /// These settings with every key `other` sets taken from it.
    public func overridden(by other: AlertsConfig?) -> AlertsConfig {
        guard let o = other else { return self }
        func merge(_ a: Rule?, _ b: Rule?) -> Rule? { a.map { $0.overridden(by: b) } ?? b }
        return AlertsConfig(
            stopped: merge(stopped, o.stopped), errorRate: merge(errorRate, o.errorRate), deadLetters: merge(deadLetters, o.deadLetters),
            volumeDrop: merge(volumeDrop, o.volumeDrop), schemaDrift: merge(schemaDrift, o.schemaDrift), latency: merge(latency, o.latency))
    }

    public static let spec: OptionSpec = {
        func rule(_ name: String, _ options: [OptionSpec], example: String, _ description: String) -> OptionSpec {
            OptionSpec(
                name,
                .object(
                    [OptionSpec("enabled", .boolean, default: "true", example: "false", "Turn the rule off.")] + options
                        + [OptionSpec("for", .duration, example: "10m", "How long the condition must hold before the alert fires.")]),
                example: example, description)
        }
        return OptionSpec(
            "alerts",
            .object([
                rule(
                    "stopped", [OptionSpec("after", .duration, default: "15m", example: "1h", "No commit for this long.")],
                    example: "{ after: 15m }", "Critical: ingestion stopped (no commit since this long, or since the run started)."),
                rule(
                    "error_rate", [OptionSpec("above", .string, default: "5%", example: "1%", "Dead-lettered records per record read.")],
                    example: "{ above: 5%, for: 5m }", "Critical: the share of records dead-lettered over 5 minutes."),
                rule(
                    "latency", [OptionSpec("above", .duration, default: "15m", example: "1m", "The end-to-end latency's 99th percentile.")],
                    example: "{ above: 15m, for: 5m }", "Critical: the end-to-end latency (origin to commit) over 15 minutes is above the SLA."),
                rule(
                    "dead_letters", [OptionSpec("above", .string, default: "1000", example: "100", "Records in the dead-letter queue.")],
                    example: "{ above: 1000 }", "Critical: the dead-letter queue's size."),
                rule(
                    "volume_drop",
                    [OptionSpec("above", .string, default: "20%", example: "50%", "Drop of the hourly input rate against the same hour a day before.")],
                    example: "{ above: 20%, for: 30m }", "Warning: input volume dropped against yesterday's same hour."),
                rule("schema_drift", [], example: "{ enabled: true }", "Warning: the records' shape changed in the last 15 minutes."),
            ]), example: "{ error_rate: { above: 5%, for: 5m }, dead_letters: { above: 1000 } }",
            "Alert rules (at the top level: defaults for every pipeline; in a pipeline: overrides). `sluice alerts rules --format prometheus` exports them for Prometheus."
        )
    }()
}

/// A threshold written as a percentage (`5%`), a plain number (`0.05`, `1000`) or a duration
/// (`15m`, in seconds).
public struct AlertThreshold: Decodable, Sendable, Hashable, CustomStringConvertible {
    public var value: Double
    public var isPercent: Bool

    public init(_ value: Double, percent: Bool = false) {
        self.value = value
        isPercent = percent
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.singleValueContainer()
        if let number = try? c.decode(Double.self) {
            self.init(number)
            return
        }
        let text = try c.decode(String.self).trimmingCharacters(in: .whitespaces)
        if text.hasSuffix("%"), let n = Double(text.dropLast().trimmingCharacters(in: .whitespaces)) {
            self.init(n / 100, percent: true)
        } else if let n = Double(text) {
            self.init(n)
        } else if let d = ConfigDuration.parse(text) {
            self.init(Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18)
        } else {
            throw decoder.configError("expected a number, a percentage like 5% or a duration like 15m, found '\(text)'")
        }
    }

    public var description: String { isPercent ? "\(value * 100)%" : "\(value)" }
}

/// One alert rule resolved for one pipeline: what it means and its PromQL.
public struct AlertRule: Sendable, Hashable {
    public enum Severity: String, Sendable { case critical, warning }

    public var name: String
    public var pipeline: String
    public var severity: Severity
    public var expression: String
    public var forDuration: Duration
    public var summary: String

    /// The rules of `pipeline` with the seed's defaults and `config`'s overrides; disabled ones
    /// are left out.
    public static func rules(pipeline: String, config: AlertsConfig) -> [AlertRule] {
        let p = "pipeline=\"\(pipeline)\""
        var rules: [AlertRule] = []
        func add(_ rule: AlertsConfig.Rule?, _ make: (AlertsConfig.Rule) -> AlertRule) {
            let r = rule ?? AlertsConfig.Rule()
            if r.enabled ?? true { rules.append(make(r)) }
        }
        add(config.stopped) { r in
            let after = seconds(r.after?.duration ?? .seconds(900))
            return AlertRule(
                name: "SluiceIngestionStopped", pipeline: pipeline, severity: .critical,
                expression: "time() - sluice_last_commit_timestamp_seconds{\(p)} > \(format(after))",
                forDuration: r.forDuration?.duration ?? .zero,
                summary: "pipeline \(pipeline) has committed nothing for more than \(format(after)) s")
        }
        add(config.errorRate) { r in
            let above = r.above?.value ?? 0.05
            return AlertRule(
                name: "SluiceErrorRateHigh", pipeline: pipeline, severity: .critical,
                expression:
                    "sum(rate(sluice_dead_letters_total{\(p)}[5m])) / sum(rate(sluice_records_in_total{\(p)}[5m])) > \(format(above))",
                forDuration: r.forDuration?.duration ?? .seconds(300),
                summary: "more than \(format(above * 100))% of pipeline \(pipeline)'s records are dead-lettered")
        }
        add(config.latency) { r in
            let sla = r.above?.value ?? 900
            return AlertRule(
                name: "SluiceLatencyAboveSLA", pipeline: pipeline, severity: .critical,
                expression:
                    "histogram_quantile(0.99, sum by (le) (rate(sluice_end_to_end_latency_seconds_bucket{\(p)}[15m]))) > \(format(sla))",
                forDuration: r.forDuration?.duration ?? .seconds(300),
                summary: "pipeline \(pipeline)'s end-to-end latency p99 is above \(format(sla)) s")
        }
        add(config.deadLetters) { r in
            let above = r.above?.value ?? 1000
            return AlertRule(
                name: "SluiceDeadLetterQueueLarge", pipeline: pipeline, severity: .critical,
                expression: "sluice_dead_letter_queue_records{\(p)} > \(format(above))",
                forDuration: r.forDuration?.duration ?? .zero,
                summary: "pipeline \(pipeline)'s dead-letter queue holds more than \(format(above)) records")
        }
        add(config.volumeDrop) { r in
            let drop = r.above?.value ?? 0.2
            return AlertRule(
                name: "SluiceVolumeDrop", pipeline: pipeline, severity: .warning,
                expression:
                    "sum(rate(sluice_records_in_total{\(p)}[1h])) < \(format(1 - drop)) * sum(rate(sluice_records_in_total{\(p)}[1h] offset 1d))",
                forDuration: r.forDuration?.duration ?? .seconds(1800),
                summary: "pipeline \(pipeline)'s input fell more than \(format(drop * 100))% below the same hour yesterday")
        }
        add(config.schemaDrift) { r in
            AlertRule(
                name: "SluiceSchemaDrift", pipeline: pipeline, severity: .warning,
                expression: "sum(increase(sluice_schema_drift_total{\(p)}[15m])) > 0",
                forDuration: r.forDuration?.duration ?? .zero,
                summary: "the records of pipeline \(pipeline) changed shape")
        }
        return rules
    }

    static func seconds(_ d: Duration) -> Double { Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18 }

    /// A number as PromQL and people read it: no trailing `.0`.
    static func format(_ x: Double) -> String {
        x == x.rounded() && abs(x) < 1e15 ? String(Int64(x)) : String(x)
    }

    /// `10m`, `30s`, `0s` for Prometheus's `for:`.
    static func promDuration(_ d: Duration) -> String {
        let s = Int64(seconds(d).rounded())
        if s > 0 && s % 3600 == 0 { return "\(s / 3600)h" }
        if s > 0 && s % 60 == 0 { return "\(s / 60)m" }
        return "\(s)s"
    }

    /// The rules as a Prometheus alerting-rules file (one group).
    public static func prometheusRules(_ rules: [AlertRule]) -> String {
        var out = "# Generated by `sluice alerts rules --format prometheus`: Sluice's alert rules over its /metrics.\ngroups:\n  - name: sluice\n    rules:\n"
        for r in rules {
            out += "      - alert: \(r.name)\n"
            out += "        expr: '\(r.expression.replacingOccurrences(of: "'", with: "''"))'\n"
            out += "        for: \(promDuration(r.forDuration))\n"
            out += "        labels:\n          severity: \(r.severity.rawValue)\n          pipeline: \"\(r.pipeline)\"\n"
            out += "        annotations:\n          summary: \"\(r.summary.replacingOccurrences(of: "\"", with: "\\\""))\"\n"
        }
        return out
    }
}
