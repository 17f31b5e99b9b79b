import Foundation
#if canImport(Glibc)
    import Glibc
#endif

/// Throwaway `nats-server` processes with JetStream on loopback: one node, or a cluster of
/// three with routes between them. Each node keeps its store in a temporary directory that is
/// deleted by ``stop()``. Fails (never skips) when `nats-server` is missing: the test command
/// installs it.
public final class NATSTestCluster: @unchecked Sendable {
    public struct Node {
        public var name: String
        public var clientPort: Int
        public var clusterPort: Int?
        public var monitorPort: Int
        public var process: Process?
        public var arguments: [String]
    }

    public private(set) var nodes: [Node]
    public let directory: URL
    private let lock = NSLock()
    private var jetStream = true

    /// `nats://127.0.0.1:p1,nats://127.0.0.1:p2,…`
    public var url: String { nodes.map { "nats://127.0.0.1:\($0.clientPort)" }.joined(separator: ",") }

    /// Starts `size` nodes (1, or 3 for a cluster) and waits until JetStream answers on each.
    public static func start(size: Int = 1, jetStream: Bool = true) throws -> NATSTestCluster {
        guard
            let binary = ["/usr/sbin/nats-server", "/usr/bin/nats-server", "/usr/local/bin/nats-server"].first(where: {
                FileManager.default.isExecutableFile(atPath: $0)
            })
        else {
            throw TestServerError("nats-server is not installed; run ./scripts/test.sh, which installs it (apt-get install nats-server)")
        }
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("sluice-nats-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        var nodes: [Node] = []
        let ports = try freePorts(size * 3)
        for i in 0..<size {
            let name = "n\(i + 1)"
            let store = directory.appendingPathComponent(name).path
            var args =
                (jetStream ? ["-js"] : []) + (ProcessInfo.processInfo.environment["SLUICE_NATS_TRACE"] != nil ? ["-DV"] : []) + [
                    "-a", "127.0.0.1", "-p", "\(ports[i * 3])", "-m", "\(ports[i * 3 + 1])", "-n", name, "-sd", store,
                ]
            if size > 1 {
                let routes = (0..<size).map { "nats://127.0.0.1:\(ports[$0 * 3 + 2])" }.joined(separator: ",")
                args += ["--cluster_name", "sluice-test", "--cluster", "nats://127.0.0.1:\(ports[i * 3 + 2])", "--routes", routes]
            }
            args = [binary] + args
            nodes.append(
                Node(
                    name: name, clientPort: ports[i * 3], clusterPort: size > 1 ? ports[i * 3 + 2] : nil,
                    monitorPort: ports[i * 3 + 1], process: nil, arguments: args))
        }
        let cluster = NATSTestCluster(nodes: nodes, directory: directory)
        cluster.jetStream = jetStream
        for i in 0..<size { try cluster.startNode(i) }
        for i in 0..<size { try cluster.waitReady(i) }
        return cluster
    }

    private init(nodes: [Node], directory: URL) {
        self.nodes = nodes
        self.directory = directory
    }

    deinit { stop() }

    /// Starts (or restarts) node `index` with its store as it was.
    public func startNode(_ index: Int) throws {
        let node = lock.withLock { nodes[index] }
        let p = Process()
        p.executableURL = URL(fileURLWithPath: node.arguments[0])
        p.arguments = Array(node.arguments.dropFirst())
        let log = directory.appendingPathComponent("\(node.name).log")
        _ = FileManager.default.createFile(atPath: log.path, contents: nil)
        let handle = try FileHandle(forWritingTo: log)
        handle.seekToEndOfFile()
        p.standardOutput = handle
        p.standardError = handle
        try ChildProcesses.run(p)
        lock.withLock { nodes[index].process = p }
    }

    /// Kills node `index` with SIGKILL (its store stays for a restart).
    public func kill(_ index: Int) {
        let p = lock.withLock { nodes[index].process }
        guard let p, p.isRunning else { return }
        Glibc.kill(p.processIdentifier, SIGKILL)
        p.waitUntilExit()
    }

    /// The index of the node named `name` (as `STREAM.INFO`'s `cluster.leader` names it).
    public func index(named name: String) -> Int? { nodes.firstIndex { $0.name == name } }

    /// Waits until the node's monitoring endpoint says JetStream is healthy.
    public func waitReady(_ index: Int, timeout: TimeInterval = 30) throws {
        let port = nodes[index].monitorPort
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if let body = httpGet(port: port, path: jetStream ? "/healthz?js-enabled-only=true" : "/healthz"), body.contains("\"ok\"") { return }
            Thread.sleep(forTimeInterval: 0.05)
        }
        let log = (try? String(contentsOf: directory.appendingPathComponent("\(nodes[index].name).log"), encoding: .utf8)) ?? ""
        throw TestServerError("nats-server \(nodes[index].name) did not become ready in \(Int(timeout)) s; its log ends:\n\(log.suffix(2000))")
    }

    public func stop() {
        for i in nodes.indices { kill(i) }
        if ProcessInfo.processInfo.environment["SLUICE_KEEP_NATS"] == nil { try? FileManager.default.removeItem(at: directory) }
    }

    /// `GET` on loopback without URLSession (a plain socket, HTTP/1.0).
    private func httpGet(port: Int, path: String) -> String? {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = in_port_t(UInt16(port).bigEndian)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        let ok = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard ok == 0 else { return nil }
        let request = "GET \(path) HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n"
        _ = request.withCString { send(fd, $0, strlen($0), 0) }
        var response = [UInt8]()
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = recv(fd, &buffer, buffer.count, 0)
            if n <= 0 { break }
            response += buffer[0..<n]
        }
        return String(decoding: response, as: UTF8.self)
    }

    /// Ports nobody listens on now, none given to another caller in this process.
    public static func freePorts(_ count: Int) throws -> [Int] {
        try FreePorts.take(count)
    }
}

public struct TestServerError: Error, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}
