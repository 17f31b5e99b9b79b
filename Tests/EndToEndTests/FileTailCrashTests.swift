#if canImport(Glibc)
    import Glibc
#endif
import Foundation
import Synchronization
import Testing

/// `file: { tail: true }` under a live writer: lines appended at a steady rate, some written in
/// two halves, the log rotated by rename and by copy-truncate in turn, and `sluice run` killed
/// with `kill -9` at random moments at least ten times. The output holds every line once, and
/// no line in part.
@Suite(.offCooperativePool, .serialized) struct FileTailCrashTests {
    /// The line with sequence number `seq` (its padding depends on it, so a cut line shows).
    static func line(_ seq: Int) -> String {
        let letter = Character(UnicodeScalar(UInt8(97 + seq % 26)))
        return "{\"seq\":\(seq),\"pad\":\"\(String(repeating: letter, count: 20 + seq % 40))\"}\n"
    }

    @Test func everyLineOnceAcrossKillsAndBothKindsOfRotation() async throws {
        let dir = try makeWorkDirectory("tail")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try FileManager.default.createDirectory(atPath: "\(dir)/logs", withIntermediateDirectories: true)
        try write(
            """
            pipelines:
              logs:
                source:
                  file: { path: "logs/app.log*", format: ndjson, tail: true, poll_interval: 100ms, columns: { seq: int64, pad: string } }
                sink:
                  ndjson: { path: out, max_file_age: 1s }
            """, to: "\(dir)/p.yaml")

        let writer = LogWriter(directory: "\(dir)/logs")
        writer.start()
        defer { writer.stop() }
        // Every run is killed: a tailing pipeline never ends by itself.
        let kills = try await killRepeatedly(in: dir, kills: 12, delays: 300...1500, maxRuns: 30) { false }
        #expect(kills >= 10)
        let (written, rotations) = writer.stop()
        #expect(rotations >= 4, "the log was rotated \(rotations) times")

        // A last run catches up with everything written, then stops on SIGTERM.
        let p = try SluiceProcess.start(["run", "p.yaml", "--no-progress", "--log-level", "error"], in: dir, log: "\(dir)/sluice.log")
        defer { if p.isRunning { kill(p.processIdentifier, SIGKILL) } }
        let caughtUp = try await waitUntil(seconds: 180, interval: .milliseconds(300)) {
            (try? outputLines("\(dir)/out").count) ?? 0 >= written
        }
        #expect(caughtUp, "\((try? outputLines("\(dir)/out").count) ?? 0) of \(written) lines in the output")
        kill(p.processIdentifier, SIGTERM)
        await waitForExit(p)
        #expect(p.terminationStatus == 0)
        expectNothingMissing(log: "\(dir)/sluice.log")
        // A line read before its newline was written would have been cut: a dead letter.
        let letters = try await runTool(["\(SluiceProcess.binary)", "dlq", "stats", "--config", "p.yaml"], in: dir)
        #expect(letters.output.lowercased().contains("no dead letters"), "\(letters.output)")

        let lines = try outputLines("\(dir)/out")
        var seen = [Int](repeating: 0, count: written)
        var foreign: [Substring] = []
        for line in lines {
            // The sink writes the columns in their order: exactly the line the writer wrote.
            guard line.hasPrefix("{\"seq\":"), let seq = Int(line.dropFirst(7).prefix { $0.isNumber }), seq < written,
                Self.line(seq) == line + "\n"
            else {
                foreign.append(line)
                continue
            }
            seen[seq] += 1
        }
        #expect(foreign.count == 0, "lines that were not written whole: \(foreign.prefix(3))")
        let missing = seen.indices.filter { seen[$0] == 0 }, twice = seen.indices.filter { seen[$0] > 1 }
        #expect(missing.count == 0, "\(missing.count) of \(written) lines missing, first \(missing.prefix(5))")
        #expect(twice.count == 0, "\(twice.count) lines more than once, first \(twice.prefix(5))")
        #expect(lines.count == written)
    }
}

/// An application writing its log at a steady rate on a thread of its own: bursts of 20 lines,
/// the last one in two halves 10 ms apart (the log ends in a partial line most of the time);
/// every 1.2 s the log is rotated, by
/// rename (a few more lines go to the renamed file, as from an application that reopens its
/// log late) and by copy-truncate in turn. Each rotated file keeps its own name
/// (`app.log.1`, `app.log.2`…), so every line written stays somewhere the glob finds it.
final class LogWriter: Sendable {
    let directory: String
    private let stopping = Mutex(false)
    private let finished = DispatchSemaphore(value: 0)
    private let result = Mutex<(written: Int, rotations: Int)?>(nil)

    init(directory: String) { self.directory = directory }

    func start() {
        Thread { [self] in
            let log = "\(directory)/app.log"
            var fd = open(log, O_WRONLY | O_APPEND | O_CREAT, 0o644)
            var seq = 0, rotations = 0
            var lastRotation = Date()
            func put(_ text: String) { _ = text.withCString { Glibc.write(fd, $0, strlen($0)) } }
            while !stopping.withLock({ $0 }) {
                // The burst's last line is written in two halves with the pause between them, so
                // the log ends in a partial line most of the time.
                for i in 0..<20 {
                    let line = FileTailCrashTests.line(seq)
                    if i == 19 {
                        let cut = line.index(line.startIndex, offsetBy: line.count / 2)
                        put(String(line[..<cut]))
                        usleep(10_000)
                        put(String(line[cut...]))
                    } else {
                        put(line)
                    }
                    seq += 1
                }
                guard Date().timeIntervalSince(lastRotation) > 1.2 else { continue }
                rotations += 1
                lastRotation = Date()
                if rotations % 2 == 1 {
                    rename(log, "\(log).\(rotations)")
                    for _ in 0..<5 {
                        put(FileTailCrashTests.line(seq))
                        seq += 1
                    }
                    close(fd)
                    fd = open(log, O_WRONLY | O_APPEND | O_CREAT, 0o644)
                } else {
                    try? FileManager.default.copyItem(atPath: log, toPath: "\(log).\(rotations)")
                    ftruncate(fd, 0)
                }
            }
            close(fd)
            result.withLock { $0 = (seq, rotations) }
            finished.signal()
        }.start()
    }

    /// Stops the writer (once) and returns how many lines it wrote and how often it rotated.
    @discardableResult
    func stop() -> (written: Int, rotations: Int) {
        let first = stopping.withLock { was in
            defer { was = true }
            return !was
        }
        if first { finished.wait() }
        return result.withLock { $0 } ?? (0, 0)
    }
}
