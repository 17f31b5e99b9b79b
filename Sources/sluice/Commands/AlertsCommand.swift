import ArgumentParser
import Foundation
import SluiceCore

/// `sluice alerts`: the alert rules of pipeline files.
struct AlertsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "alerts",
        abstract: "Export the pipelines' alert rules (for Prometheus and Alertmanager).",
        discussion: """
            The rules come from the files' `alerts:` blocks (defaults at the top, overrides per
            pipeline), with built-in defaults:
              critical  SluiceIngestionStopped      no commit for 15m (since the last commit or the run's start)
              critical  SluiceErrorRateHigh         more than 5% of records dead-lettered over 5m, for 5m
              critical  SluiceLatencyAboveSLA       end-to-end latency p99 above 15m, for 5m
              critical  SluiceDeadLetterQueueLarge  more than 1000 records in the dead-letter queue
              warning   SluiceVolumeDrop            hourly input 20% below the same hour yesterday, for 30m
              warning   SluiceSchemaDrift           the records changed shape in the last 15m

            Examples:
              sluice alerts rules -c pipelines.yaml --format prometheus > sluice-rules.yml
              promtool check rules sluice-rules.yml
            """,
        subcommands: [Rules.self]
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
}
