import Foundation
import Testing
import SluiceTesting

/// The series `/metrics` serves for a pipeline, checked against a list (a rename is a conscious
/// change: edit the list and the operations guide together) and by Prometheus's own linter.
@Suite(.offCooperativePool) struct MetricsCatalogueTests {
    /// Every `sluice_*` series a watching file → NDJSON pipeline with one bad line exposes, with
    /// its label names.
    static let expected: [String: Set<String>] = [
        "sluice_records_in_total": ["pipeline"],
        "sluice_records_out_total": ["pipeline"],
        "sluice_input_bytes_total": ["pipeline"],
        "sluice_output_bytes_total": ["pipeline"],
        "sluice_output_files_total": ["pipeline"],
        "sluice_batches_total": ["pipeline"],
        "sluice_duplicates_total": ["pipeline"],
        "sluice_retries_total": ["pipeline"],
        "sluice_commits_total": ["pipeline"],
        "sluice_commit_conflicts_total": ["pipeline"],
        "sluice_commit_duration_seconds": ["pipeline"],
        "sluice_buffer_batches": ["pipeline"],
        "sluice_uncommitted_batches": ["pipeline"],
        "sluice_last_commit_timestamp_seconds": ["pipeline"],
        "sluice_dead_letter_queue_records": ["pipeline"],
        "sluice_dead_letter_queue_oldest_age_seconds": ["pipeline"],
        "sluice_dead_letters_total": ["pipeline", "stage", "kind"],
        "sluice_end_to_end_latency_seconds": ["pipeline"],
        "sluice_processing_seconds_total": ["pipeline"],
        "sluice_dead_letter_queue_reason_records": ["pipeline", "stage", "reason"],
        "sluice_dead_letter_queue_reason_oldest_age_seconds": ["pipeline", "stage", "reason"],
        "sluice_output_partitions_total": ["pipeline"],
        "sluice_cost_dollars_total": ["pipeline"],
    ]

    /// `name{a="x",b="y"} value` → (name without histogram/summary suffixes, label names).
    static func parse(_ line: Substring) -> (String, Set<String>)? {
        guard line.hasPrefix("sluice_") else { return nil }
        let nameEnd = line.firstIndex { $0 == "{" || $0 == " " } ?? line.endIndex
        var name = String(line[..<nameEnd])
        for suffix in ["_bucket", "_count", "_sum"] where name.hasSuffix(suffix) && !name.hasSuffix("_total") {
            name.removeLast(suffix.count)
        }
        var labels: Set<String> = []
        if line[nameEnd...].hasPrefix("{"), let close = line.lastIndex(of: "}") {
            for pair in line[line.index(after: nameEnd)..<close].split(separator: ",") {
                if let eq = pair.firstIndex(of: "=") { labels.insert(String(pair[..<eq])) }
            }
        }
        labels.remove("le")
        labels.remove("quantile")
        return (name, labels)
    }

