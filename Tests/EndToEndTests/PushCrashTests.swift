import AsyncHTTPClient
import Foundation
import NIOCore
import Synchronization
import Testing
import SluiceTesting

/// A flag shared by the load generator's tasks.
final class StopFlag: Sendable {
    private let value = Mutex(false)
    var isSet: Bool { value.withLock { $0 } }
    func set() { value.withLock { $0 = true } }
}

/// Guarantee 1 for pushes (DESIGN.md §2): every record answered 2xx is in the sink exactly once,
/// however often the server is `kill -9`'d; and a flood gets 503s, not unbounded memory.
@Suite(.offCooperativePool, .serialized) struct PushCrashTests {
    @Test func everyRecordAnswered2xxIsInTheSinkExactlyOnceAcrossKill9() async throws {
        let dir = try makeWorkDirectory("push-crash")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try write(
            """
            pipelines:
              events:
                source:
                  http: { stream: events, columns: { n: int64 }, required: [n] }
                sink:
                  ndjson: { path: out, max_file_age: 1s }
                batch: { max_latency: 100ms }
            """, to: "\(dir)/p.yaml")
        let port = try freePort()
        var server = try await ServedProcess.start(in: dir, port: port)
        let stop = StopFlag()
        let workers = 6, recordsPerRequest = 20

        // The load generator: numbered records, one Idempotency-Key per request, retried until 2xx.
        let generator = Task { () -> [Int] in
            try await withThrowingTaskGroup(of: [Int].self) { group in
                for w in 0..<workers {
                    group.addTask {
                        var acked: [Int] = []
                        var request = 0
                        while !stop.isSet {
                            let first = (w * 1_000_000) + request * recordsPerRequest
                            let numbers = Array(first..<(first + recordsPerRequest))
                            let body = numbers.map { "{\"n\": \($0)}" }.joined(separator: "\n")
                            var attempts = 0
                            while true {
                                attempts += 1
                                var r = HTTPClientRequest(url: "http://127.0.0.1:\(port)/v1/streams/events/records")
                                r.method = .POST
                                r.headers.add(name: "Content-Type", value: "application/x-ndjson")
                                r.headers.add(name: "Idempotency-Key", value: "w\(w)-r\(request)")
                                r.body = .bytes(ByteBuffer(string: body))
                                if let response = try? await HTTPClient.shared.execute(r, timeout: .seconds(5)) {
                                    _ = try? await response.body.collect(upTo: 1 << 20)
                                    if response.status.code == 202 { break }
                                    if response.status.code != 503 {
                                        Issue.record("unexpected status \(response.status.code)")
                                        return acked
                                    }
                                }
                                guard attempts < 2000 else { Issue.record("request never acknowledged"); return acked }
                                try await Task.sleep(for: .milliseconds(20))
                            }
                            acked += numbers
                            request += 1
                            try await Task.sleep(for: .milliseconds(Int.random(in: 0...10)))
                        }
                        return acked
                    }
                }
                return try await group.reduce(into: []) { $0 += $1 }
            }
        }

        var kills = 0
        while kills < 12 {
            try await Task.sleep(for: .milliseconds(Int.random(in: 150...700)))
            server.kill9()
            kills += 1
            server = try await ServedProcess.start(
                in: dir, port: port,
                environment: kills % 2 == 1 ? ["SLUICE_TEST_COMMIT_DELAY_MS": "120"] : [:])
        }
        stop.set()
        let acked = try await generator.value
        #expect(acked.count > 1000, "the generator made progress: \(acked.count)")

        // Let the pipeline drain the queue, then stop it cleanly.
        var lines: [Substring] = []
        for _ in 0..<300 {
            lines = try outputLines("\(dir)/out")
            if lines.count >= acked.count { break }
            try await Task.sleep(for: .milliseconds(100))
        }
        try await Task.sleep(for: .milliseconds(1200))
        #expect(server.stop() == 0)
        lines = try outputLines("\(dir)/out")
        var seen: [Int: Int] = [:]
        for line in lines {
            guard let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any], let n = object["n"] as? Int else {
                Issue.record("unreadable output line: \(line)")
                continue
            }
            seen[n, default: 0] += 1
        }
        // Counts, not sets, in the expectations: a failure prints a number and a sample, not 10,000 values.
        let duplicated = seen.filter { $0.value > 1 }.map(\.key).sorted()
        let lost = Set(acked).subtracting(seen.keys).sorted()
        let unacknowledged = Set(seen.keys).subtracting(acked).sorted()
        let duplicateCount = duplicated.count, lostCount = lost.count, unacknowledgedCount = unacknowledged.count
        #expect(duplicateCount == 0, "records written twice, e.g. \(duplicated.prefix(5))")
        #expect(lostCount == 0, "acknowledged records lost, e.g. \(lost.prefix(5))")
        #expect(unacknowledgedCount == 0, "records in the sink that were never acknowledged, e.g. \(unacknowledged.prefix(5))")
        print("push crash test: \(kills) kills, \(acked.count) records acknowledged, \(seen.count) in the sink")
    }

    @Test func anIdempotencyKeyAcceptedBeforeAKill9IsHonouredAfterTheRestart() async throws {
        let dir = try makeWorkDirectory("push-key-crash")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try write(
            """
            pipelines:
              events:
                source:
                  http: { stream: events }
                sink:
                  ndjson: { path: out, max_file_age: 1s }
            """, to: "\(dir)/p.yaml")
        let port = try freePort()
        var server = try await ServedProcess.start(in: dir, port: port)
        let args = postArgs(port, "events", data: #"{"n": 1}"#, headers: ["Idempotency-Key: once"])
        let first = try curl(args)
        #expect(first.status == 202)
        server.kill9()
        server = try await ServedProcess.start(in: dir, port: port)
        let again = try curl(args)
        #expect(again.status == 202 && again.body == first.body && again.header("Idempotent-Replayed") == "true")
        try await Task.sleep(for: .milliseconds(1300))
        #expect(server.stop() == 0)
        #expect(try outputLines("\(dir)/out").count == 1)
    }

    @Test func aFloodGets503sWhileMemoryStaysBounded() async throws {
        let dir = try makeWorkDirectory("push-flood")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try write(
            """
            serve:
              max_inflight_bytes: 16MB
            pipelines:
              flood:
                source:
                  http: { stream: flood, max_queue_records: 20000, max_body: 4MB }
                sink:
                  ndjson: { path: out }
            """, to: "\(dir)/p.yaml")
        let port = try freePort()
        // A slow sink: every commit pauses, so the pipeline falls behind the senders.
        let server = try await ServedProcess.start(in: dir, port: port, environment: ["SLUICE_TEST_COMMIT_DELAY_MS": "400"])
        let baseline = server.peakRSS ?? 0
        var configuration = HTTPClient.Configuration()
        configuration.connectionPool = .init(idleTimeout: .seconds(30), concurrentHTTP1ConnectionsPerHostSoftLimit: 64)
        let client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
        let small = String(repeating: "{\"user\": 12345, \"url\": \"/products/123456\", \"ref\": \"campaign-abcdef\"}\n", count: 100)
        let large = String(repeating: "{\"user\": 12345, \"url\": \"/products/123456\", \"pad\": \"\(String(repeating: "x", count: 900))\"}\n", count: 3000)
        let deadline = ContinuousClock.now + .seconds(8)
        let statuses = await withTaskGroup(of: [Int: Int].self) { group in
            for c in 0..<48 {
                group.addTask {
                    var counts: [Int: Int] = [:]
                    while ContinuousClock.now < deadline {
                        var r = HTTPClientRequest(url: "http://127.0.0.1:\(port)/v1/streams/flood/records")
                        r.method = .POST
                        r.headers.add(name: "Content-Type", value: "application/x-ndjson")
                        r.body = .bytes(ByteBuffer(string: c % 8 == 0 ? large : small))
                        do {
                            let response = try await client.execute(r, timeout: .seconds(30))
                            _ = try await response.body.collect(upTo: 1 << 20)
                            counts[Int(response.status.code), default: 0] += 1
                        } catch {
                            counts[0, default: 0] += 1
                        }
                    }
                    return counts
                }
            }
            return await group.reduce(into: [:]) { total, part in total.merge(part, uniquingKeysWith: +) }
        }
        try await client.shutdown()
        let peak = server.peakRSS ?? 0
        #expect(try curl(["http://127.0.0.1:\(port)/healthz"]).status == 200, "the server survived")
        #expect(server.stop() == 0)
        #expect(statuses[202, default: 0] > 0, "\(statuses)")
        #expect(statuses[503, default: 0] > 0, "a full queue answers 503: \(statuses)")
        #expect(Set(statuses.keys).isSubset(of: [202, 503]), "only 202 and 503: \(statuses)")
        #expect(peak < 400 << 20, "peak RSS \(peak >> 20) MB (baseline \(baseline >> 20) MB) stays under 400 MB")
        print("flood: \(statuses), peak RSS \(peak >> 20) MB, baseline \(baseline >> 20) MB")
    }
}
