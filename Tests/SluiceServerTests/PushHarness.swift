import AsyncHTTPClient
import Foundation
import SluiceTesting
import Logging
import NIOCore
import NIOHTTP1
import Prometheus
import SluiceCore
@testable import SluiceServer
import SluiceStateSQLite
import Testing

/// A real push server on a free loopback port, over a real SQLite state store, for one test.
struct PushHarness {
    let store: SQLiteStateStore
    let port: Int
    let directory: String

    struct Reply {
        var status: Int
        var headers: HTTPHeaders
        var body: String
        var json: [String: Any] { (try? JSONSerialization.jsonObject(with: Data(body.utf8))) as? [String: Any] ?? [:] }
    }

    static func run(
        _ streams: [PushStream], settings: PushServer.Settings = PushServer.Settings(),
        failedPipelines: @escaping @Sendable () -> [String] = { [] },
        queue: ((SQLiteStateStore) -> GroupCommitQueue)? = nil,
        registry: Bool = false,
        intake: PushIntake = PushIntake(),
        inflight: InflightBudget? = nil,
        _ body: (PushHarness) async throws -> Void
    ) async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("push-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let store = try SQLiteStateStore(path: "\(directory)/state.db")
        var settings = settings
        settings.port = 0
        let (ports, portsIn) = AsyncStream<Int>.makeStream()
        var logger = Logger(label: "push-test")
        logger.logLevel = .warning
        var server = PushServer(
            settings: settings, streams: streams, store: store, state: store, registry: PrometheusCollectorRegistry(),
            logger: logger, failedPipelines: failedPipelines, onListening: { portsIn.yield($0) })
        server.groupCommitQueue = queue?(store)
        server.intake = intake
        server.inflightBudget = inflight
        if registry { server.schemaRegistry = SchemaRegistry(store: store) }
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { [server] in
                // If the server fails before listening, end the port stream so the test fails instead of hanging.
                defer { portsIn.finish() }
                try await server.run()
            }
            var it = ports.makeAsyncIterator()
            guard let port = await it.next() else {
                try await group.waitForAll()
                Issue.record("the server stopped before listening")
                return
            }
            defer { group.cancelAll() }
            try await body(PushHarness(store: store, port: port, directory: directory))
        }
    }

    func post(
        _ stream: String = "s", _ body: [UInt8], contentType: String? = "application/json",
        headers: [(String, String)] = [], client: HTTPClient = .shared
    ) async throws -> Reply {
        var request = HTTPClientRequest(url: "http://127.0.0.1:\(port)/v1/streams/\(stream)/records")
        request.method = .POST
        if let contentType { request.headers.add(name: "Content-Type", value: contentType) }
        for (k, v) in headers { request.headers.add(name: k, value: v) }
        request.body = .bytes(ByteBuffer(bytes: body))
        return try await send(request, client: client)
    }

    func post(
        _ stream: String = "s", _ text: String, contentType: String? = "application/json",
        headers: [(String, String)] = [], client: HTTPClient = .shared
    ) async throws -> Reply {
        try await post(stream, Array(text.utf8), contentType: contentType, headers: headers, client: client)
    }

    func get(_ path: String) async throws -> Reply {
        try await send(HTTPClientRequest(url: "http://127.0.0.1:\(port)\(path)"))
    }

    /// A request with a JSON body and the registry's content type.
    func call(_ method: HTTPMethod, _ path: String, _ body: Any? = nil, headers: [(String, String)] = []) async throws -> Reply {
        var request = HTTPClientRequest(url: "http://127.0.0.1:\(port)\(path)")
        request.method = method
        request.headers.add(name: "Content-Type", value: "application/vnd.schemaregistry.v1+json")
        for (k, v) in headers { request.headers.add(name: k, value: v) }
        if let body { request.body = .bytes(ByteBuffer(bytes: try JSONSerialization.data(withJSONObject: body))) }
        return try await send(request)
    }

    func send(_ request: HTTPClientRequest, client: HTTPClient = .shared) async throws -> Reply {
        // Generous: under a full parallel test run the two cores can be busy for a long time.
        let response = try await client.execute(request, timeout: .seconds(180))
        let body = try await response.body.collect(upTo: 16 << 20)
        return Reply(status: Int(response.status.code), headers: response.headers, body: String(buffer: body))
    }

    /// Everything queued for `stream`, as lines.
    func queuedLines(_ stream: String = "s") async throws -> [String] {
        try await store.queued(stream: stream, after: 0, limit: 100_000, maxBytes: .max)
            .flatMap { String(decoding: $0.payload, as: UTF8.self).split(separator: "\n").map(String.init) }
    }
}

func stream(_ name: String = "s", pipeline: String = "p", _ configure: (inout HTTPStreamOptions) -> Void = { _ in }) -> PushStream {
    var o = HTTPStreamOptions(stream: name)
    configure(&o)
    return PushStream(pipeline: pipeline, options: o)
}

/// gzip of `bytes`, by the gzip tool.
func gzipped(_ bytes: [UInt8]) throws -> [UInt8] {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("gz-\(UUID().uuidString)").path
    try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(atPath: dir) }
    let path = "\(dir)/body"
    try Data(bytes).write(to: URL(fileURLWithPath: path))
    let p = Process()
    p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    p.arguments = ["gzip", "-f", path]
    try ChildProcesses.run(p)
    p.waitUntilExit()
    return [UInt8](try Data(contentsOf: URL(fileURLWithPath: path + ".gz")))
}

/// A client that opens up to `connections` connections at once (the shared one opens 8 per host).
func wideClient(_ connections: Int) -> HTTPClient {
    var configuration = HTTPClient.Configuration()
    configuration.connectionPool = .init(idleTimeout: .seconds(30), concurrentHTTP1ConnectionsPerHostSoftLimit: connections)
    return HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
}
