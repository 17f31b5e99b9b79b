import Foundation
import NIOCore
import NIOPosix

/// A TCP connection to a test server that sends bytes exactly as given (no HTTP client fixes
/// them up: raw UTF-8 in a path, a 100 KB header, a chunked body that stops half-way) and reads
/// the answer by hand.
struct RawHTTPConnection {
    private var inbound: NIOAsyncChannelInboundStream<ByteBuffer>.AsyncIterator
    private let outbound: NIOAsyncChannelOutboundWriter<ByteBuffer>
    /// Bytes received and not yet consumed by ``response()``.
    private var received: [UInt8] = []

    /// One HTTP/1.1 response as it came over the wire.
    struct Response: Sendable {
        var status: Int
        var headers: [(name: String, value: String)]
        var body: [UInt8]

        func header(_ name: String) -> String? { headers.first { $0.name.lowercased() == name.lowercased() }?.value }
        var json: [String: Any] { (try? JSONSerialization.jsonObject(with: Data(body))) as? [String: Any] ?? [:] }
        var text: String { String(decoding: body, as: UTF8.self) }
    }

    struct ConnectionClosed: Error {}

    /// Connects to the server on loopback `port`, runs `body`, then closes the connection.
    static func with<T: Sendable>(port: Int, _ body: (inout RawHTTPConnection) async throws -> T) async throws -> T {
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .connect(host: "127.0.0.1", port: port) { channel in
                channel.eventLoop.makeCompletedFuture {
                    try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel)
                }
            }
        return try await channel.executeThenClose { inbound, outbound in
            var connection = RawHTTPConnection(inbound: inbound.makeAsyncIterator(), outbound: outbound)
            return try await body(&connection)
        }
    }

    func send(_ bytes: [UInt8]) async throws {
        try await outbound.write(ByteBuffer(bytes: bytes))
    }

    func send(_ text: String) async throws { try await send(Array(text.utf8)) }

    /// Reads one response: its head, then a body of `Content-Length` bytes (or up to the end of
    /// the connection when there is none).
    mutating func response() async throws -> Response {
        let separator = Array("\r\n\r\n".utf8)
        var headEnd: Int?
        while headEnd == nil {
            headEnd = received.firstRange(of: separator)?.upperBound
            if headEnd == nil { guard try await receiveMore() else { throw ConnectionClosed() } }
        }
        let head = String(decoding: received[..<headEnd!], as: UTF8.self)
        let lines = head.components(separatedBy: "\r\n").filter { !$0.isEmpty }
        let status = Int(lines.first?.split(separator: " ").dropFirst().first ?? "") ?? 0
        let headers = lines.dropFirst().map { line in
            let parts = line.split(separator: ":", maxSplits: 1)
            return (name: String(parts[0]), value: parts.count > 1 ? parts[1].trimmingCharacters(in: .whitespaces) : "")
        }
        received.removeFirst(headEnd!)
        var response = Response(status: status, headers: headers, body: [])
        if let length = response.header("Content-Length").flatMap({ Int($0) }) {
            while received.count < length { guard try await receiveMore() else { throw ConnectionClosed() } }
            response.body = Array(received.prefix(length))
            received.removeFirst(length)
        } else {
            while try await receiveMore() {}
            response.body = received
            received = []
        }
        return response
    }

    /// What the server sends until it closes the connection.
    mutating func readToEnd() async throws -> [UInt8] {
        while try await receiveMore() {}
        defer { received = [] }
        return received
    }

    private mutating func receiveMore() async throws -> Bool {
        guard let buffer = try await inbound.next() else { return false }
        received += buffer.readableBytesView
        return true
    }
}

/// Polls `condition` until it holds, for at most `seconds`; whether it held.
func waitFor(seconds: Double = 60, _ condition: () async throws -> Bool) async throws -> Bool {
    let deadline = ContinuousClock.now + .milliseconds(Int(seconds * 1000))
    while ContinuousClock.now < deadline {
        if try await condition() { return true }
        try await Task.sleep(for: .milliseconds(20))
    }
    return try await condition()
}

/// A chunk of a `Transfer-Encoding: chunked` body.
func chunk(_ bytes: [UInt8]) -> [UInt8] {
    Array(String(bytes.count, radix: 16).utf8) + Array("\r\n".utf8) + bytes + Array("\r\n".utf8)
}
