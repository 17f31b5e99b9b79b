import Foundation
import SluiceTesting
import Testing

/// Runs the built `sluice` binary, as a user would.
struct SluiceProcess {
    /// The binary: `$SLUICE_BIN`, else `.build/debug/sluice` of this package.
    static var binary: String {
        if let bin = ProcessInfo.processInfo.environment["SLUICE_BIN"] { return bin }
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        return root.appendingPathComponent(".build/debug/sluice").path
    }

    struct Result {
        var status: Int32
        var stdout: String
        var stderr: String
    }

    /// Runs to completion.
    /// `env -C DIR`: the child's working directory is set in the child, so tests running in
    /// parallel cannot race on the parent's working directory.
    static func process(_ arguments: [String], in directory: String) -> Process {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = ["-C", directory, binary] + arguments
        return p
    }

    static func run(_ arguments: [String], in directory: String, environment: [String: String] = [:]) throws -> Result {
        let p = process(arguments, in: directory)
        p.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        return try collect(p)
    }

    /// Runs a configured process to completion and returns its status and output (blocking).
    static func collect(_ p: Process) throws -> Result {
        let out = ChildProcesses.pipe(), err = ChildProcesses.pipe()
        p.standardOutput = out
        p.standardError = err
        try ChildProcesses.run(p)
        // Read both pipes concurrently with the process so neither fills up.
        let group = DispatchGroup()
        nonisolated(unsafe) var outData = Data(), errData = Data()
        group.enter()
        Thread {
            outData = out.fileHandleForReading.readDataToEndOfFile(); group.leave()
        }.start()
        group.enter()
        Thread {
            errData = err.fileHandleForReading.readDataToEndOfFile(); group.leave()
        }.start()
        p.waitUntilExit()
        group.wait()
        return Result(
            status: p.terminationStatus, stdout: String(decoding: outData, as: UTF8.self),
            stderr: String(decoding: errData, as: UTF8.self))
    }

    /// ``run(_:in:environment:)`` on another thread: a test awaiting a long run must not hold one
    /// of the few cooperative threads (tests run in parallel in one process; blocked threads
    /// starve the others' servers and clients).
    static func runWithoutBlocking(_ arguments: [String], in directory: String, environment: [String: String] = [:]) async throws -> Result {
        // A thread of its own: GCD's global queues have few threads on Linux, and the kill timers
        // of the crash tests run there.
        try await withCheckedThrowingContinuation { continuation in
            Thread {
                continuation.resume(with: Swift.Result { try run(arguments, in: directory, environment: environment) })
            }.start()
        }
    }

    /// Starts without waiting; output goes to files in `directory`.
    static func start(_ arguments: [String], in directory: String, log: String, environment: [String: String] = [:]) throws -> Process {
        let p = process(arguments, in: directory)
        p.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        // Appended to: a worker restarted by a test keeps the log of its earlier runs.
        if !FileManager.default.fileExists(atPath: log) { _ = FileManager.default.createFile(atPath: log, contents: nil) }
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: log))
        handle.seekToEndOfFile()
        p.standardOutput = handle
        p.standardError = handle
        try ChildProcesses.run(p)
        return p
    }
}

/// Waits for `process` to exit without holding a cooperative thread: polls `isRunning`, which
/// Foundation's process-monitoring thread clears. (`waitUntilExit()` on another thread than the
/// one that started the process spins: that thread's run loop has no source, so each of its
/// turns returns at once, and it kept a core busy for as long as the process ran.)
func waitForExit(_ process: Process) async {
    while process.isRunning && !Task.isCancelled {
        try? await Task.sleep(for: .milliseconds(10))
    }
    // Cancelled (a test's time limit ran out): the process is killed, so the test ends and can
    // read its status, instead of waiting forever.
    if process.isRunning {
        kill(process.processIdentifier, SIGKILL)
        while process.isRunning { usleep(10_000) }
    }
}

/// Sends `SIGKILL` to a process after a delay, from a thread of its own. (A Dispatch timer was
/// used first: on a loaded full run the global queue's threads were all busy and the timers
/// fired many seconds late, so runs meant to be killed finished instead.) Cancel it once the
/// process has exited, so that it never hits another process that reuses the pid.
final class KillTimer: @unchecked Sendable {
    // `fired` and `cancelled` are guarded by `condition`: that lock is what makes the class Sendable.
    private let condition = NSCondition()
    private var cancelled = false
    private var fired = false

    init(_ pid: pid_t, afterMilliseconds delay: Int) {
        let deadline = Date(timeIntervalSinceNow: Double(delay) / 1000)
        Thread { [self] in
            condition.lock()
            defer { condition.unlock() }
            while !cancelled && condition.wait(until: deadline) {}
            if !cancelled {
                kill(pid, SIGKILL)
                fired = true
            }
        }.start()
    }

    /// Stops the timer if it has not fired; returns whether it had.
    @discardableResult
    func cancel() -> Bool {
        condition.lock()
        defer { condition.unlock() }
        cancelled = true
        condition.signal()
        return fired
    }
}

