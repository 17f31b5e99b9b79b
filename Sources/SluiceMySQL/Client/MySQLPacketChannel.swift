import NIOCore
import NIOPosix
import NIOSSL
import SluiceCore
import Synchronization

/// One TCP connection to a MySQL server, as logical packets (``MySQLPacketFramer``), read on
/// demand: the socket is read only while a caller waits for a packet or fewer than
/// ``prefetchBytes`` are buffered, so a binlog stream that the pipeline does not keep up with
/// backs up into the server (TCP flow control) instead of into memory.
final class MySQLPacketChannel: Sendable {
    static let prefetchBytes = 4 << 20

    let channel: any Channel
    let inbox: Inbox

    /// Packets received and not yet taken, and the caller waiting for one.
    final class Inbox: Sendable {
        struct State {
            var packets: [MySQLPacketFramer.Packet] = []
            var head = 0
            var bytes = 0
            var waiter: CheckedContinuation<MySQLPacketFramer.Packet, any Error>?
            /// Numbers each wait, so a wait's timer cannot end a later one.
            var wait: UInt64 = 0
            /// The timer of the current wait.
            var timer: Scheduled<Void>?
            var failure: (any Error)?
        }
        let state = Mutex(State())

        func deliver(_ packet: MySQLPacketFramer.Packet) {
            let waiter = state.withLock { s -> CheckedContinuation<MySQLPacketFramer.Packet, any Error>? in
                if let w = s.waiter {
                    s.waiter = nil
                    s.timer?.cancel()
                    s.timer = nil
                    return w
                }
                s.packets.append(packet)
                s.bytes += packet.payload.count
                return nil
            }
            waiter?.resume(returning: packet)
        }

        func fail(_ error: any Error) {
            let waiter = state.withLock { s -> CheckedContinuation<MySQLPacketFramer.Packet, any Error>? in
                if s.failure == nil { s.failure = error }
                s.timer?.cancel()
                s.timer = nil
                defer { s.waiter = nil }
                return s.waiter
            }
            waiter?.resume(throwing: error)
        }

        /// The first buffered packet (nil when none), or the connection's failure once drained.
        static func take(_ s: inout State) throws -> MySQLPacketFramer.Packet? {
            if s.head < s.packets.count {
                let p = s.packets[s.head]
                s.head += 1
                s.bytes -= p.payload.count
                if s.head == s.packets.count || s.head >= 1024 {
                    s.packets.removeFirst(s.head)
                    s.head = 0
                }
                return p
            }
            if let failure = s.failure { throw failure }
            return nil
        }

        /// Whether the socket should be read on: someone waits, or little is buffered.
        var wantsMore: Bool { state.withLock { $0.waiter != nil || ($0.failure == nil && $0.bytes < MySQLPacketChannel.prefetchBytes) } }
    }

    /// Event-loop side: frames the bytes and reads on while the inbox wants more.
    final class Handler: ChannelInboundHandler {
        typealias InboundIn = ByteBuffer
        var framer = MySQLPacketFramer()
        let inbox: Inbox

        init(inbox: Inbox) { self.inbox = inbox }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            let buffer = unwrapInboundIn(data)
            buffer.withUnsafeReadableBytes { framer.append($0) }
            do {
                while let packet = try framer.next() { inbox.deliver(packet) }
            } catch {
                inbox.fail(error)
                context.close(promise: nil)
            }
        }

        func channelReadComplete(context: ChannelHandlerContext) {
            if inbox.wantsMore { context.read() }
        }

        func channelInactive(context: ChannelHandlerContext) {
            inbox.fail(SluiceError(.connection, "the MySQL server closed the connection", retryable: true))
        }