    @Test func theSeriesOfAPipelineAreTheListedOnesAndPassPromtool() async throws {
        let dir = try makeWorkDirectory("metrics")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try write(
            """
            alerts: { evaluate_every: 200ms }
            pipelines:
              m:
                event_time: at
                source: { file: { path: data, format: ndjson, watch: true, poll_interval: 200ms, min_age: 0s } }
                sink: { ndjson: { path: out, max_file_age: 200ms } }
            """, to: "\(dir)/p.yaml")
        try write("{\"id\":1,\"at\":\"2026-01-01T00:00:00Z\"}\n{not json\n{\"id\":2,\"at\":\"2026-06-01T00:00:00Z\"}\n", to: "\(dir)/data/1.ndjson")
        let port = try freePort()
        let p = try SluiceProcess.start(["run", "p.yaml", "--metrics-port", "\(port)"], in: dir, log: "\(dir)/log")
        defer { if p.isRunning { kill(p.processIdentifier, SIGKILL) } }
        func exposition() -> String { (try? curl(["http://127.0.0.1:\(port)/metrics"]))?.body ?? "" }
        func value(_ prefix: String) -> Double? {
            exposition().split(separator: "\n").first { $0.hasPrefix(prefix) }.flatMap { $0.split(separator: " ").last.flatMap { Double($0) } }
        }
        // The commit of the first file: output counted, the dead letter in the queue's gauge.
        let committed = try await waitUntil(seconds: 60) {
            (value("sluice_output_files_total{") ?? 0) >= 1 && (value("sluice_dead_letter_queue_records{") ?? 0) == 1
                && (value("sluice_dead_letter_queue_reason_records{") ?? 0) == 1
        }
        #expect(committed, "\(exposition())")
        let text = try await offPool { exposition() }
        var found: [String: Set<String>] = [:]
        for line in text.split(separator: "\n") {
            guard let (name, labels) = Self.parse(line) else { continue }
            found[name, default: []].formUnion(labels)
        }
        let unexpected = found.filter { !Self.expected.keys.contains($0.key) && !$0.key.hasPrefix("sluice_schema_") }
        #expect(unexpected.isEmpty, "series not in the list: \(unexpected)")
        for (name, labels) in Self.expected {
            #expect(found[name] == labels, "\(name): \(found[name].map { "\($0.sorted())" } ?? "missing"), expected \(labels.sorted())")
        }
        #expect((value("sluice_last_commit_timestamp_seconds{") ?? 0) > Date().timeIntervalSince1970 - 600)
        #expect((value("sluice_output_bytes_total{") ?? 0) > 0)
        // One batch; its origin is its oldest event_time (2026-01-01), so it waited months.
        #expect(value("sluice_end_to_end_latency_seconds_count{") == 1)
        let waited = Date().timeIntervalSince(Date(timeIntervalSince1970: 1_767_225_600))
        #expect(abs((value("sluice_end_to_end_latency_seconds_sum{") ?? 0) - waited) < 600, "\(exposition())")

        // Prometheus's linter accepts the exposition (names, units, HELP/TYPE).
        try text.write(toFile: "\(dir)/metrics.txt", atomically: true, encoding: .utf8)
        let lint = try await runTool(["sh", "-c", "promtool check metrics < metrics.txt"], in: dir)
        #expect(lint.0 == 0, "promtool check metrics: \(lint.1)")
        // `sluice status` reads the same endpoint: the pipeline's line, its latency (months: above
        // the largest bucket), no lag (a watched directory has none), its dead letter, a recent
        // commit, no alert firing (the error rate's `for:` is 5 minutes).
        let live = try await SluiceProcess.runWithoutBlocking(["status", "--url", "http://127.0.0.1:\(port)", "--interval", "0.2"], in: dir)
        let line = live.stdout.split(separator: "\n").first { $0.hasPrefix("m ") }.map { $0.split(separator: " ", omittingEmptySubsequences: true) }
        #expect(
            live.status == 0 && live.stdout.hasPrefix("PIPELINE") && line?.count == 10 && line?[4] == ">1d" && line?[5] == "-" && line?[6] == "1"
                && line?[8] == "ago" && line?.last == "-",
            "\(live.stdout)\(live.stderr)")
        kill(p.processIdentifier, SIGTERM)
        await waitForExit(p)
        #expect(p.terminationStatus == 0)
        // From the state store after the run: the run's state and totals, the dead letter.
        let stored = try await SluiceProcess.runWithoutBlocking(["status", "-c", "p.yaml"], in: dir)
        let row = stored.stdout.split(separator: "\n").first { $0.hasPrefix("m ") }.map {
            $0.split(separator: " ", omittingEmptySubsequences: true).map(String.init)
        }
        #expect(stored.status == 0 && row?[1] == "succeeded" && row?[4] == "3" && row?[5] == "2" && row?[7] == "1", "\(stored.stdout)\(stored.stderr)")
        let none = try await SluiceProcess.runWithoutBlocking(["status"], in: dir)
        #expect(none.status != 0 && none.stderr.contains("--url"))
    }
}
