import Foundation

/// The REST API of `scripts/test_api_server.py` (Link headers, cursors, offsets, pages, OAuth2,
/// 429s, 500s), run as a throwaway process on a free loopback port for the `http_api` tests.
public final class TestAPIServer: @unchecked Sendable {
    public let process: Process
    public let port: Int
    public var url: String { "http://127.0.0.1:\(port)" }

    /// The script, found from this file's place in the repository.
    public static var script: String {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("scripts/test_api_server.py").path
    }

    /// Starts the server with the script's flags (`--items 500`, `--rate 10`, …) and waits for its port.
    public static func start(_ arguments: [String] = []) throws -> TestAPIServer {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = ["python3", script] + arguments
        let out = ChildProcesses.pipe()
        p.standardOutput = out
        p.standardError = FileHandle.nullDevice
        try ChildProcesses.run(p)
        // The first line is `PORT <n>`; read byte by byte so nothing after it is consumed.
        var line: [UInt8] = []
        while let byte = try out.fileHandleForReading.read(upToCount: 1)?.first, byte != 0x0A { line.append(byte) }
        let text = String(decoding: line, as: UTF8.self)
        guard text.hasPrefix("PORT "), let port = Int(text.dropFirst(5)) else {
            p.terminate()
            throw TestServerError("the test API server did not start (printed '\(text)'); is python3 installed?")
        }
        return TestAPIServer(process: p, port: port)
    }

    init(process: Process, port: Int) {
        self.process = process
        self.port = port
    }

    deinit { stop() }

    public func stop() {
        // SIGKILL: a test process may ignore SIGTERM, and children inherit that.
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
    }

    /// The server's counters (`requests`, `rate_limited`, `max_in_window`, `errors`, `tokens_issued`, `unauthorized`).
    /// Blocking (it runs curl): call it off the cooperative pool.
    public func stats() throws -> [String: Int] {
        let data = try curl(["-sf", "\(url)/_stats"])
        return (try JSONSerialization.jsonObject(with: data) as? [String: Int]) ?? [:]
    }

    /// Posts a control request (`/_control/update`, `/_control/append`). Blocking (curl).
    public func control(_ path: String, _ body: [String: Any]) throws {
        let json = String(decoding: try JSONSerialization.data(withJSONObject: body), as: UTF8.self)
        _ = try curl(["-sf", "-X", "POST", "-H", "Content-Type: application/json", "--data", json, "\(url)\(path)"])
    }

    private func curl(_ arguments: [String]) throws -> Data {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = ["curl"] + arguments
        let out = ChildProcesses.pipe()
        p.standardOutput = out
        try ChildProcesses.run(p)
        let data = out.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        guard p.terminationStatus == 0 else { throw TestServerError("curl \(arguments.joined(separator: " ")) failed (\(p.terminationStatus))") }
        return data
    }
}
