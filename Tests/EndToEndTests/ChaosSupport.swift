import Foundation

/// Polls `/readyz` of a `sluice run --metrics-port` (or `serve`) until it answers 503 with a
/// problem that mentions `text`, for at most `seconds` or until `process` exits. Returns the
/// last answer (nil if none came), for the test's expectation and its message.
func waitUntilNotReady(port: Int, mentioning text: String, seconds: Double, while process: Process) async throws -> CurlReply? {
    var reply: CurlReply?
    let deadline = ContinuousClock.now + .milliseconds(Int(seconds * 1000))
    while ContinuousClock.now < deadline, process.isRunning {
        reply = try? await offPool { try curl(["http://127.0.0.1:\(port)/readyz"]) }
        if reply?.status == 503 && reply?.body.contains(text) == true { break }
        try await Task.sleep(for: .milliseconds(200))
    }
    return reply
}

extension CurlReply {
    /// A 503 from `/readyz` whose problem mentions `text`.
    func isNotReady(mentioning text: String) -> Bool { status == 503 && body.contains(text) }

    /// The status and body, for a failed expectation's message.
    var summary: String { "\(status) \(body)" }
}

/// Holds a `sluice` process between the two phases of its first commit
/// (`SLUICE_TEST_HOLD=commit-prepared=…`), so that a fault lands mid-run however loaded the
/// machine is: a run left alone may be through its input before the test gets to inject it.
struct CommitHold {
    let path: String

    init(in directory: String) { path = "\(directory)/commit-hold" }

    /// For the process's environment.
    var environment: [String: String] { ["SLUICE_TEST_HOLD": "commit-prepared=\(path)"] }

    /// Waits until the process is held there.
    func reached(seconds: Double = 120) async throws -> Bool {
        let reached = path + ".reached"
        return try await waitUntil(seconds: seconds) { FileManager.default.fileExists(atPath: reached) }
    }

    /// Lets the process go on (and any later arrival pass).
    func release() { FileManager.default.createFile(atPath: path, contents: nil) }
}
