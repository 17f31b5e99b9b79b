import NIOCore

/// The NIO end of one TCP connection to a server: feeds received bytes to a ``NATSParser``,
/// runs the handshake (INFO → CONNECT + PING → PONG), then hands every operation to the
/// connection. Lives on its channel's event loop only.
final class NATSChannelHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private var parser = NATSParser()
    private let handshake: EventLoopPromise<NATSServerInfo>
    /// Builds the CONNECT + PING bytes once the server's INFO is known.
    private let connectLine: (NATSServerInfo) -> [UInt8]
    private let deliver: (NATSServerOp) -> Void
    private let closed: (NATSError?) -> Void
    private var info: NATSServerInfo?
    private var handshakeDone = false
    /// Set before the channel is closed on purpose, to report why.
    var failure: NATSError?

    init(
        handshake: EventLoopPromise<NATSServerInfo>, connectLine: @escaping (NATSServerInfo) -> [UInt8],
        deliver: @escaping (NATSServerOp) -> Void, closed: @escaping (NATSError?) -> Void
    ) {
        self.handshake = handshake
        self.connectLine = connectLine
        self.deliver = deliver
        self.closed = closed
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let buffer = unwrapInboundIn(data)
        buffer.withUnsafeReadableBytes { parser.append($0) }
        do {
            while let op = try parser.next() {
                if handshakeDone {
                    deliver(op)
                    continue
                }
                switch op {
                case let .info(json):
                    let parsed = NATSServerInfo(json: json)
                    info = parsed
                    var out = context.channel.allocator.buffer(capacity: 256)
                    out.writeBytes(connectLine(parsed))
                    context.writeAndFlush(wrapOutboundOut(out), promise: nil)
                case .pong:
                    handshakeDone = true
                    handshake.succeed(info ?? NATSServerInfo(json: Array("{}".utf8)))
                case let .error(text):
                    failure = .refused(text)
                    context.close(promise: nil)
                    return
                case .ping:
                    var out = context.channel.allocator.buffer(capacity: 8)
                    out.writeString("PONG\r\n")
                    context.writeAndFlush(wrapOutboundOut(out), promise: nil)
                case .ok, .message:
                    break
                }
            }
        } catch {
            failure = .protocolViolation("\(error)")
            context.close(promise: nil)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        if handshakeDone {
            closed(failure)
        } else {
            handshakeDone = true
            handshake.fail(failure ?? NATSError.unreachable("the server closed the connection during the handshake"))
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if failure == nil { failure = .unreachable("\(error)") }
        context.close(promise: nil)
    }
}

/// What a server says about itself in `INFO`.
public struct NATSServerInfo: Sendable {
    public var serverName: String?
    public var version: String?
    public var maxPayload: Int
    public var jetStream: Bool
    public var headers: Bool
    /// The cluster's client URLs (`host:port`), to reconnect to when this server goes.
    public var connectURLs: [String]
    public var authRequired: Bool

    init(json: [UInt8]) {
        let object = (try? JSONSerialization.jsonObject(with: Data(json))) as? [String: Any] ?? [:]
        serverName = object["server_name"] as? String
        version = object["version"] as? String
        maxPayload = (object["max_payload"] as? Int) ?? 1 << 20
        jetStream = (object["jetstream"] as? Bool) ?? false
        headers = (object["headers"] as? Bool) ?? false
        connectURLs = (object["connect_urls"] as? [String]) ?? []
        authRequired = (object["auth_required"] as? Bool) ?? false
    }
}

import Foundation
