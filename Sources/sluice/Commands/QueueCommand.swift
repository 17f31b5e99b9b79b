import ArgumentParser
import Foundation
import Logging
import SluiceConnectors
import SluiceCore
import SluiceJetStream
import SluiceNATS

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
            var logger = Logger(label: "sluice.queue")
            logger.logLevel = .error
            for plan in plans where pipelines.isEmpty || pipelines.contains(plan.name) {
                var targets: [(role: String, stream: JetStreamStreamOptions, consumer: String?)] = []
                if let source = plan.source as? JetStreamSource { targets.append(("source", source.options.stream, source.consumerName)) }
                if let sink = plan.sink as? JetStreamSink { targets.append(("sink", sink.options.stream, nil)) }
                for target in targets {
                    let connection = try await ConfigLoading.reportingErrors { try await target.stream.connect(logger: logger, name: "sluice queue status") }
                    let js = JetStream(connection)
                    var row: [String: Any] = ["pipeline": plan.name, "role": target.role, "stream": target.stream.stream]
                    do {
                        if let info = try await js.streamInfo(target.stream.stream) {
                            row["messages"] = info.messages
                            row["bytes"] = info.bytes
                            row["first_seq"] = info.firstSequence
                            row["last_seq"] = info.lastSequence
                            row["replicas"] = info.replicas
                            if let leader = info.leader { row["leader"] = leader }
                        } else {
                            row["error"] = "stream \(target.stream.stream) does not exist (yet)"
                        }
                        if let consumer = target.consumer {
                            row["consumer"] = consumer
                            if let c = try await js.consumerInfo(stream: target.stream.stream, consumer: consumer) {
                                row["lag"] = c.pending
                                row["ack_pending"] = c.ackPending
                                row["redelivered"] = c.redelivered
                                row["waiting_pulls"] = c.waiting
                                row["deliveries"] = c.deliveries
                                row["ack_floor_seq"] = c.ackFloorStreamSequence
                            } else {
                                row["consumer_error"] = "consumer \(consumer) does not exist (yet): the first worker creates it"
                            }
                        }
                    } catch {
                        row["error"] = "\(error)"
                    }
                    await connection.close()
                    rows.append(row)
                }
            }
            if rows.isEmpty {
                throw ValidationError("no pipeline in \(config) has a jetstream source or sink\(pipelines.isEmpty ? "" : " among \(pipelines.joined(separator: ", "))")")
            }
            if json {
                let data = try JSONSerialization.data(withJSONObject: rows, options: [.sortedKeys])
                print(String(decoding: data, as: UTF8.self))
                return
            }
            for row in rows {
                var line = "\(row["pipeline"]!) (\(row["role"]!)): stream \(row["stream"]!)"
                if let m = row["messages"] { line += "  messages \(m)  bytes \(row["bytes"]!)  seq \(row["first_seq"]!)…\(row["last_seq"]!)  replicas \(row["replicas"]!)" }
                if let l = row["leader"] { line += "  leader \(l)" }
                print(line)
                if let c = row["consumer"] {
                    if let lag = row["lag"] {
                        print("  consumer \(c): lag \(lag)  ack pending \(row["ack_pending"]!)  redelivered \(row["redelivered"]!)  waiting pulls \(row["waiting_pulls"]!)")
                    } else if let e = row["consumer_error"] {
                        print("  \(e)")
                    }
                }
                if let e = row["error"] { print("  error: \(e)") }
            }
        }
    }
}
