import Foundation
import Testing
import SluiceTesting

/// `sluice serve` on SIGTERM: refuses new pushes, lets its pipelines commit what was accepted,
/// then exits; what `serve.drain_timeout` leaves queued is delivered by the next start.
@Suite(.offCooperativePool, .serialized) struct PushDrainTests {
    static func config(drainTimeout: String, sink: String = "ndjson: { path: out, max_file_age: 1s }") -> String {
        """
        serve:
          drain_timeout: \(drainTimeout)
        pipelines:
          slow:
            source:
              http: { stream: slow }
            sink:
              \(sink)
            batch: { max_latency: 50ms }
        """
    }

    /// Posts `count` records, one request each, with ids from `first`; returns the ids answered 202.
    static func post(_ port: Int, ids: Range<Int>) async throws -> [Int] {
        var accepted: [Int] = []
        for id in ids {
            let reply = try await offPool { try curl(postArgs(port, "slow", data: "{\"id\": \(id)}")) }
            #expect(reply.status == 202, "\(reply.body)")
            if reply.status == 202 { accepted.append(id) }
        }
        return accepted
    }

    /// The ids in the sink's output, with how often each appears.
    static func delivered(_ dir: String) throws -> [Int: Int] {
        var counts: [Int: Int] = [:]
        for line in try outputLines("\(dir)/out") {
            let object = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any]
            counts[(object?["id"] as? Int) ?? -1, default: 0] += 1
        }
        return counts
    }

    static func log(_ dir: String) -> String { (try? String(contentsOfFile: "\(dir)/serve.log", encoding: .utf8)) ?? "" }

    @Test func sigtermRefusesNewPushesAndDeliversEveryAcceptedRecordBeforeExiting() async throws {
        let dir = try makeWorkDirectory("push-drain")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try write(Self.config(drainTimeout: "60s"), to: "\(dir)/p.yaml")
        let port = try freePort()
        // The pipeline's reader holds before reading the queue until the test releases it: the
        // accepted records are still queued, whatever the machine's load, while the draining
        // server is asked below.
        let release = "\(dir)/release-read"
        let server = try await ServedProcess.start(in: dir, port: port, environment: ["SLUICE_TEST_HOLD": "http-read=\(release)"])
        let accepted = try await Self.post(port, ids: 0..<20)
        let held = try await waitUntil(seconds: 10) { FileManager.default.fileExists(atPath: release + ".reached") }
        #expect(held)
        server.process.terminate()

        // Draining: /readyz says 503 (the load balancer takes the instance out), a new push is refused.
        let unready = try await waitUntil(seconds: 10, interval: .milliseconds(20)) {
            try curl(["http://127.0.0.1:\(port)/readyz"]).status == 503
        }
        #expect(unready, "/readyz answers 503 while draining: \(Self.log(dir))")
        let refused = try await offPool { try curl(postArgs(port, "slow", data: #"{"id": 999}"#)) }
        #expect(refused.status == 503, "\(refused.status) \(refused.body)")
        #expect(refused.header("Connection")?.lowercased() == "close")
        #expect(refused.header("Retry-After") != nil)
        #expect(refused.header("Content-Type") == "application/problem+json")
        #expect(refused.problemType == "urn:sluice:problem:shutting-down", "\(refused.body)")
        #expect(server.process.isRunning, "still draining: the reader is held")

        // Released, the drain delivers every accepted record and the process exits 0.
        _ = FileManager.default.createFile(atPath: release, contents: nil)

        let status = try await offPool { () -> Int32 in
            server.process.waitUntilExit()
            return server.process.terminationStatus
        }
        #expect(status == 0, "\(Self.log(dir))")
        let counts = try Self.delivered(dir)
        #expect(counts == Dictionary(uniqueKeysWithValues: accepted.map { ($0, 1) }), "every record answered 202 exactly once: \(counts)")
        #expect(!Self.log(dir).contains("left queued"), "\(Self.log(dir))")
    }

    @Test func aDrainTimeoutLeavesTheRestQueuedForTheNextStart() async throws {
        let dir = try makeWorkDirectory("push-drain-timeout")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try write(Self.config(drainTimeout: "500ms"), to: "\(dir)/p.yaml")
        let port = try freePort()
        // The pipeline's reader holds before reading the queue: nothing is consumed in time.
        let release = "\(dir)/release-read"
        let server = try await ServedProcess.start(in: dir, port: port, environment: ["SLUICE_TEST_HOLD": "http-read=\(release)"])
        let accepted = try await Self.post(port, ids: 0..<12)
        let held = try await waitUntil(seconds: 10) { FileManager.default.fileExists(atPath: release + ".reached") }
        #expect(held)
        let status = try await offPool { server.stop() }
        #expect(status == 0, "\(Self.log(dir))")
        let log = Self.log(dir)
        #expect(log.contains("drain timed out"), "\(log)")
        #expect(log.contains("records left queued") && log.contains("slow: 12 records in 12 requests"), "\(log)")
        #expect(try Self.delivered(dir).isEmpty)

        // The next start delivers what was left, once.
        let earlierLog = log.count
        let next = try await ServedProcess.start(in: dir, port: try freePort())
        let delivered = try await waitUntil(seconds: 30) { try Self.delivered(dir).count == accepted.count }
        #expect(delivered, "\((try? Self.delivered(dir)) ?? [:])")
        #expect(try await offPool { next.stop() } == 0)
        let counts = try Self.delivered(dir)
        #expect(counts == Dictionary(uniqueKeysWithValues: accepted.map { ($0, 1) }), "\(counts)")
        let restartLog = String(Self.log(dir).dropFirst(earlierLog))
        #expect(!restartLog.contains("left queued"), "\(restartLog)")
    }

    /// A sink that commits rarely (NDJSON's default `max_file_age` is 60s, longer than the
    /// drain) is asked to commit when the drain starts: the drain ends as soon as that commit
    /// is done, instead of timing out with every record still queued.
    @Test func theDrainAsksPipelinesToCommitNowInsteadOfWaitingForTheirSink() async throws {
        let dir = try makeWorkDirectory("push-drain-commit-now")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try write(Self.config(drainTimeout: "20s", sink: "ndjson: { path: out }"), to: "\(dir)/p.yaml")
        let port = try freePort()
        let server = try await ServedProcess.start(in: dir, port: port)
        let accepted = try await Self.post(port, ids: 0..<20)
        #expect(accepted.count == 20)
        let status = try await offPool { server.stop() }
        #expect(status == 0, "\(Self.log(dir))")
        let log = Self.log(dir)
        #expect(!log.contains("drain timed out") && !log.contains("left queued"), "\(log)")
        let counts = try Self.delivered(dir)
        #expect(counts == Dictionary(uniqueKeysWithValues: accepted.map { ($0, 1) }), "every record answered 202 exactly once: \(counts)")
    }
}
