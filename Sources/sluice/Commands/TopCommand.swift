import ArgumentParser
import AsyncHTTPClient
import Foundation
import NIOCore
import SluiceCore

/// `sluice top`: a live terminal view of a running process, a row per pipeline, refreshed
/// every second (like `vector top`).
struct TopCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "top",
        abstract: "A live view of a running process: a row per pipeline, refreshed every second.",
        discussion: """
            Reads `/api/v1/status` and `/metrics` of a running `sluice run --metrics-port` or
            `sluice serve` every --interval and shows, per pipeline: state, records/s in and out,
            MB/s in, dead letters per second (errors), the dead-letter queue, lag (a queue's
            pending messages, CDC's seconds behind, the time since a scheduled pull), the
            end-to-end latency p99 of the last five minutes, and firing alerts. Ctrl-C quits.

            When standard output is not a terminal, it prints the table --iterations times
            (default once) instead of redrawing, for scripts and logs.

            Examples:
              sluice top --url http://127.0.0.1:9464
              sluice top --url https://ingest.example.com:8443 --api-key "$SLUICE_KEY"
            """)

    @Option(name: .long, help: "The running process (http://host:port).") var url = "http://127.0.0.1:9464"
    @Option(name: .long, help: "Seconds between refreshes.") var interval: Double = 1
    @Option(name: .long, help: "Refreshes before exiting (default: until Ctrl-C on a terminal, once otherwise).") var iterations: Int?
    @Option(name: .customLong("api-key"), help: "An API key, for a `sluice serve` listening beyond loopback.") var apiKey: String?

    func validate() throws {
        guard interval > 0 else { throw ValidationError("--interval must be positive") }
    }

    struct Reading {
        var time: Date
        var pipelines: [[String: Any]]
        var metrics: StatusCommand.Exposition
    }

    func run() async throws {
        let base = url.hasSuffix("/") ? String(url.dropLast()) : url
        let interactive = isatty(STDOUT_FILENO) == 1
        let rounds = iterations ?? (interactive ? Int.max : 1)
        var previous = try await read(base)
        for round in 0..<rounds {
            try await Task.sleep(for: .milliseconds(Int(interval * 1000)))
            let current = try await read(base)
            let table = Self.table(previous, current)
            if interactive {
                print(
                    "\u{1B}[H\u{1B}[2J"
                        + "sluice top · \(base) · \(DateFormatter.localizedString(from: current.time, dateStyle: .none, timeStyle: .medium))  (Ctrl-C quits)\n")
            } else if round > 0 {
                print("")
            }
            StatusCommand.printTable(table)
            fflush(nil)
            previous = current
        }
    }

    func read(_ base: String) async throws -> Reading {
        func get(_ path: String) async throws -> String {
            var request = HTTPClientRequest(url: base + path)
            if let apiKey { request.headers.add(name: "Authorization", value: "Bearer \(apiKey)") }
            do {
                let response = try await HTTPClient.shared.execute(request, timeout: .seconds(10))
                let body = try await response.body.collect(upTo: 64 << 20)
                guard response.status.code == 200 else {
                    let hint = response.status.code == 401 ? " (pass --api-key)" : ""
                    throw ValidationError("\(base + path) answered \(response.status.code)\(hint)")
                }
                return String(buffer: body)
            } catch let error as ValidationError {
                throw error
            } catch {
                FileHandle.standardError.write(
                    Data("error: cannot read \(base + path): \(error); is `sluice run --metrics-port` or `sluice serve` running?\n".utf8))
                throw ExitCode(1)
            }
        }
        let status = try await get("/api/v1/status")
        let metrics = try await get("/metrics")
        let json = (try? JSONSerialization.jsonObject(with: Data(status.utf8)) as? [String: Any]) ?? [:]
        return Reading(time: Date(), pipelines: json["pipelines"] as? [[String: Any]] ?? [], metrics: StatusCommand.Exposition(metrics))
    }

    /// The rows between two readings.
    static func table(_ a: Reading, _ b: Reading) -> [[String]] {
        let dt = max(b.time.timeIntervalSince(a.time), 0.001)
        var rows = [["PIPELINE", "STATE", "IN/S", "OUT/S", "MB/S IN", "ERRORS/S", "DLQ", "LAG", "P99", "ALERTS"]]
        for p in b.pipelines {
            let name = p["name"] as? String ?? "?"
            let before = a.pipelines.first { $0["name"] as? String == name } ?? [:]
            func rate(_ key: String) -> Double { Double((p[key] as? Int ?? 0) - (before[key] as? Int ?? 0)) / dt }
            rows.append([
                name, p["state"] as? String ?? "?", String(format: "%.0f", rate("records_in")), String(format: "%.0f", rate("records_out")),
                String(format: "%.2f", rate("bytes_in") / 1e6), String(format: "%.1f", rate("dead_lettered")),
                (p["dead_letter_queue"] as? Int).map(String.init) ?? "-", StatusCommand.lag(b.metrics, pipeline: name),
                (p["latency_p99_seconds"] as? Double).map(StatusCommand.duration) ?? "-",
                (p["alerts"] as? [String] ?? []).joined(separator: ",").nonEmpty ?? "-",
            ])
        }
        return rows
    }
}
