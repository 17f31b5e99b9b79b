import Foundation
import SluiceTesting
import Testing

/// `sluice alerts rules --format prometheus`: the exported rules pass `promtool check rules`,
/// and `promtool test rules` drives each over synthetic series to firing and back.
@Suite(.offCooperativePool) struct AlertRulesTests {
    @Test func theExportedRulesPassPromtoolsCheckAndUnitTests() async throws {
        let dir = try makeWorkDirectory("alert-rules")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try write(
            """
            alerts:
              error_rate: { above: 2%, for: 10m }
              latency: { above: 1m, for: 2m }
            pipelines:
              a:
                source: { file: { path: "x/*.csv" } }
                sink: { ndjson: { path: out } }
                alerts: { dead_letters: { above: 50 }, volume_drop: { enabled: false } }
              b:
                source: { file: { path: "y/*.csv" } }
                sink: { ndjson: { path: out2 } }
                alerts: { stopped: { enabled: false } }
            """, to: "\(dir)/p.yaml")
        let export = try await SluiceProcess.runWithoutBlocking(["alerts", "rules", "-c", "p.yaml", "--format", "prometheus", "-o", "rules.yml"], in: dir)
        #expect(export.status == 0, "\(export.stderr)")
        let check = try await runTool(["promtool", "check", "rules", "rules.yml"], in: dir)
        #expect(check.0 == 0 && check.1.contains("SUCCESS: 14 rules found"), "\(check.1)")

        func alert(_ name: String, _ pipeline: String, _ severity: String, _ summary: String) -> String {
            "{ exp_labels: { alertname: \(name), severity: \(severity), pipeline: \"\(pipeline)\" }, exp_annotations: { summary: \"\(summary)\" } }"
        }
        let stopped = alert("SluiceIngestionStopped", "a", "critical", "pipeline a stopped: nothing committed for more than 900 s, or it failed")
        let errorRate = alert("SluiceErrorRateHigh", "a", "critical", "more than 2% of pipeline a's records are dead-lettered")
        let dlq = alert("SluiceDeadLetterQueueLarge", "a", "critical", "pipeline a's dead-letter queue holds more than 50 records")
        let drift = alert("SluiceSchemaDrift", "a", "warning", "the records of pipeline a changed shape")
        let latency = alert("SluiceLatencyAboveSLA", "a", "critical", "pipeline a's end-to-end latency p99 is above 60 s")
        let drop = alert("SluiceVolumeDrop", "b", "warning", "pipeline b's input fell more than 20% below the same hour of previous days")
        let missing = alert(
            "SluiceMissingData", "a", "critical",
            "pipeline a lost records: read but neither written, dead-lettered nor deduplicated, or a sequence skipped")
        let cost = alert("SluiceCostSpike", "b", "warning", "pipeline b's cost rose more than 20% above the same hour yesterday")
        try write(
            """
            rule_files: [rules.yml]
            evaluation_interval: 1m
            tests:
              - interval: 1m
                input_series:
                  # a: no commit since the run started at time 0 (the gauge's baseline).
                  - series: 'sluice_last_commit_timestamp_seconds{pipeline="a"}'
                    values: '0x40'
                  - series: 'sluice_last_commit_timestamp_seconds{pipeline="b"}'
                    values: '0x40'
                  # a: 100 records a minute, 10 of them dead-lettered (10% > 2%).
                  - series: 'sluice_records_in_total{pipeline="a"}'
                    values: '0+100x40'
                  - series: 'sluice_dead_letters_total{pipeline="a",stage="decode",kind="malformed_input"}'
                    values: '0+10x40'
                  - series: 'sluice_dead_letter_queue_records{pipeline="a"}'
                    values: '0+10x40'
                  - series: 'sluice_schema_drift_total{pipeline="a",kind="column_added"}'
                    values: '0 0 0 1x40'
                  # a: one batch a minute; from minute 10 on each waited 5 minutes (le 300), not 1 s (le 1).
                  - series: 'sluice_end_to_end_latency_seconds_bucket{pipeline="a",le="1"}'
                    values: '0+1x10 10x30'
                  - series: 'sluice_end_to_end_latency_seconds_bucket{pipeline="a",le="300"}'
                    values: '0+1x40'
                  - series: 'sluice_end_to_end_latency_seconds_bucket{pipeline="a",le="+Inf"}'
                    values: '0+1x40'
                  # a: one record found missing at minute 5.
                  - series: 'sluice_missing_records_total{pipeline="a",check="ledger"}'
                    values: '0x4 1x40'
                alert_rule_test:
                  - { eval_time: 10m, alertname: SluiceIngestionStopped, exp_alerts: [] }
                  - { eval_time: 16m, alertname: SluiceIngestionStopped, exp_alerts: [\(stopped)] }
                  - { eval_time: 8m, alertname: SluiceErrorRateHigh, exp_alerts: [] }
                  - { eval_time: 20m, alertname: SluiceErrorRateHigh, exp_alerts: [\(errorRate)] }
                  - { eval_time: 4m, alertname: SluiceDeadLetterQueueLarge, exp_alerts: [] }
                  - { eval_time: 7m, alertname: SluiceDeadLetterQueueLarge, exp_alerts: [\(dlq)] }
                  - { eval_time: 9m, alertname: SluiceLatencyAboveSLA, exp_alerts: [] }
                  - { eval_time: 30m, alertname: SluiceLatencyAboveSLA, exp_alerts: [\(latency)] }
                  - { eval_time: 2m, alertname: SluiceSchemaDrift, exp_alerts: [] }
                  - { eval_time: 5m, alertname: SluiceSchemaDrift, exp_alerts: [\(drift)] }
                  - { eval_time: 25m, alertname: SluiceSchemaDrift, exp_alerts: [] }
                  - { eval_time: 3m, alertname: SluiceMissingData, exp_alerts: [] }
                  - { eval_time: 6m, alertname: SluiceMissingData, exp_alerts: [\(missing)] }
                  - { eval_time: 30m, alertname: SluiceMissingData, exp_alerts: [] }
              - interval: 1m
                input_series:
                  # b: 100 records a minute for a day, then 50: the same hour yesterday had twice as many.
                  - series: 'sluice_records_in_total{pipeline="b"}'
                    values: '0+100x1440 144050+50x180'
                  # a had no drop rule (disabled), whatever its input.
                  - series: 'sluice_records_in_total{pipeline="a"}'
                    values: '0+100x1440 144010+10x180'
                  # b: a cent a minute for a day, then two.
                  - series: 'sluice_cost_dollars_total{pipeline="b"}'
                    values: '0+0.01x1440 14.41+0.02x180'
                alert_rule_test:
                  - { eval_time: 23h, alertname: SluiceVolumeDrop, exp_alerts: [] }
                  - { eval_time: 26h, alertname: SluiceVolumeDrop, exp_alerts: [\(drop)] }
                  - { eval_time: 23h, alertname: SluiceCostSpike, exp_alerts: [] }
                  - { eval_time: 26h, alertname: SluiceCostSpike, exp_alerts: [\(cost)] }
            """, to: "\(dir)/tests.yml")
        let unit = try await runTool(["promtool", "test", "rules", "tests.yml"], in: dir)
        #expect(unit.0 == 0 && unit.1.contains("SUCCESS"), "\(unit.1)")
    }

