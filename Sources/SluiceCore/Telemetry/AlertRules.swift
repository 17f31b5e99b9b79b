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
        /// The window a rate or a quantile is measured over.
        public var over: ConfigDuration?

        enum CodingKeys: String, CodingKey {
            case enabled, after, above, over
            case forDuration = "for"
        }

        public init(
            enabled: Bool? = nil, after: ConfigDuration? = nil, above: AlertThreshold? = nil, forDuration: ConfigDuration? = nil,
            over: ConfigDuration? = nil
        ) {
            self.enabled = enabled
            self.after = after
            self.above = above
            self.forDuration = forDuration
            self.over = over
        }

        func overridden(by other: Rule?) -> Rule {
            guard let o = other else { return self }
            return Rule(
                enabled: o.enabled ?? enabled, after: o.after ?? after, above: o.above ?? above, forDuration: o.forDuration ?? forDuration,
                over: o.over ?? over)
        }
    }

    /// `webhooks: [{ url: https://…, secret: ${ALERT_SECRET}, format: slack }]`.
    public struct Webhook: Decodable, Sendable, Hashable, CustomStringConvertible {
        public enum Format: String, Decodable, Sendable { case json, slack }
        public var url: String
        /// Signs each body with HMAC-SHA256 (`X-Sluice-Signature`, `X-Sluice-Timestamp`), as
        /// the push endpoint verifies.
        public var secret: String?
        public var format: Format

        enum CodingKeys: String, CodingKey { case url, secret, format }

        public init(url: String, secret: String? = nil, format: Format = .json) {
            self.url = url
            self.secret = secret
            self.format = format
        }

        public init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            url = try c.decode(String.self, forKey: .url)
            guard let parsed = URL(string: url), ["http", "https"].contains(parsed.scheme?.lowercased() ?? ""), parsed.host != nil else {
                // Named by what is safe to print: a webhook's path or query may be its secret.
                let shown = URLComponents(string: url)?.scheme.map { "a \($0): URL" } ?? "no URL"
                throw try c.superDecoder(forKey: .url).configError("expected an http:// or https:// URL with a host, found \(shown)")
            }
            secret = try c.decodeIfPresent(String.self, forKey: .secret)
            let format = try c.decodeIfPresent(String.self, forKey: .format) ?? "json"
            guard let f = Format(rawValue: format) else {
                throw try c.superDecoder(forKey: .format).configError("unknown format '\(format)'; use json or slack")
            }
            self.format = f
        }

        /// The URL's scheme, host and port only: its path, query and credentials may hold
        /// tokens (a Slack webhook's path is its secret).
        public var description: String {
            guard let parts = URLComponents(string: url), let scheme = parts.scheme, let host = parts.host else { return "webhook" }
            let port = parts.port.map { ":\($0)" } ?? ""
            let path = parts.path.isEmpty || parts.path == "/" ? "" : "/…"
            return "\(scheme)://\(host)\(port)\(path)"
        }
    }

    public var stopped: Rule?
    public var errorRate: Rule?
    public var deadLetters: Rule?
    public var volumeDrop: Rule?
    public var schemaDrift: Rule?
    public var latency: Rule?
    public var missingData: Rule?
    public var costSpike: Rule?
    /// Where notifications go besides the log (a pipeline's list replaces the file's).
    public var webhooks: [Webhook]?
    /// How often the rules are evaluated (top level only).
    public var evaluateEvery: ConfigDuration?
    /// How long resolved alerts are kept in the state store (top level only).
    public var history: ConfigDuration?

    enum CodingKeys: String, CodingKey {
        case stopped, latency, webhooks, history
        case errorRate = "error_rate"
        case deadLetters = "dead_letters"
        case volumeDrop = "volume_drop"
        case schemaDrift = "schema_drift"
        case missingData = "missing_data"
        case costSpike = "cost_spike"
        case evaluateEvery = "evaluate_every"
    }

    public init(
        stopped: Rule? = nil, errorRate: Rule? = nil, deadLetters: Rule? = nil, volumeDrop: Rule? = nil, schemaDrift: Rule? = nil,
        latency: Rule? = nil, missingData: Rule? = nil, costSpike: Rule? = nil, webhooks: [Webhook]? = nil,
        evaluateEvery: ConfigDuration? = nil, history: ConfigDuration? = nil
    ) {
        self.latency = latency
        self.stopped = stopped
        self.errorRate = errorRate
        self.deadLetters = deadLetters
        self.volumeDrop = volumeDrop
        self.schemaDrift = schemaDrift
        self.missingData = missingData
        self.costSpike = costSpike
        self.webhooks = webhooks
        self.evaluateEvery = evaluateEvery
        self.history = history
    }

    /// These settings with every key `other` sets taken from it.
    public func overridden(by other: AlertsConfig?) -> AlertsConfig {
        guard let o = other else { return self }
        func merge(_ a: Rule?, _ b: Rule?) -> Rule? { a.map { $0.overridden(by: b) } ?? b }
        return AlertsConfig(
            stopped: merge(stopped, o.stopped), errorRate: merge(errorRate, o.errorRate), deadLetters: merge(deadLetters, o.deadLetters),
            volumeDrop: merge(volumeDrop, o.volumeDrop), schemaDrift: merge(schemaDrift, o.schemaDrift), latency: merge(latency, o.latency),
            missingData: merge(missingData, o.missingData), costSpike: merge(costSpike, o.costSpike), webhooks: o.webhooks ?? webhooks,
            evaluateEvery: o.evaluateEvery ?? evaluateEvery, history: o.history ?? history)
    }

    /// How often the rules are evaluated: 15 s unless set.
    public var evaluationInterval: Duration { evaluateEvery?.duration ?? .seconds(15) }
    /// How long resolved alerts are kept: 30 days unless set.
    public var historyTTL: Duration { history?.duration ?? .seconds(30 * 86_400) }

    /// The `alerts:` option at the top level of a file (`topLevel`) or in a pipeline.
    public static func spec(topLevel: Bool) -> OptionSpec {
        func rule(_ name: String, _ options: [OptionSpec], example: String, _ description: String) -> OptionSpec {
            OptionSpec(
                name,
                .object(
                    [OptionSpec("enabled", .boolean, default: "true", example: "false", "Turn the rule off.")] + options
                        + [OptionSpec("for", .duration, example: "10m", "How long the condition must hold before the alert fires.")]),
                example: example, description)
        }
        func over(_ d: String) -> OptionSpec { OptionSpec("over", .duration, default: d, example: "1m", "The window it is measured over.") }
        var options: [OptionSpec] = [
            rule(
                "stopped",
                [
                    OptionSpec(
                        "after", .duration, default: "15m", example: "1h", "No commit for this long (plus the interval between pulls of a scheduled source).")
                ],
                example: "{ after: 15m }",
                "Critical: ingestion stopped (no commit since this long, or since the run started; for a scheduled source, a pull that did not succeed in its window)."
            ),
            rule(
                "error_rate", [OptionSpec("above", .string, default: "5%", example: "1%", "Dead-lettered records per record read."), over("5m")],
                example: "{ above: 5%, for: 5m }", "Critical: the share of records dead-lettered."),
            rule(
                "latency", [OptionSpec("above", .duration, default: "15m", example: "1m", "The end-to-end latency's 99th percentile."), over("15m")],
                example: "{ above: 15m, for: 5m }", "Critical: the end-to-end latency (origin to commit) is above the SLA."),
            rule(
                "dead_letters", [OptionSpec("above", .string, default: "1000", example: "100", "Records in the dead-letter queue.")],
                example: "{ above: 1000 }", "Critical: the dead-letter queue's size."),
            rule(
                "missing_data", [over("15m")], example: "{ enabled: true }",
                "Critical: the reconciliation found records read but neither written, dead-lettered nor deduplicated, or gaps in a declared sequence (`reconcile:`)."
            ),
            rule(
                "volume_drop",
                [OptionSpec("above", .string, default: "20%", example: "50%", "Drop of the last hour's input against the same hour of the previous days.")],
                example: "{ above: 20%, for: 30m }", "Warning: input volume dropped against the same hour of the previous 7 days."),
            rule("schema_drift", [over("15m")], example: "{ enabled: true }", "Warning: the records' shape changed."),
            rule(
                "cost_spike",
                [OptionSpec("above", .string, default: "20%", example: "50%", "Rise of the last hour's cost against the same hour a day before.")],
                example: "{ above: 20% }",
                "Warning: the pipeline's cost in the last hour (cost accounting: `sluice_cost_dollars_total`, `sluice cost`) rose above the same hour a day before."
            ),
            OptionSpec(
                "webhooks",
                .list(
                    .object([
                        OptionSpec(
                            "url", .string, required: true, example: "https://hooks.example.com/sluice", "Where each firing and resolved alert is POSTed."),
                        OptionSpec(
                            "secret", .string, example: "${ALERT_WEBHOOK_SECRET}",
                            "Signs each body: `X-Sluice-Signature: sha256=<hex HMAC-SHA256 of \"<timestamp>.<body>\">`, `X-Sluice-Timestamp`."),
                        OptionSpec(
                            "format", .choice(["json", "slack"]), default: "json", example: "slack",
                            "The body: Sluice's JSON, or a Slack-compatible `text` message."),
                    ])), example: "[{ url: https://hooks.example.com/sluice, secret: ${ALERT_SECRET} }]",
                "Receivers of alert notifications (besides the log), retried with backoff until delivered. A pipeline's list replaces the file's."),
        ]
        if topLevel {
            options += [
                OptionSpec("evaluate_every", .duration, default: "15s", example: "5s", "How often the rules are evaluated."),
                OptionSpec("history", .duration, default: "30d", example: "90d", "How long resolved alerts are kept (`sluice alerts list`)."),
            ]
        }
        return OptionSpec(
            "alerts", .object(options), example: "{ error_rate: { above: 5%, for: 5m }, dead_letters: { above: 1000 } }",
            topLevel
                ? "Alert rules for every pipeline, evaluated inside `sluice run` and `sluice serve` (`sluice alerts rules --format prometheus` exports them for Prometheus)."
                : "This pipeline's overrides of the file's alert rules.")
    }
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

