import Foundation
import Logging
import SluiceNATS
import SluiceTesting
import Testing

/// Publishes `count` numbered JSON records (`{"n": i, "pad": "…"}`, 128 bytes each) to
/// `subject` with core NATS publishes (no acks: the fast way to fill a test stream), then waits
/// until the stream holds them all. With `recordsPerMessage` above 1, messages carry that many
/// NDJSON records, as the jetstream sink packs them (`Sluice-Records` header).
func fillStream(url: String, stream: String, subject: String, count: Int, replicas: Int = 1, recordsPerMessage: Int = 1) async throws {
    let connection = try await NATSConnection.connect(try NATSOptions(urls: [url]), logger: Logger(label: "test"))
    let js = JetStream(connection)
    var config = StreamConfig(name: stream, subjects: [subject])
    config.replicas = replicas
    _ = try await js.ensureStream(config)
    // Encoding a million records takes seconds of CPU in a debug build: it runs on threads of
    // its own, chunk by chunk, not on the few cooperative threads the in-process server tests need.
    let chunk = 4000
    for first in stride(from: 0, to: count, by: chunk) {
        let bytes = try await offPool { () -> [UInt8] in
            let pad = String(repeating: "x", count: 100)
            var out: [UInt8] = []
            out.reserveCapacity(chunk * 180)
            for start in stride(from: first, to: min(first + chunk, count), by: recordsPerMessage) {
                let end = min(start + recordsPerMessage, first + chunk, count)
                var body = ""
                for i in start..<end {
                    var record = "{\"n\":\(i),\"pad\":\"\(pad)\"}"
                    record += String(repeating: " ", count: max(0, 128 - record.utf8.count))
                    body += recordsPerMessage > 1 ? record + "\n" : record
                }
                // With an id, so that nothing sent twice can be stored twice.
                var fields = [("Nats-Msg-Id", "fill-\(start)")]
                if recordsPerMessage > 1 { fields.append(("Sluice-Records", "\(end - start)")) }
                NATSClientOp.publish(
                    subject: subject, replyTo: nil, headers: NATSHeaders(fields: fields),
                    payload: Array(body.utf8)
                ).encode(into: &out)
            }
            return out
        }
        try connection.send(bytes)
        try await connection.flush(timeout: .seconds(30))
    }
    let deadline = ContinuousClock.now + .seconds(120)
    var stored: Int64 = 0
    let messages = (count + recordsPerMessage - 1) / recordsPerMessage
    while ContinuousClock.now < deadline {
        stored = try await js.streamInfo(stream)?.messages ?? 0
        if stored >= messages { break }
        try await Task.sleep(for: .milliseconds(200))
    }
    await connection.close()
    // The consumers' tests count records exactly: the input must be exact too.
    try #require(stored == Int64(messages), "the stream holds \(stored) messages for \(messages) published")
}

/// What `sluice queue status --json` reports for one pipeline's source consumer.
struct QueueStatus {
    var messages: Int
    var lag: Int
    var ackPending: Int
    var redelivered: Int
    /// Deliveries so far, redeliveries included.
    var deliveries: Int
}

func queueStatus(_ pipeline: String, in directory: String, config: String = "w.yaml") throws -> QueueStatus? {
    let r = try SluiceProcess.run(["queue", "status", pipeline, "-c", config, "--json"], in: directory)
    guard r.status == 0,
        let rows = try? JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [[String: Any]],
        let row = rows.first(where: { $0["role"] as? String == "source" }),
        let lag = row["lag"] as? Int
    else { return nil }
    return QueueStatus(
        messages: row["messages"] as? Int ?? 0, lag: lag, ackPending: row["ack_pending"] as? Int ?? 0,
        redelivered: row["redelivered"] as? Int ?? 0, deliveries: row["deliveries"] as? Int ?? 0)
}

/// `body`, tried up to three times: a test reading a stream back makes thousands of requests,
/// and on a loaded machine one may miss its 5 s reply timeout.
func retryingRequest<T>(_ body: () async throws -> T) async throws -> T {
    for _ in 1..<3 {
        if let value = try? await body() { return value }
        try await Task.sleep(for: .milliseconds(500))
    }
    return try await body()
}

/// Runs a kill script (bash, in `dir`, with `$SLUICE` the binary under test) to its end and
/// returns the numbers it wrote to `report`, space-separated. The kills come from a script of
/// their own: a test process busy with other suites may not run a loop of its own in time.
/// The script must not leave a process behind: one would keep it from ending for this process.
func runKillScript(_ script: String, in dir: String, reporting report: String) async throws -> [Int] {
    let killer = Process()
    killer.executableURL = URL(fileURLWithPath: "/bin/bash")
    killer.arguments = [script]
    killer.currentDirectoryURL = URL(fileURLWithPath: dir)
    killer.environment = ProcessInfo.processInfo.environment.merging(["SLUICE": SluiceProcess.binary]) { $1 }
    try ChildProcesses.run(killer)
    defer { if killer.isRunning { kill(killer.processIdentifier, SIGKILL) } }
    await waitForExit(killer)
    return ((try? String(contentsOfFile: "\(dir)/\(report)", encoding: .utf8)) ?? "").split(separator: " ").compactMap {
        Int($0.trimmingCharacters(in: .whitespacesAndNewlines))
    }
}

/// Every record a stream holds (the NDJSON lines of each message, packed or not), read through
/// a consumer of the test's own (`check`, nothing acked) until a fetch comes back empty.
func streamRecords(url: String, stream: String) async throws -> [Substring] {
    let connection = try await NATSConnection.connect(try NATSOptions(urls: [url]), logger: Logger(label: "test"))
    let js = JetStream(connection)
    var config = ConsumerConfig(durable: "check")
    config.ackWait = .seconds(600)
    _ = try await retryingRequest { try await js.ensureConsumer(stream: stream, config) }
    let consumer = try JetStreamPullConsumer(connection: connection, stream: stream, consumer: "check", batch: 1_000)
    var records: [Substring] = []
    while true {
        let messages = try await consumer.fetch(max: 1_000)
        if messages.isEmpty { break }
        for message in messages { records += String(decoding: message.payload, as: UTF8.self).split(separator: "\n") }
    }
    await connection.close()
    return records
}
