import AsyncHTTPClient
import Foundation
import NIOCore
import SluiceTesting
import Synchronization
import Testing

/// Chaos: the file system of the Parquet lake behind `sluice serve` fills up (a small tmpfs of
/// the test's own, filled by another file) while records are pushed without pause. A 202 means
/// the records are durable in the push queue (the state database, on another disk), so the
/// server keeps answering 202, or 503 once the queue reaches its bound, and keeps running.
/// Once space is freed, every record answered 202 is in the lake exactly once (DuckDB), and
/// nothing half-written is left there.
@Suite(.offCooperativePool, .timeLimit(.minutes(8))) struct PushDiskFullTests {
    /// Records the push queue holds before it answers 503.
    static let queueBound = 3_000
    static let workers = 2, recordsPerRequest = 25
    /// How long the disk stays full, at least.
    static let fullFor: Duration = .seconds(10)

    @Test func everyRecordAnswered202ReachesTheLakeOnceAfterItsDiskWasFull() async throws {
        let dir = try makeWorkDirectory("push-disk-full")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let volume = "\(dir)/volume"
        try FileManager.default.createDirectory(atPath: volume, withIntermediateDirectories: true)
        let mounted = try await runTool(["mount", "-t", "tmpfs", "-o", "size=24m", "tmpfs", volume], in: dir)
        try #require(mounted.status == 0, "mounting a tmpfs needs root (CI has it): \(mounted.output)")
        // Lazily: a process that still has a file open there must not keep the mount.
        defer { _ = try? SluiceProcess.collect(DiskFullTests.unmount(volume)) }
        // The state (and with it the push queue) stays on the normal disk: only the lake's is full.
        try write(
            """
            pipelines:
              events:
                source:
                  http: { stream: events, columns: { id: int64, note: string }, required: [id], max_queue_records: \(Self.queueBound) }
                sink:
                  parquet: { path: volume/lake, max_file_age: 1s }
                batch: { max_latency: 200ms }
                retry: { base_delay: 100ms, max_delay: 1s }
            """, to: "\(dir)/p.yaml")
        let port = try freePort()
        let server = try await ServedProcess.start(in: dir, port: port)
        defer { if server.process.isRunning { server.kill9() } }
        func logText() -> String { (try? String(contentsOfFile: "\(dir)/serve.log", encoding: .utf8)) ?? "" }
        func lakeFiles() -> [String] {
            ((try? FileManager.default.contentsOfDirectory(atPath: "\(volume)/lake")) ?? []).filter { $0.hasSuffix(".parquet") && !$0.hasPrefix(".") }
        }

        let tally = PushTally()
        let stop = StopFlag()
        let pushers = Task { try await Self.push(port: port, tally: tally, until: stop) }
        defer { stop.set() }

        // Mid-run: records are reaching the lake.
        let landed = try await waitUntil(seconds: 60) { !lakeFiles().isEmpty && tally.accepted >= 1_000 }
        try #require(landed, "no records reached the lake: \(logText().suffix(3_000))")
        // Another file takes every free byte.
        let filler = "\(volume)/filler"
        try await offPool { DiskFullTests.fill(filler) }
        let filledAt = ContinuousClock.now
        let acceptedWhenFull = tally.accepted

        // The sink meets the full disk, waits and retries; the server stays up.
        let troubled = try await waitUntil(seconds: 60) {
            let text = logText()
            return text.contains("No space left on device") || text.contains("disk is full")
        }
        #expect(troubled, "the log does not name the full disk: \(logText().suffix(3_000))")
        // `sluice serve`'s /readyz checks the state store, failed pipelines and whether each sink's
        // directory can be written (a directory can still be made on a full tmpfs): recorded for
        // the summary, not asserted.
        let readyWhileFull = try? await offPool { try curl(["http://127.0.0.1:\(port)/readyz"]) }
        // The queue fills up to its bound meanwhile (503s, waited for at most 20 s), and the disk
        // stays full for `fullFor` at least.
        try await waitUntil(seconds: 20, interval: .milliseconds(500)) { tally.refused > 0 }
        try await Task.sleep(until: filledAt + Self.fullFor)
        #expect(server.process.isRunning, "the server stopped on a full disk: \(logText().suffix(3_000))")
        let health = try? await offPool { try curl(["http://127.0.0.1:\(port)/healthz"]) }
        #expect(health?.status == 200, "the server does not answer while the disk is full: \(health?.summary ?? "no answer")")
        let acceptedWhileFull = tally.accepted - acceptedWhenFull, refusedWhileFull = tally.refused
        try FileManager.default.removeItem(atPath: filler)

        // A last batch once space is free: retried while the queue is still full (503).
        let last = Array(900_000_000..<(900_000_000 + 100))
        let body = last.map { "{\"id\": \($0), \"note\": \"last\"}" }.joined(separator: "\n")
        let lastArgs = postArgs(port, "events", data: body, contentType: "application/x-ndjson", headers: ["Idempotency-Key: last"])
        var lastReply: CurlReply?
        let lastDeadline = ContinuousClock.now + .seconds(120)
        while ContinuousClock.now < lastDeadline {
            lastReply = try? await offPool { try curl(lastArgs) }
            if lastReply?.status == 202 { break }
            try await Task.sleep(for: .milliseconds(500))
        }
        try #require(lastReply?.status == 202, "the last batch was not accepted: \(lastReply?.summary ?? "no answer")\n\(logText().suffix(3_000))")
        tally.accept(last)
        stop.set()
        try await pushers.value

        // Every accepted id in the lake (more may be there: ids of requests whose answer was lost).
        let acked = Set(tally.acknowledged)
        let drained = try await waitUntil(seconds: 180, interval: .seconds(2)) {
            let distinct = try? python(
                "import duckdb\nprint(duckdb.sql(\"select count(distinct id) from read_parquet('volume/lake/*.parquet')\").fetchall()[0][0])", in: dir)
            return (distinct.flatMap { Int($0) } ?? 0) >= acked.count
        }
        #expect(drained, "the lake did not get every accepted record: \(logText().suffix(3_000))")

        // The server never exited; it stops cleanly, and then the lake is final.
        #expect(server.process.isRunning, "the server exited: \(logText().suffix(3_000))")
        #expect(server.stop() == 0, "\(logText().suffix(3_000))")

        // Every file readable (a glob over them all fails on one that is not), every 202'd id once.
        let output = try await offPool {
            try python(
                """
                import duckdb
                lake = "read_parquet('volume/lake/*.parquet')"
                print(*duckdb.sql(f"select count(*), count(distinct id), sum(id) from {lake}").fetchall()[0])
                for (n,) in duckdb.sql(f"select id from {lake}").fetchall():
                    print(n)
                """, in: dir)
        }
        let lines = output.split(separator: "\n")
        let ids = lines.dropFirst().compactMap { Int($0) }
        var seen: [Int: Int] = [:]
        for id in ids { seen[id, default: 0] += 1 }
        let uncertain = Set(tally.uncertainIDs)
        let expected = acked.union(uncertain.intersection(seen.keys))
        let sum = expected.reduce(0, +)
        #expect(
            lines.first.map(String.init) == "\(expected.count) \(expected.count) \(sum)",
            "count, distinct, sum: \(lines.first ?? "no answer"), expected \(expected.count) \(expected.count) \(sum)")
        // Counts, not sets, in the expectations: a failure prints a number and a sample.
        let duplicated = seen.filter { $0.value > 1 }.map(\.key).sorted()
        let lost = acked.subtracting(seen.keys).sorted()
        let unacknowledged = Set(seen.keys).subtracting(expected).sorted()
        let duplicateCount = duplicated.count, lostCount = lost.count, unacknowledgedCount = unacknowledged.count
        #expect(duplicateCount == 0, "records written twice, e.g. \(duplicated.prefix(5))")
        #expect(lostCount == 0, "accepted records lost, e.g. \(lost.prefix(5))")
        #expect(unacknowledgedCount == 0, "records in the lake that were never accepted, e.g. \(unacknowledged.prefix(5))")
        // Readers skip hidden files (the lake's lock); a temporary file must not be left either.
        let names = (try? FileManager.default.contentsOfDirectory(atPath: "\(volume)/lake")) ?? []
        let stray = names.filter { $0.hasSuffix(".tmp") || (!$0.hasPrefix(".") && !$0.hasSuffix(".parquet")) }
        #expect(stray.isEmpty, "only whole files are left: \(stray)")
        print(
            "chaos: the push lake's file system filled 1 time; \(acked.count) records answered 202 checked "
                + "(\(acceptedWhileFull) accepted and \(refusedWhileFull) requests answered 503 while full, "
                + "\(uncertain.count) of uncertain outcome; readyz while full: \(readyWhileFull.map { "\($0.status)" } ?? "no answer"))")
    }

    /// The load: each worker pushes numbered records (ids unique across workers), one
    /// Idempotency-Key per request, until `stop`. A 202 counts the ids as accepted; a 503 (the
    /// queue is full) as refused, and the worker goes on with new ids. A request without an
    /// answer is sent again with its key until it gets one; if that is not a 202, its ids may
    /// or may not have been accepted (``PushTally/uncertainIDs``).
    static func push(port: Int, tally: PushTally, until stop: StopFlag) async throws {
        let recordsPerRequest = Self.recordsPerRequest
        try await withThrowingTaskGroup(of: Void.self) { group in
            for w in 0..<Self.workers {
                group.addTask {
                    var request = 0
                    while !stop.isSet {
                        let first = (w + 1) * 100_000_000 + request * recordsPerRequest
                        let ids = Array(first..<(first + recordsPerRequest))
                        let body = ids.map { "{\"id\": \($0), \"note\": \"worker \(w) request \(request)\"}" }.joined(separator: "\n")
                        var unanswered = 0
                        while true {
                            var r = HTTPClientRequest(url: "http://127.0.0.1:\(port)/v1/streams/events/records")
                            r.method = .POST
                            r.headers.add(name: "Content-Type", value: "application/x-ndjson")
                            r.headers.add(name: "Idempotency-Key", value: "w\(w)-r\(request)")
                            r.body = .bytes(ByteBuffer(string: body))
                            guard let response = try? await HTTPClient.shared.execute(r, timeout: .seconds(10)) else {
                                unanswered += 1
                                guard unanswered < 30 else {
                                    tally.uncertain(ids)
                                    break
                                }
                                try await Task.sleep(for: .milliseconds(200))
                                continue
                            }
                            _ = try? await response.body.collect(upTo: 1 << 20)
                            switch response.status.code {
                            case 202: tally.accept(ids)
                            case 503: if unanswered > 0 { tally.uncertain(ids) } else { tally.refuse() }
                            default: Issue.record("unexpected status \(response.status.code)")
                            }
                            break
                        }
                        request += 1
                        try await Task.sleep(for: .milliseconds(25))
                    }
                }
            }
            try await group.waitForAll()
        }
    }
}

/// What the pushers of ``PushDiskFullTests`` got back, shared by their tasks and the test.
final class PushTally: Sendable {
    private struct State {
        var acknowledged: [Int] = []
        var uncertain: [Int] = []
        var refused = 0
    }

    private let state = Mutex(State())

    /// Ids answered 202.
    var acknowledged: [Int] { state.withLock { $0.acknowledged } }
    var accepted: Int { state.withLock { $0.acknowledged.count } }
    /// Ids whose request got no answer and then not a 202 either.
    var uncertainIDs: [Int] { state.withLock { $0.uncertain } }
    /// Requests answered 503.
    var refused: Int { state.withLock { $0.refused } }

    func accept(_ ids: [Int]) { state.withLock { $0.acknowledged += ids } }
    func uncertain(_ ids: [Int]) { state.withLock { $0.uncertain += ids } }
    func refuse() { state.withLock { $0.refused += 1 } }
}
