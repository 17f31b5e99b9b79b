import Foundation
import Testing

/// A free TCP port on loopback (bound and released; the kernel does not hand it out again at once).
func freePort() throws -> Int {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    defer { close(fd) }
    var addr = sockaddr_in()
    addr.sin_family = sa_family_t(AF_INET)
    addr.sin_addr.s_addr = inet_addr("127.0.0.1")
    addr.sin_port = 0
    var len = socklen_t(MemoryLayout<sockaddr_in>.size)
    let bound = withUnsafeMutablePointer(to: &addr) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, len) == 0 && getsockname(fd, $0, &len) == 0 }
    }
    guard bound else { throw POSIXError(.EADDRINUSE) }
    return Int(UInt16(bigEndian: addr.sin_port))
}

/// `sluice serve` in a directory, started and stopped by a test.
struct ServedProcess {
    let process: Process
    let port: Int
    let directory: String

    static func start(
        _ config: String = "p.yaml", in directory: String, port: Int, extra: [String] = [],
        environment: [String: String] = [:], scheme: String = "http"
    ) async throws -> ServedProcess {
        let p = try SluiceProcess.start(
            ["serve", config, "--port", "\(port)", "--log-level", "warning"] + extra, in: directory,
            log: "\(directory)/serve.log", environment: environment)
        let served = ServedProcess(process: p, port: port, directory: directory)
        for _ in 0..<400 {
            if (try? curl(["\(scheme)://127.0.0.1:\(port)/healthz", "-k"]))?.status == 200 { return served }
            guard p.isRunning else { break }
            try await Task.sleep(for: .milliseconds(25))
        }
        let log = (try? String(contentsOfFile: "\(directory)/serve.log", encoding: .utf8)) ?? ""
        Issue.record("sluice serve did not come up: \(log)")
        throw POSIXError(.ETIMEDOUT)
    }

    /// SIGTERM, then waits: the pipelines commit what they read and the process exits 0.
    func stop() -> Int32 {
        process.terminate()
        process.waitUntilExit()
        return process.terminationStatus
    }

    func kill9() {
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
    }

    /// Peak resident memory of the server so far, in bytes (VmHWM).
    var peakRSS: Int? {
        guard let status = try? String(contentsOfFile: "/proc/\(process.processIdentifier)/status", encoding: .utf8) else { return nil }
        for line in status.split(separator: "\n") where line.hasPrefix("VmHWM:") {
            let kb = line.split(separator: " ").compactMap { Int($0) }.first ?? 0
            return kb * 1024
        }
        return nil
    }
}

struct CurlReply {
    var status: Int
    var headers: String
    var body: String

    var json: [String: Any] { (try? JSONSerialization.jsonObject(with: Data(body.utf8))) as? [String: Any] ?? [:] }
    var problemType: String? { json["type"] as? String }

    func header(_ name: String) -> String? {
        for line in headers.split(separator: "\r\n") {
            let parts = line.split(separator: ":", maxSplits: 1)
            if parts.count == 2, parts[0].lowercased() == name.lowercased() { return parts[1].trimmingCharacters(in: .whitespaces) }
        }
        return nil
    }
}

/// Runs curl (`-s`, headers and body captured) and returns the final response.
func curl(_ arguments: [String]) throws -> CurlReply {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("curl-\(UUID().uuidString)").path
    try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(atPath: dir) }
    let p = Process()
    p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    p.arguments = ["curl", "-s", "--max-time", "60", "-D", "\(dir)/h", "-o", "\(dir)/b", "-w", "%{http_code}"] + arguments
    let out = Pipe()
    p.standardOutput = out
    p.standardError = FileHandle.nullDevice
    try p.run()
    let code = out.fileHandleForReading.readDataToEndOfFile()
    p.waitUntilExit()
    let headers = (try? String(contentsOfFile: "\(dir)/h", encoding: .utf8)) ?? ""
    // With `Expect: 100-continue` the header file holds the interim response first: keep the last.
    let last = headers.components(separatedBy: "\r\n\r\n").filter { !$0.isEmpty }.last ?? ""
    return CurlReply(
        status: Int(String(decoding: code, as: UTF8.self)) ?? 0, headers: last,
        body: (try? String(contentsOfFile: "\(dir)/b", encoding: .utf8)) ?? "")
}

/// curl arguments that POST `body` (a file path with `@`, or literal data) to a stream.
func postArgs(
    _ port: Int, _ stream: String, data: String, contentType: String = "application/json",
    headers: [String] = [], scheme: String = "http"
) -> [String] {
    [
        "-X", "POST", "\(scheme)://127.0.0.1:\(port)/v1/streams/\(stream)/records", "-H", "Content-Type: \(contentType)",
        "--data-binary", data,
    ] + headers.flatMap { ["-H", $0] }
}
