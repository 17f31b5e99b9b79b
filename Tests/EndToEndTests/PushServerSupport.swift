import Foundation
import SluiceTesting
import Testing

/// A free TCP port on loopback, given to no other test in this process.
func freePort() throws -> Int {
    try FreePorts.take(1)[0]
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
            // Off the cooperative threads: a curl blocks its thread until it exits.
            if (try? await offPool { try curl(["\(scheme)://127.0.0.1:\(port)/healthz", "-k"]) })?.status == 200 { return served }
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
    let out = ChildProcesses.pipe()
    p.standardOutput = out
    p.standardError = FileHandle.nullDevice
    try ChildProcesses.run(p)
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

/// Sends `request` over a TCP connection to the server on loopback `port`, byte for byte (what
/// curl would refuse or fix: raw UTF-8 in a path), and reads until the server closes the
/// connection; the first response in what came back. Blocking, so it runs off the cooperative pool.
func rawExchange(port: Int, _ request: [UInt8]) async throws -> CurlReply {
    try await offPool {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw POSIXError(.EMFILE) }
        defer { close(fd) }
        var timeout = timeval(tv_sec: 60, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        addr.sin_port = UInt16(port).bigEndian
        let connected = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0 }
        }
        guard connected else { throw POSIXError(.ECONNREFUSED) }
        var sent = 0
        while sent < request.count {
            let n = request[sent...].withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            // The server may answer and stop reading before the whole request is in.
            guard n > 0 else { break }
            sent += n
        }
        var received: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 64 << 10)
        while true {
            let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            guard n > 0 else { break }
            received += buffer[..<n]
        }
        let text = String(decoding: received, as: UTF8.self)
        guard let headEnd = text.range(of: "\r\n\r\n") else { return CurlReply(status: 0, headers: text, body: "") }
        let head = String(text[..<headEnd.lowerBound])
        let status = Int(head.split(separator: " ").dropFirst().first ?? "") ?? 0
        let reply = CurlReply(status: status, headers: head, body: "")
        let length = reply.header("Content-Length").flatMap { Int($0) } ?? Int.max
        return CurlReply(status: status, headers: head, body: String(String(text[headEnd.upperBound...]).utf8.prefix(length)) ?? "")
    }
}
