import ArgumentParser
import Foundation
import SluiceConnectors
import SluiceCore

struct QueueCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "queue",
        abstract: "Inspect the JetStream streams and consumers of pipelines.",
        discussion: """
            Examples:
              sluice queue status -c pipelines.yaml              every jetstream source and sink in the file
              sluice queue status lake -c pipelines.yaml --json  one pipeline, as JSON (for scripts and alerts)
            """,
        subcommands: [Status.self]
    )

    struct Status: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Stream size and, per consumer, lag (messages not yet delivered), ack pending and redeliveries.",
            discussion: """
                lag: messages in the stream the consumer has not delivered yet (the backlog workers still have to read).
                ack pending: delivered to a worker and not yet acknowledged (in a batch being written, or held by a worker that died: they go to another worker after ack_wait).
                redelivered: messages delivered more than once (worker crashes, naks).
                """)

        @Argument(help: "Pipelines to show (default: every pipeline with a jetstream source or sink).") var pipelines: [String] = []
        @Option(name: [.short, .long], help: "The pipeline file.") var config: String
        @Flag(name: .long, help: "Print JSON.") var json = false

        func run() async throws {
            let (_, plans) = try await ConfigLoading.reportingErrors { try ConfigLoading.load([config]) }
            var rows: [[String: Any]] = []
            for plan in plans where pipelines.isEmpty || pipelines.contains(plan.name) {
                for (role, component) in [("source", plan.source as? any QueueInspectable), ("sink", plan.sink as? any QueueInspectable)] {
                    guard let component else { continue }
                    let status = try await ConfigLoading.reportingErrors { try await component.queueStatus() }
                    var row: [String: Any] = ["pipeline": plan.name, "role": role, "stream": status.stream]
                    for (key, value) in status.fields { row[key] = value.jsonValue }
                    if let consumer = status.consumer {
                        row["consumer"] = consumer
                        for (key, value) in status.consumerFields { row[key] = value.jsonValue }
                        if let e = status.consumerError { row["consumer_error"] = e }
                    }
                    if let e = status.error { row["error"] = e }
                    rows.append(row)
                }
            }
            if rows.isEmpty {
                throw ValidationError(
                    "no pipeline in \(config) has a jetstream source or sink\(pipelines.isEmpty ? "" : " among \(pipelines.joined(separator: ", "))")")
            }
            if json {
                let data = try JSONSerialization.data(withJSONObject: rows, options: [.sortedKeys])
                print(String(decoding: data, as: UTF8.self))
                return
            }
            for row in rows {
                var line = "\(row["pipeline"]!) (\(row["role"]!)): stream \(row["stream"]!)"
                if let m = row["messages"] {
                    line += "  messages \(m)  bytes \(row["bytes"]!)  seq \(row["first_seq"]!)…\(row["last_seq"]!)  replicas \(row["replicas"]!)"
                }
                if let l = row["leader"] { line += "  leader \(l)" }
                print(line)
                if let c = row["consumer"] {
                    if let lag = row["lag"] {
                        print(
                            "  consumer \(c): lag \(lag)  ack pending \(row["ack_pending"]!)  redelivered \(row["redelivered"]!)  waiting pulls \(row["waiting_pulls"]!)"
                        )
                    } else if let e = row["consumer_error"] {
                        print("  \(e)")
                    }
                }
                if let e = row["error"] { print("  error: \(e)") }
            }
        }
    }
}
