import ArgumentParser
import AsyncHTTPClient
import Foundation
import SluiceConnectors
import SluiceCore

/// `sluice status`: one screen per pipeline, from a running process's `/metrics` or from the
/// state store's run history.
struct StatusCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status",
        abstract: "One line per pipeline: state, throughput, latency, dead letters, last commit.",
        discussion: """
            With --url, reads a running `sluice run --metrics-port` or `sluice serve` twice, a
            second apart (--interval), and shows the rates between the two reads: records/s,
            MB/s and GB/day written, the end-to-end latency's p99 since the process started, the
            dead-letter queue and the time since the last commit.

            With -c FILE, reads the state store instead: each pipeline's last run (state, start,
            duration, records in and out, records/s) and its dead-letter queue.

            Examples:
              sluice status --url http://127.0.0.1:9464
              sluice status -c pipelines.yaml
            """
    )

    @Option(name: .long, help: "A running process's metrics endpoint (http://host:port).") var url: String?
    @Option(name: .long, help: "Seconds between the two reads of --url.") var interval: Double = 1
    @OptionGroup var stateOptions: StateOptions

    func validate() throws {
        if url == nil && stateOptions.config == nil && stateOptions.state == nil {
            throw ValidationError("give --url http://host:port (a running process) or -c FILE (the state store)")
        }
    }

    func run() async throws {
        if let url {
            try await fromMetrics(url)
        } else {
            try await fromState()
        }
    }

    // MARK: From a running process

    func fromMetrics(_ url: String) async throws {
        let base = url.hasSuffix("/metrics") ? url : (url.hasSuffix("/") ? url + "metrics" : url + "/metrics")
        let first = try await Self.scrape(base)
        let start = Date()
        try await Task.sleep(for: .milliseconds(Int(interval * 1000)))
        let second = try await Self.scrape(base)
        let seconds = max(Date().timeIntervalSince(start), 0.001)
        let pipelines = Set(second.samples.compactMap { $0.labels["pipeline"] }).sorted()
        var rows = [["PIPELINE", "RECORDS/S", "MB/S", "GB/DAY", "P99 LATENCY", "LAG", "DLQ", "LAST COMMIT", "FIRING"]]
        for p in pipelines {
            func delta(_ name: String) -> Double { second.value(name, pipeline: p) - first.value(name, pipeline: p) }
            let records = delta("sluice_records_out_total") / seconds
            let bytes = delta("sluice_output_bytes_total") / seconds
            let lastCommit = second.value("sluice_last_commit_timestamp_seconds", pipeline: p)
            rows.append([
                p, String(format: "%.0f", records), String(format: "%.2f", bytes / 1_048_576), String(format: "%.2f", bytes * 86_400 / 1_073_741_824),
                second.quantile(0.99, of: "sluice_end_to_end_latency_seconds", pipeline: p).map { $0.isInfinite ? ">1d" : Self.duration($0) } ?? "-",
                Self.lag(second, pipeline: p),
                String(format: "%.0f", second.value("sluice_dead_letter_queue_records", pipeline: p)),
                lastCommit > 0 ? Self.duration(Date().timeIntervalSince1970 - lastCommit) + " ago" : "-",
                second.samples.filter { $0.name == "sluice_alerts_firing" && $0.labels["pipeline"] == p && $0.value > 0 }
                    .compactMap { $0.labels["alert"] }.sorted().joined(separator: ",").nonEmpty ?? "-",
            ])
        }
        Self.printTable(rows)
        if pipelines.isEmpty { print("no pipelines in \(base)") }
    }

    /// What the pipeline's source says about its lag: a queue's pending messages, CDC's seconds
    /// behind the server, or the time since a scheduled source's last pull.
    static func lag(_ e: Exposition, pipeline p: String) -> String {
        let has = { (name: String) in e.samples.contains { $0.name == name && $0.labels["pipeline"] == p } }
        if has("sluice_queue_consumer_pending") { return String(format: "%.0f msgs", e.value("sluice_queue_consumer_pending", pipeline: p)) }
        if has("sluice_cdc_lag_seconds") { return duration(e.value("sluice_cdc_lag_seconds", pipeline: p)) }
        if has("sluice_last_pull_timestamp_seconds") {
            return duration(Date().timeIntervalSince1970 - e.value("sluice_last_pull_timestamp_seconds", pipeline: p)) + " since pull"
        }
        return "-"
    }

    /// The samples of a Prometheus text exposition.
    struct Exposition {
        struct Sample {
            var name: String
            var labels: [String: String]
            var value: Double
        }
        var samples: [Sample]

        init(_ text: String) {
            samples = text.split(separator: "\n").compactMap { line -> Sample? in
                guard !line.hasPrefix("#"), let space = line.lastIndex(of: " "), let value = Double(line[line.index(after: space)...]) else { return nil }
                let series = line[..<space]
                guard let brace = series.firstIndex(of: "{") else { return Sample(name: String(series), labels: [:], value: value) }
                var labels: [String: String] = [:]
                for pair in series[series.index(after: brace)..<(series.lastIndex(of: "}") ?? series.endIndex)].split(separator: ",") {
                    guard let eq = pair.firstIndex(of: "=") else { continue }
                    labels[String(pair[..<eq])] = String(pair[pair.index(after: eq)...]).trimmingCharacters(in: CharacterSet(charactersIn: "\""))
                }
                return Sample(name: String(series[..<brace]), labels: labels, value: value)
            }
        }

        /// The sum of `name`'s series of `pipeline`.
        func value(_ name: String, pipeline: String) -> Double {
            samples.filter { $0.name == name && $0.labels["pipeline"] == pipeline }.reduce(0) { $0 + $1.value }
        }

        /// A quantile of histogram `name` (its cumulative buckets), interpolated as Prometheus does;
        /// infinity when it falls above the largest finite bucket.
        func quantile(_ q: Double, of name: String, pipeline: String) -> Double? {
            let buckets = samples.filter { $0.name == name + "_bucket" && $0.labels["pipeline"] == pipeline }
                .compactMap { s -> (Double, Double)? in s.labels["le"].flatMap { $0 == "+Inf" ? .infinity : Double($0) }.map { ($0, s.value) } }
                .sorted { $0.0 < $1.0 }
            guard let total = buckets.last?.1, total > 0 else { return nil }
            let rank = q * total
            var previous = (0.0, 0.0)
            for (bound, count) in buckets {
                if count >= rank {
                    if bound == .infinity { return .infinity }  // above the largest bucket
                    let share = count == previous.1 ? 0 : (rank - previous.1) / (count - previous.1)
                    return previous.0 + (bound - previous.0) * share
                }
                previous = (bound, count)
            }
            return nil
        }
    }

    static func scrape(_ url: String) async throws -> Exposition {
        guard let u = URL(string: url) else { throw ValidationError("--url: '\(url)' is not a URL") }
        _ = u
        do {
            let response = try await HTTPClient.shared.execute(HTTPClientRequest(url: url), timeout: .seconds(10))
            let body = try await response.body.collect(upTo: 64 << 20)
            guard response.status.code == 200 else {
                throw ValidationError("\(url) answered \(response.status.code), not 200")
            }
            return Exposition(String(buffer: body))
        } catch let error as ValidationError {
            throw error
        } catch {
            FileHandle.standardError.write(Data("error: cannot read \(url): \(error); is `sluice run --metrics-port` running?\n".utf8))
            throw ExitCode(1)
        }
    }

    // MARK: From the state store

    func fromState() async throws {
        let store = try await ConfigLoading.reportingErrors { try await BuiltinComponents.openState(try stateOptions.location()) }
        let runs = try await store.runs(pipeline: nil, limit: 1000)
        var latest: [String: RunRecord] = [:]
        for run in runs where latest[run.pipeline].map({ $0.startedAt < run.startedAt }) ?? true { latest[run.pipeline] = run }
        var rows = [["PIPELINE", "STATE", "STARTED", "DURATION", "IN", "OUT", "RECORDS/S", "DLQ", "FIRING"]]
        let firing = Dictionary(grouping: try await store.alerts(pipeline: nil, firingOnly: true, limit: 1000), by: \.pipeline)
        let formatter = ISO8601DateFormatter()
        for (name, run) in latest.sorted(by: { $0.key < $1.key }) {
            let seconds = (run.endedAt ?? Date()).timeIntervalSince(run.startedAt)
            let dlq = try await store.deadLetterSummary(pipeline: name)
            rows.append([
                name, run.status.rawValue, formatter.string(from: run.startedAt), Self.duration(seconds), "\(run.recordsIn)", "\(run.recordsOut)",
                String(format: "%.0f", Double(run.recordsOut) / max(seconds, 0.001)),
                dlq.count == 0 ? "0" : "\(dlq.count) (oldest \(Self.duration(Date().timeIntervalSince(dlq.oldest ?? Date()))))",
                (firing[name] ?? []).map(\.name).sorted().joined(separator: ",").nonEmpty ?? "-",
            ])
        }
        Self.printTable(rows)
        if latest.isEmpty { print("no runs recorded yet") }
    }

    // MARK: Output

    static func duration(_ seconds: Double) -> String {
        if seconds < 1 { return String(format: "%.0fms", seconds * 1000) }
        if seconds < 60 { return String(format: "%.1fs", seconds) }
        if seconds < 3600 { return String(format: "%.0fm%02.0fs", (seconds / 60).rounded(.down), seconds.truncatingRemainder(dividingBy: 60)) }
        return String(format: "%.0fh%02.0fm", (seconds / 3600).rounded(.down), (seconds / 60).truncatingRemainder(dividingBy: 60).rounded(.down))
    }

    static func printTable(_ rows: [[String]]) {
        guard let header = rows.first else { return }
        let widths = header.indices.map { i in rows.map { $0[i].count }.max() ?? 0 }
        for row in rows {
            print(row.enumerated().map { $0.element.padding(toLength: widths[$0.offset], withPad: " ", startingAt: 0) }.joined(separator: "  "))
        }
    }
}

extension String {
    /// Nil when empty.
    var nonEmpty: String? { isEmpty ? nil : self }
}