/// A fresh temporary directory per test.
func makeWorkDirectory(_ name: String) throws -> String {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("sluice-e2e-\(name)-\(UUID().uuidString.prefix(8))").path
    try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    return dir
}

func write(_ text: String, to path: String) throws {
    try FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
    try text.write(toFile: path, atomically: true, encoding: .utf8)
}

/// Every line of every visible `.ndjson` file under `directory`.
func outputLines(_ directory: String) throws -> [Substring] {
    let names = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
    var lines: [Substring] = []
    for name in names.sorted() where name.hasSuffix(".ndjson") && !name.hasPrefix(".") {
        let text = try String(contentsOfFile: (directory as NSString).appendingPathComponent(name), encoding: .utf8)
        lines += text.split(separator: "\n")
    }
    return lines
}

/// Runs `sluice run p.yaml` in `directory` again and again, `kill -9`-ing each run after a random
/// delay, until `kills` kills landed while the run was still going. Every other run pauses
/// between the commit phases (`SLUICE_TEST_COMMIT_DELAY_MS`), so kills also land after the state
/// commit and before files are published. A run that finishes first calls `finishedEarly`;
/// returning false stops the loop. Returns how many kills landed.
func killRepeatedly(
    in directory: String, kills wanted: Int, delays: ClosedRange<Int>, maxRuns: Int,
    arguments: [String] = ["run", "p.yaml", "--no-progress", "--log-level", "error"],
    finishedEarly: () throws -> Bool
) async throws -> Int {
    var kills = 0, runs = 0
    var generator = SystemRandomNumberGenerator()
    while kills < wanted && runs < maxRuns {
        runs += 1
        let p = try SluiceProcess.start(
            arguments, in: directory,
            log: "\(directory)/sluice.log",
            environment: kills % 2 == 1 ? ["SLUICE_TEST_COMMIT_DELAY_MS": "120"] : [:])
        // The kill is timed by a dispatch timer, not a task sleep: with many tests running at once
        // the cooperative threads can be busy for seconds, and the run would finish unkilled.
        let timer = KillTimer(p.processIdentifier, afterMilliseconds: Int.random(in: delays, using: &generator))
        await waitForExit(p)
        timer.cancel()
        if p.terminationReason == .uncaughtSignal {
            kills += 1
        } else {
            #expect(p.terminationStatus == 0, "\((try? String(contentsOfFile: "\(directory)/sluice.log", encoding: .utf8)) ?? "")")
            if try !finishedEarly() { break }
        }
    }
    expectNothingMissing(log: "\(directory)/sluice.log")
    return kills
}

/// The missing-data reconciliation found nothing lost in any run that wrote to `log` (it logs
/// "records missing" at error level, which every crash test's log keeps).
func expectNothingMissing(log: String, sourceLocation: SourceLocation = #_sourceLocation) {
    let text = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
    let missing = text.split(separator: "\n").filter { $0.contains("records missing") }
    #expect(missing.isEmpty, "the reconciliation found records missing: \(missing.prefix(3))", sourceLocation: sourceLocation)
}

/// Polls `condition` every `interval` until it holds or `seconds` have passed; returns whether it held.
/// The condition runs on a thread of its own: it usually blocks (psql, reading files), and the
/// few cooperative threads are shared with the in-process server tests.
@discardableResult
func waitUntil(seconds: Double, interval: Duration = .milliseconds(100), _ condition: @escaping () throws -> Bool) async throws -> Bool {
    let deadline = ContinuousClock.now + .milliseconds(Int(seconds * 1000))
    while ContinuousClock.now < deadline {
        if try await offPool(condition) { return true }
        try await Task.sleep(for: interval)
    }
    return try await offPool(condition)
}

/// Runs blocking work (a `psql` call, a file scan) on a thread of its own and awaits it, so a
/// test's waiting does not hold one of the cooperative threads.
func offPool<T: Sendable>(_ body: @escaping () throws -> T) async throws -> T {
    // The test awaits the thread right here, so whatever the closure captures is not shared.
    let work = UncheckedWork(run: body)
    return try await withCheckedThrowingContinuation { continuation in
        Thread { continuation.resume(with: Result { try work.run() }) }.start()
    }
}

/// Blocking work handed to another thread by ``offPool(_:)``, which awaits it before returning.
struct UncheckedWork<T>: @unchecked Sendable { let run: () throws -> T }

/// Runs a command-line tool (`promtool`, `python3`, `sh`…) found on PATH, in `directory`, on a
/// thread of its own; returns its exit status and its standard output and error together.
func runTool(_ arguments: [String], in directory: String) async throws -> (status: Int32, output: String) {
    try await offPool {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = arguments
        p.currentDirectoryURL = URL(fileURLWithPath: directory)
        let out = ChildProcesses.pipe()
        p.standardOutput = out
        p.standardError = out
        try ChildProcesses.run(p)
        let data = out.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return (p.terminationStatus, String(decoding: data, as: UTF8.self))
    }
}