/// One alert rule resolved for one pipeline: what it measures, its threshold, and its PromQL.
public struct AlertRule: Sendable, Hashable {
    public enum Severity: String, Sendable { case critical, warning }
    /// What the rule measures (the in-process evaluation; ``expression`` is the same in PromQL).
    public enum Kind: String, Sendable, Hashable {
        case stopped, errorRate, latency, deadLetters, missingData, volumeDrop, schemaDrift, costSpike
    }

    public var name: String
    public var pipeline: String
    public var kind: Kind
    public var severity: Severity
    /// Seconds (stopped, latency), a fraction (error rate, volume drop, cost spike) or a count.
    public var threshold: Double
    /// The window a rate, a quantile or a count of events is taken over.
    public var window: Duration
    public var expression: String
    public var forDuration: Duration
    public var summary: String

    /// The rules of `pipeline` with the seed's defaults and `config`'s overrides; disabled ones
    /// are left out.
    public static func rules(pipeline: String, config: AlertsConfig) -> [AlertRule] {
        let p = "pipeline=\"\(pipeline)\""
        var rules: [AlertRule] = []
        func add(
            _ rule: AlertsConfig.Rule?, _ kind: Kind, _ name: String, _ severity: Severity, threshold: (AlertsConfig.Rule) -> Double,
            window: Duration, for defaultFor: Duration, _ make: (_ threshold: Double, _ window: String) -> (expression: String, summary: String)
        ) {
            let r = rule ?? AlertsConfig.Rule()
            guard r.enabled ?? true else { return }
            let t = threshold(r)
            let w = r.over?.duration ?? window
            let (expression, summary) = make(t, promDuration(w))
            rules.append(
                AlertRule(
                    name: name, pipeline: pipeline, kind: kind, severity: severity, threshold: t, window: w, expression: expression,
                    forDuration: r.forDuration?.duration ?? defaultFor, summary: summary))
        }
        add(
            config.stopped, .stopped, "SluiceIngestionStopped", .critical, threshold: { seconds($0.after?.duration ?? .seconds(900)) },
            window: .zero, for: .zero
        ) { after, _ in
            (
                "time() - sluice_last_commit_timestamp_seconds{\(p)} > \(format(after))",
                "pipeline \(pipeline) stopped: nothing committed for more than \(format(after)) s, or it failed"
            )
        }
        add(
            config.errorRate, .errorRate, "SluiceErrorRateHigh", .critical, threshold: { $0.above?.value ?? 0.05 }, window: .seconds(300),
            for: .seconds(300)
        ) { above, w in
            (
                "sum(rate(sluice_dead_letters_total{\(p)}[\(w)])) / sum(rate(sluice_records_in_total{\(p)}[\(w)])) > \(format(above))",
                "more than \(format(above * 100))% of pipeline \(pipeline)'s records are dead-lettered"
            )
        }
        add(
            config.latency, .latency, "SluiceLatencyAboveSLA", .critical, threshold: { $0.above?.value ?? 900 }, window: .seconds(900),
            for: .seconds(300)
        ) { sla, w in
            (
                "histogram_quantile(0.99, sum by (le) (rate(sluice_end_to_end_latency_seconds_bucket{\(p)}[\(w)]))) > \(format(sla))",
                "pipeline \(pipeline)'s end-to-end latency p99 is above \(format(sla)) s"
            )
        }
        add(
            config.deadLetters, .deadLetters, "SluiceDeadLetterQueueLarge", .critical, threshold: { $0.above?.value ?? 1000 }, window: .zero,
            for: .zero
        ) { above, _ in
            (
                "sluice_dead_letter_queue_records{\(p)} > \(format(above))",
                "pipeline \(pipeline)'s dead-letter queue holds more than \(format(above)) records"
            )
        }
        add(
            config.missingData, .missingData, "SluiceMissingData", .critical, threshold: { _ in 0 }, window: .seconds(900), for: .zero
        ) { _, w in
            (
                "sum(increase(sluice_missing_records_total{\(p)}[\(w)])) > 0",
                "pipeline \(pipeline) lost records: read but neither written, dead-lettered nor deduplicated, or a sequence skipped"
            )
        }
        add(
            config.volumeDrop, .volumeDrop, "SluiceVolumeDrop", .warning, threshold: { $0.above?.value ?? 0.2 }, window: .seconds(3600),
            for: .seconds(1800)
        ) { drop, _ in
            (
                "sum(rate(sluice_records_in_total{\(p)}[1h])) < \(format(1 - drop)) * sum(rate(sluice_records_in_total{\(p)}[1h] offset 1d))",
                "pipeline \(pipeline)'s input fell more than \(format(drop * 100))% below the same hour of previous days"
            )
        }
        add(
            config.schemaDrift, .schemaDrift, "SluiceSchemaDrift", .warning, threshold: { _ in 0 }, window: .seconds(900), for: .zero
        ) { _, w in
            ("sum(increase(sluice_schema_drift_total{\(p)}[\(w)])) > 0", "the records of pipeline \(pipeline) changed shape")
        }
        add(
            config.costSpike, .costSpike, "SluiceCostSpike", .warning, threshold: { $0.above?.value ?? 0.2 }, window: .seconds(3600),
            for: .seconds(1800)
        ) { rise, _ in
            (
                "sum(rate(sluice_cost_dollars_total{\(p)}[1h])) > \(format(1 + rise)) * sum(rate(sluice_cost_dollars_total{\(p)}[1h] offset 1d))",
                "pipeline \(pipeline)'s cost rose more than \(format(rise * 100))% above the same hour yesterday"
            )
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