    /// A real Prometheus scrapes a running `sluice run` every second with the exported rules,
    /// and the dead-letter alert it evaluates comes back firing through its HTTP API.
    @Test func aRealPrometheusScrapesSluiceAndFiresItsAlert() async throws {
        let dir = try makeWorkDirectory("prometheus")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try write(
            """
            alerts: { dead_letters: { above: 1 }, stopped: { enabled: false }, volume_drop: { enabled: false } }
            pipelines:
              watched:
                source: { file: { path: data, format: ndjson, watch: true, poll_interval: 200ms, min_age: 0s } }
                sink: { ndjson: { path: out, max_file_age: 200ms } }
            """, to: "\(dir)/p.yaml")
        try write("{\"id\":1}\n{bad\n{also bad\n{\"id\":2}\n", to: "\(dir)/data/1.ndjson")
        let export = try await SluiceProcess.runWithoutBlocking(["alerts", "rules", "-c", "p.yaml", "-o", "rules.yml"], in: dir)
        #expect(export.status == 0, "\(export.stderr)")
        let metricsPort = try freePort()
        let promPort = try freePort()
        let sluice = try SluiceProcess.start(["run", "p.yaml", "--metrics-port", "\(metricsPort)"], in: dir, log: "\(dir)/sluice.log")
        defer { if sluice.isRunning { kill(sluice.processIdentifier, SIGKILL) } }
        try write(
            """
            global: { scrape_interval: 1s, evaluation_interval: 1s }
            rule_files: [rules.yml]
            scrape_configs:
              - job_name: sluice
                static_configs: [{ targets: ["127.0.0.1:\(metricsPort)"] }]
            """, to: "\(dir)/prometheus.yml")
        let prometheus = Process()
        prometheus.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        prometheus.arguments = [
            "prometheus", "--config.file=prometheus.yml", "--storage.tsdb.path=tsdb", "--web.listen-address=127.0.0.1:\(promPort)",
        ]
        prometheus.currentDirectoryURL = URL(fileURLWithPath: dir)
        FileManager.default.createFile(atPath: "\(dir)/prometheus.log", contents: nil)
        let log = try FileHandle(forWritingTo: URL(fileURLWithPath: "\(dir)/prometheus.log"))
        prometheus.standardOutput = log
        prometheus.standardError = log
        try ChildProcesses.run(prometheus)
        defer {
            kill(prometheus.processIdentifier, SIGKILL)
            prometheus.waitUntilExit()
        }
        // Firing, as Prometheus's own API says (two dead letters > 1).
        let firing = try await waitUntil(seconds: 90, interval: .milliseconds(500)) {
            let body = (try? curl(["http://127.0.0.1:\(promPort)/api/v1/alerts"]))?.body ?? ""
            return body.contains("\"alertname\":\"SluiceDeadLetterQueueLarge\"") && body.contains("\"state\":\"firing\"")
                && body.contains("\"pipeline\":\"watched\"")
        }
        let log2 = (try? String(contentsOfFile: "\(dir)/prometheus.log", encoding: .utf8)) ?? ""
        #expect(firing, "no firing alert; prometheus said: \(log2.suffix(1500))")
        // The rule's series, queried back: Sluice's gauge as Prometheus scraped it.
        let query = try await offPool {
            try curl(["-G", "http://127.0.0.1:\(promPort)/api/v1/query", "--data-urlencode", "query=sluice_dead_letter_queue_records"])
        }
        #expect(query.body.contains("\"pipeline\":\"watched\"") && query.body.contains("\"2\"]"), "\(query.body)")
        kill(sluice.processIdentifier, SIGTERM)
        await waitForExit(sluice)
        #expect(sluice.terminationStatus == 0)
    }
}