        func errorCaught(context: ChannelHandlerContext, error: any Error) {
            inbox.fail(SluiceError(.unavailable, "MySQL connection: \(error)", retryable: true))
            context.close(promise: nil)
        }
    }

    private init(channel: any Channel, inbox: Inbox) {
        self.channel = channel
        self.inbox = inbox
    }

    static func connect(host: String, port: Int, timeout: Duration) async throws -> MySQLPacketChannel {
        let inbox = Inbox()
        let bootstrap = ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .connectTimeout(.nanoseconds(timeout.nanosecondCount))
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelOption(.autoRead, value: false)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(Handler(inbox: inbox)) }
            }
        do {
            let channel = try await bootstrap.connect(host: host, port: port).get()
            return MySQLPacketChannel(channel: channel, inbox: inbox)
        } catch {
            throw SluiceError(.connection, "cannot connect to MySQL at \(host):\(port): \(error)", retryable: true)
        }
    }

    /// Writes framed bytes.
    func write(_ bytes: [UInt8]) async throws {
        var buffer = channel.allocator.buffer(capacity: bytes.count)
        buffer.writeBytes(bytes)
        do {
            try await channel.writeAndFlush(buffer)
        } catch {
            // What closed the connection says more than the write that found it closed.
            if let failure = inbox.state.withLock({ $0.failure }) { throw failure }
            throw SluiceError(.connection, "MySQL connection: writing failed: \(error)", retryable: true)
        }
    }

    /// The next packet; throws when the connection fails or nothing arrives within `timeout`.
    func next(timeout: Duration) async throws -> MySQLPacketFramer.Packet {
        if let ready = try inbox.state.withLock({ s in try Inbox.take(&s) }) {
            if inbox.wantsMore { channel.read() }
            return ready
        }
        let loop = channel.eventLoop
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<MySQLPacketFramer.Packet, any Error>) in
                // Checked again under the lock that registers the wait: a packet that arrived
                // since the check above is taken now, not left behind while waiting for the next.
                let wait = inbox.state.withLock { s -> Result<UInt64, any Error> in
                    do {
                        if let packet = try Inbox.take(&s) {
                            continuation.resume(returning: packet)
                            return .success(0)
                        }
                    } catch {
                        return .failure(error)
                    }
                    s.waiter = continuation
                    s.wait += 1
                    return .success(s.wait)
                }
                guard case let .success(id) = wait else {
                    if case let .failure(error) = wait { continuation.resume(throwing: error) }
                    return
                }
                guard id != 0 else {
                    if inbox.wantsMore { channel.read() }
                    return
                }
                let inbox = self.inbox
                let timer = loop.scheduleTask(in: .nanoseconds(timeout.nanosecondCount)) {
                    let waiter = inbox.state.withLock { s -> CheckedContinuation<MySQLPacketFramer.Packet, any Error>? in
                        guard s.wait == id else { return nil }
                        s.timer = nil
                        defer { s.waiter = nil }
                        return s.waiter
                    }
                    waiter?.resume(throwing: SluiceError(.unavailable, "the MySQL server sent nothing for \(timeout)", retryable: true))
                }
                let pending = inbox.state.withLock { s -> Bool in
                    guard s.wait == id, s.waiter != nil else { return false }
                    s.timer = timer
                    return true
                }
                if !pending { timer.cancel() }
                channel.read()
            }
        } onCancel: {
            inbox.fail(CancellationError())
        }
    }

    /// Switches the connection to TLS (after an `SSLRequest` was written).
    func startTLS(_ configuration: TLSConfiguration, serverHostname: String?) async throws {
        let context = try NIOSSLContext(configuration: configuration)
        try await channel.eventLoop.submit { [channel] in
            let handler = try NIOSSLClientHandler(context: context, serverHostname: serverHostname)
            try channel.pipeline.syncOperations.addHandler(handler, position: .first)
        }.get()
    }

    func close() async {
        try? await channel.close()
    }
}

extension Duration {
    /// The whole nanoseconds of this duration.
    var nanosecondCount: Int64 { components.seconds * 1_000_000_000 + components.attoseconds / 1_000_000_000 }
}
