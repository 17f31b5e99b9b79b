import Foundation
import Testing

/// `sluice alerts rules --format prometheus`: the exported rules pass `promtool check rules`,
/// and `promtool test rules` drives each over synthetic series to firing and back.
@Suite struct AlertRulesTests {
    static func promtool(_ arguments: [String], in dir: String) throws -> (Int32, String) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = ["promtool"] + arguments
        p.currentDirectoryURL = URL(fileURLWithPath: dir)
        let out = Pipe()
        p.standardOutput = out
        p.standardError = out
        try p.run()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return (p.terminationStatus, String(decoding: data, as: UTF8.self))
    }

    @Test func theExportedRulesPassPromtoolsCheckAndUnitTests() async throws {
        let dir = try makeWorkDirectory("alert-rules")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try write(
            """
            alerts:
              error_rate: { above: 2%, for: 10m }
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
        let check = try await offPool { try Self.promtool(["check", "rules", "rules.yml"], in: dir) }
        #expect(check.0 == 0 && check.1.contains("SUCCESS: 8 rules found"), "\(check.1)")

        func alert(_ name: String, _ pipeline: String, _ severity: String, _ summary: String) -> String {
            "{ exp_labels: { alertname: \(name), severity: \(severity), pipeline: \"\(pipeline)\" }, exp_annotations: { summary: \"\(summary)\" } }"
        }
        let stopped = alert("SluiceIngestionStopped", "a", "critical", "pipeline a has committed nothing for more than 900 s")
        let errorRate = alert("SluiceErrorRateHigh", "a", "critical", "more than 2% of pipeline a's records are dead-lettered")
        let dlq = alert("SluiceDeadLetterQueueLarge", "a", "critical", "pipeline a's dead-letter queue holds more than 50 records")
        let drift = alert("SluiceSchemaDrift", "a", "warning", "the records of pipeline a changed shape")
        let drop = alert("SluiceVolumeDrop", "b", "warning", "pipeline b's input fell more than 20% below the same hour yesterday")
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
                alert_rule_test:
                  - { eval_time: 10m, alertname: SluiceIngestionStopped, exp_alerts: [] }
                  - { eval_time: 16m, alertname: SluiceIngestionStopped, exp_alerts: [\(stopped)] }
                  - { eval_time: 8m, alertname: SluiceErrorRateHigh, exp_alerts: [] }
                  - { eval_time: 20m, alertname: SluiceErrorRateHigh, exp_alerts: [\(errorRate)] }
                  - { eval_time: 4m, alertname: SluiceDeadLetterQueueLarge, exp_alerts: [] }
                  - { eval_time: 7m, alertname: SluiceDeadLetterQueueLarge, exp_alerts: [\(dlq)] }
                  - { eval_time: 2m, alertname: SluiceSchemaDrift, exp_alerts: [] }
                  - { eval_time: 5m, alertname: SluiceSchemaDrift, exp_alerts: [\(drift)] }
                  - { eval_time: 25m, alertname: SluiceSchemaDrift, exp_alerts: [] }
              - interval: 1m
                input_series:
                  # b: 100 records a minute for a day, then 50: the same hour yesterday had twice as many.
                  - series: 'sluice_records_in_total{pipeline="b"}'
                    values: '0+100x1440 144050+50x180'
                  # a had no drop rule (disabled), whatever its input.
                  - series: 'sluice_records_in_total{pipeline="a"}'
                    values: '0+100x1440 144010+10x180'
                alert_rule_test:
                  - { eval_time: 23h, alertname: SluiceVolumeDrop, exp_alerts: [] }
                  - { eval_time: 26h, alertname: SluiceVolumeDrop, exp_alerts: [\(drop)] }
            """, to: "\(dir)/tests.yml")
        let unit = try await offPool { try Self.promtool(["test", "rules", "tests.yml"], in: dir) }
        #expect(unit.0 == 0 && unit.1.contains("SUCCESS"), "\(unit.1)")
    }
}
