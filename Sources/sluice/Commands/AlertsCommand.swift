import ArgumentParser
import Foundation
import SluiceConnectors
import SluiceCore

/// `sluice alerts`: the alert rules of pipeline files.
struct AlertsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "alerts",
        abstract: "Alerts: the ones that fired (and resolved), and the rules exported for Prometheus.",
        discussion: """
            `sluice run` and `sluice serve` evaluate the rules every 15s (`alerts.evaluate_every`),
            log each firing and resolved transition, keep it in the state store (30 days after it
            resolved: `alerts.history`) and POST it to the `alerts.webhooks`. The rules come from
            the files' `alerts:` blocks (defaults at the top, overrides per pipeline), with
            built-in defaults:
              critical  SluiceIngestionStopped      no commit for 15m (plus the pull interval of a scheduled source)
              critical  SluiceErrorRateHigh         more than 5% of records dead-lettered over 5m, for 5m
              critical  SluiceLatencyAboveSLA       end-to-end latency p99 over 15m above 15m, for 5m
              critical  SluiceDeadLetterQueueLarge  more than 1000 records in the dead-letter queue
              critical  SluiceMissingData           records lost (reconciliation) in the last 15m
              warning   SluiceVolumeDrop            last hour's input 20% below the same hour of previous days, for 30m
              warning   SluiceSchemaDrift           the records changed shape in the last 15m
              warning   SluiceCostSpike             cost 20% above the same hour yesterday (with cost accounting)

            Examples:
              sluice alerts list -c pipelines.yaml               what fired, newest first
              sluice alerts list --firing --state .sluice/state.db
              sluice alerts show 12 -c pipelines.yaml
              sluice alerts rules -c pipelines.yaml --format prometheus > sluice-rules.yml
              promtool check rules sluice-rules.yml
            """,
        subcommands: [List.self, Show.self, Rules.self]
    )

    struct Rules: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "rules", abstract: "Print the alert rules as a Prometheus alerting-rules file.")
        @Option(name: [.short, .long], help: "Pipeline files (repeatable).") var config: [String]
        @Option(name: .long, help: "The output format: prometheus.") var format = "prometheus"
        @Option(name: .long, help: "Only this pipeline (repeatable).") var pipeline: [String] = []
        @Option(name: [.short, .long], help: "Write to this file instead of standard output.") var output: String?

        func validate() throws {
            guard format == "prometheus" else { throw ValidationError("--format: only 'prometheus' is supported") }
            guard !config.isEmpty else { throw ValidationError("give the pipeline file with -c FILE") }
        }

        func run() async throws {
            let (_, plans) = try await ConfigLoading.reportingErrors { try ConfigLoading.load(config) }
            let chosen = pipeline.isEmpty ? plans : plans.filter { pipeline.contains($0.name) }
            let rules = chosen.flatMap { AlertRule.rules(pipeline: $0.name, config: $0.settings.alerts) }
            let text = AlertRule.prometheusRules(rules)
            if let output {
                try text.write(toFile: output, atomically: true, encoding: .utf8)
            } else {
                print(text, terminator: "")
            }
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List alerts that fired, newest first, with when they resolved.")

        @Option(name: .long, help: "Only this pipeline.") var pipeline: String?
        @Flag(name: .long, help: "Only alerts firing now.") var firing = false
        @Option(name: .long, help: "At most this many.") var limit = 50
        @Flag(name: .long, help: "One JSON object per line.") var json = false
        @OptionGroup var stateOptions: StateOptions

        func run() async throws {
            let store = try await ConfigLoading.reportingErrors { try await BuiltinComponents.openState(try stateOptions.location()) }
            let alerts = try await store.alerts(pipeline: pipeline, firingOnly: firing, limit: limit)
            if json {
                for a in alerts { print(AlertRendering.json(a)) }
                return
            }
            if alerts.isEmpty {
                print(firing ? "no alert is firing" : "no alerts")
                return
            }
            print(AlertRendering.table(alerts, now: Date()))
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show one alert.")

        @Argument(help: "The id shown by `sluice alerts list`.") var id: Int64
        @OptionGroup var stateOptions: StateOptions

        func run() async throws {
            let store = try await ConfigLoading.reportingErrors { try await BuiltinComponents.openState(try stateOptions.location()) }
            guard let a = try await store.alert(id: id) else {
                FileHandle.standardError.write(Data("error: no alert #\(id); `sluice alerts list` shows the ids\n".utf8))
                throw ExitCode(1)
            }
            print(
                """
                id:        \(a.id)
                pipeline:  \(a.pipeline)
                alert:     \(a.name)
                severity:  \(a.severity)
                state:     \(a.isFiring ? "firing" : "resolved")
                summary:   \(a.summary)
                value:     \(AlertRendering.number(a.value))
                fired at:  \(AlertRendering.time(a.firedAt))
                resolved:  \(a.resolvedAt.map(AlertRendering.time) ?? "-")
                lasted:    \(AlertRendering.duration((a.resolvedAt ?? Date()).timeIntervalSince(a.firedAt)))
                """)
        }
    }
}

/// How alerts are printed.
enum AlertRendering {
    static func time(_ d: Date) -> String {
        let f = ISO8601DateFormatter()
        f.formatOptions = [.withInternetDateTime]
        return f.string(from: d)
    }

    static func number(_ x: Double) -> String { x == x.rounded() && abs(x) < 1e15 ? String(Int64(x)) : String(format: "%.4g", x) }

    static func duration(_ s: TimeInterval) -> String {
        let s = Int(s.rounded())
        if s < 120 { return "\(s)s" }
        if s < 7200 { return "\(s / 60)m" }
        if s < 172_800 { return "\(s / 3600)h\(s % 3600 / 60)m" }
        return "\(s / 86_400)d"
    }

    static func table(_ alerts: [AlertRecord], now: Date) -> String {
        var rows = [["ID", "STATE", "SEVERITY", "PIPELINE", "ALERT", "FIRED", "LASTED", "SUMMARY"]]
        for a in alerts {
            rows.append([
                "\(a.id)", a.isFiring ? "firing" : "resolved", a.severity, a.pipeline, a.name, time(a.firedAt),
                duration((a.resolvedAt ?? now).timeIntervalSince(a.firedAt)), a.summary,
            ])
        }
        let widths = (0..<rows[0].count - 1).map { c in rows.map { $0[c].count }.max() ?? 0 }
        return rows.map { row in
            zip(row.dropLast(), widths).map { $0.padding(toLength: $1, withPad: " ", startingAt: 0) }.joined(separator: "  ") + "  " + row.last!
        }.joined(separator: "\n")
    }

    static func json(_ a: AlertRecord) -> String {
        var fields: [String] = [
            "\"id\":\(a.id)", "\"pipeline\":\(quote(a.pipeline))", "\"alert\":\(quote(a.name))", "\"severity\":\(quote(a.severity))",
            "\"state\":\"\(a.isFiring ? "firing" : "resolved")\"", "\"summary\":\(quote(a.summary))", "\"value\":\(number(a.value))",
            "\"fired_at\":\"\(time(a.firedAt))\"",
        ]
        fields.append("\"resolved_at\":" + (a.resolvedAt.map { "\"\(time($0))\"" } ?? "null"))
        return "{" + fields.joined(separator: ",") + "}"
    }

    static func quote(_ s: String) -> String {
        let data = try? JSONSerialization.data(withJSONObject: [s], options: [.withoutEscapingSlashes])
        return data.map { String(decoding: $0.dropFirst().dropLast(), as: UTF8.self) } ?? "\"\""
    }
}
