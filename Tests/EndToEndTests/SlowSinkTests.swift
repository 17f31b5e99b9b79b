import AsyncHTTPClient
import Foundation
import SluiceTesting
import Testing

/// Chaos: a sink that is slow (every commit phase held 1 s) must slow the source down, not let it
/// read ahead into memory. Mid-run, the bytes the process has read from the input stay within
/// a bound of what it has handed to the sink (the kernel's count of bytes read, `/proc/PID/io`,
/// against `sluice_records_out_total`), and its
/// peak memory stays small while the input is larger than that bound many times over. A stop
/// at that point, then a run at full speed, delivers every record once.
@Suite(.offCooperativePool, .timeLimit(.minutes(10))) struct SlowSinkTests {
    static let rows = 1_000_000
    /// Input line `i`: all of the same length (every id has nine digits).
    static func line(_ i: Int) -> String { "{\"id\":\(100_000_000 + i),\"note\":\"every line has the same length\"}\n" }
    static let lineBytes = line(0).utf8.count

    @Test func aSlowSinkHoldsTheSourceBackAndMemoryStaysBounded() async throws {
        let dir = try makeWorkDirectory("slow-sink")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var text = ""
        text.reserveCapacity(Self.rows * Self.lineBytes)
        for i in 0..<Self.rows { text += Self.line(i) }
        try write(text, to: "\(dir)/in/rows.ndjson")
        let inputBytes = Self.rows * Self.lineBytes
        try write(
            """
            pipelines:
              p:
                source: { file: { path: "in/*.ndjson", format: ndjson, columns: { id: int64, note: string } } }
                sink: { ndjson: { path: out, max_file_size: 64KB } }
                batch: { max_rows: 500, max_latency: 100ms }
                buffer: { max_batches: 2, max_bytes: 1MB }
            """, to: "\(dir)/p.yaml")
        let port = try freePort()
        let log = "\(dir)/sluice.log"
        let run = try SluiceProcess.start(
            ["run", "p.yaml", "--no-progress", "--metrics-port", "\(port)"], in: dir, log: log,
            environment: ["SLUICE_TEST_COMMIT_DELAY_MS": "1000"])
        defer { if run.isRunning { kill(run.processIdentifier, SIGKILL) } }
        func logText() -> String { (try? String(contentsOfFile: log, encoding: .utf8)) ?? "" }

        // Let it work against the slow sink (a commit per 64 KB of output, each held 2 × 1 s:
        // about 550 records/s, half an hour for the input) for a while, sampling how far reading
        // runs ahead of what the sink has been handed (`sluice_records_out_total`).
        var worstAhead = 0
        var samples = 0
        let until = ContinuousClock.now + .seconds(180)
        while samples < 6, ContinuousClock.now < until, run.isRunning {
            try await Task.sleep(for: .milliseconds(500))
            guard let read = Self.bytesRead(run.processIdentifier),
                let out = try? await Self.recordsOut(port: port)
            else { continue }
            worstAhead = max(worstAhead, read - out * Self.lineBytes)
            samples += 1
        }
        try #require(run.isRunning, "the run finished against a slow sink: \(logText().suffix(2_000))")
        let peak = Self.peakRSS(run.processIdentifier) ?? 0
        kill(run.processIdentifier, SIGTERM)
        await waitForExit(run)
        #expect(run.terminationStatus == 0, "\(logText().suffix(2_000))")
        #expect(samples >= 3, "too few samples: \(samples)")
        // The buffer holds 1 MB and two batches; the reader's chunks and the batch being
        // built add a few MB. Without backpressure the reader would be through the input
        // (\(inputBytes / 1_000_000) MB) within a second.
        #expect(worstAhead < 16_000_000, "read ran \(worstAhead) bytes ahead of what was committed")
        #expect(peak < 200_000_000, "peak RSS \(peak) bytes")

        // Stopped mid-input: a run at full speed (and larger files) delivers the rest, and
        // every record once.
        try write(try String(contentsOfFile: "\(dir)/p.yaml", encoding: .utf8).replacingOccurrences(of: "64KB", with: "16MB"), to: "\(dir)/p.yaml")
        let rest = try await SluiceProcess.runWithoutBlocking(["run", "p.yaml", "--no-progress"], in: dir)
        #expect(rest.status == 0, "\(rest.stderr)")
        let ids = try await offPool { try outputLines("\(dir)/out").map { $0.split(separator: ",").first ?? "" } }
        #expect(ids.count == Self.rows && Set(ids).count == Self.rows, "\(ids.count) lines, \(Set(ids).count) distinct of \(Self.rows)")
        print(
            "chaos: a sink slowed to 2 s per commit: read at most \(worstAhead / 1_000_000) MB ahead, peak RSS \(peak / 1_000_000) MB; \(Self.rows) records checked"
        )
    }

    /// Bytes the process has read through `read(2)` and friends (`rchar` of `/proc/PID/io`).
    static func bytesRead(_ pid: Int32) -> Int? {
        guard let io = try? String(contentsOfFile: "/proc/\(pid)/io", encoding: .utf8) else { return nil }
        for line in io.split(separator: "\n") where line.hasPrefix("rchar:") {
            return Int(line.dropFirst("rchar:".count).trimmingCharacters(in: .whitespaces))
        }
        return nil
    }

    /// Peak resident memory of the process so far (`VmHWM` of `/proc/PID/status`), in bytes.
    static func peakRSS(_ pid: Int32) -> Int? {
        guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) else { return nil }
        for line in status.split(separator: "\n") where line.hasPrefix("VmHWM:") {
            return (line.split(separator: " ").compactMap { Int($0) }.first ?? 0) * 1024
        }
        return nil
    }

    /// `sluice_records_out_total` of the run, from its `/metrics` (in-process: starting a curl
    /// for each sample waited its turn behind every other test's child processes).
    static func recordsOut(port: Int) async throws -> Int? {
        let response = try await HTTPClient.shared.execute(HTTPClientRequest(url: "http://127.0.0.1:\(port)/metrics"), timeout: .seconds(10))
        let body = String(buffer: try await response.body.collect(upTo: 1 << 24))
        for line in body.split(separator: "\n") where line.hasPrefix("sluice_records_out_total{") {
            return line.split(separator: " ").last.flatMap { Double($0) }.map { Int($0) }
        }
        return nil
    }
}
