import Foundation
import Logging
import NIOCore
import NIOPosix
import Synchronization

/// A client connection to a NATS server or cluster, on SwiftNIO.
///
/// - Publishing writes to the socket from any thread; ``send(_:)`` takes a whole buffer of
///   pre-encoded operations so a batch costs one write.
/// - Replies come to one wildcard inbox subscription (`_INBOX.<id>.>`); each request or pull
///   registers a token under it (``registerInbox(_:)``).
/// - When the connection drops, the client reconnects with exponential backoff over every
///   known server (the seeds and the cluster's `connect_urls`), then re-sends CONNECT and every
///   SUB. Inbox handlers are told (``InboxEvent/disconnected``) so callers can re-issue what was
///   in flight; publishes written while disconnected throw ``NATSError/disconnected``.
/// - Server PINGs are answered; the client pings a quiet server every ``NATSOptions/pingInterval``
///   and drops a connection that leaves two pings unanswered.
public final class NATSConnection: Sendable {
    /// What an inbox handler receives.
    public enum InboxEvent: Sendable {
        case message(NATSInboundMessage)
        /// The connection dropped: replies to requests sent before will not come.
        case disconnected
    }

    public let options: NATSOptions
    let logger: Logger
    /// The event loops the connection runs on (for timers of its users).
    public let group: any EventLoopGroup
    /// `_INBOX.<random>.`: replies arrive on this prefix plus a token.
    public let inboxPrefix: String
    private let state: Mutex<State>

    private struct Subscription {
        var subject: String
        var queue: String?
        var handler: @Sendable (NATSInboundMessage) -> Void
    }

    private struct State {
        var channel: (any Channel)?
        var closed = false
        var servers: [NATSServerAddress]
        var nextServer = 0
        var info: NATSServerInfo?
        var subscriptions: [UInt64: Subscription] = [:]
        var nextSID: UInt64 = 2
        var inbox: [Substring: @Sendable (InboxEvent) -> Void] = [:]
        var nextToken: UInt64 = 0
        /// One entry per PING in flight: a waiter from ``flush(timeout:)``, or nil for the timer's.
        var pings: [CheckedContinuation<Void, any Error>?] = []
        var connectWaiters: [UInt64: CheckedContinuation<Void, any Error>] = [:]
        var nextWaiter: UInt64 = 0
        var pingTimer: RepeatedTask?
        var reconnects = 0
    }

    static let inboxSID: UInt64 = 1

    private init(options: NATSOptions, logger: Logger, group: any EventLoopGroup) {
        self.options = options
        self.logger = logger
        self.group = group
        var random = SystemRandomNumberGenerator()
        let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789")
        inboxPrefix = "_INBOX." + String((0..<22).map { _ in alphabet[Int(random.next() % UInt64(alphabet.count))] }) + "."
        state = Mutex(State(servers: options.servers))
    }

    /// Connects to the first server that answers (trying each seed up to
    /// ``NATSOptions/initialConnectRounds`` times). Throws ``NATSError/unreachable(_:)`` naming
    /// each server's last error, or ``NATSError/refused(_:)`` at once when credentials are refused.
    public static func connect(
        _ options: NATSOptions, logger: Logger,
        group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton
    ) async throws -> NATSConnection {
        let connection = NATSConnection(options: options, logger: logger, group: group)
        var errors: [String: String] = [:]
        let attempts = max(1, options.initialConnectRounds) * options.servers.count
        for attempt in 0..<attempts {
            let address = options.servers[attempt % options.servers.count]
            do {
                let (channel, info) = try await connection.open(address).get()
                connection.install(channel, info: info, address: address)
                return connection
            } catch let error as NATSError {
                if case .refused = error { throw error }
                errors[address.description] = "\(error)"
            } catch {
                let text = "\(error)"
                errors[address.description] =
                    text.contains("Connection refused")
                    ? "connection refused"
                    : text.contains("timed out") || text.contains("connectTimeout") ? "connect timed out" : text
            }
            if attempt % options.servers.count == options.servers.count - 1 {
                try await Task.sleep(for: connection.backoff(attempt / options.servers.count))
            }
        }
        throw NATSError.unreachable(
            errors.sorted { $0.key < $1.key }.map { "\($0.key): \($0.value)" }.joined(separator: "; ")
                + " (is nats-server running, and started with -js for JetStream?)")
    }

    /// The server this connection talks to now, as it described itself.
    public var serverInfo: NATSServerInfo? { state.withLock { $0.info } }
    public var isConnected: Bool { state.withLock { $0.channel != nil } }
    /// How many times the connection was re-established.
    public var reconnects: Int { state.withLock { $0.reconnects } }

    // MARK: Sending

    /// Writes pre-encoded operations (PUB, HPUB, …) and flushes. Throws
    /// ``NATSError/disconnected`` while reconnecting.
    public func send(_ bytes: [UInt8]) throws {
        let channel = try currentChannel()
        var buffer = channel.allocator.buffer(capacity: bytes.count)
        buffer.writeBytes(bytes)
        channel.writeAndFlush(buffer, promise: nil)
    }

    /// Publishes one message.
    public func publish(_ subject: String, replyTo: String? = nil, headers: NATSHeaders? = nil, payload: [UInt8]) throws {
        var out: [UInt8] = []
        NATSClientOp.publish(subject: subject, replyTo: replyTo, headers: headers, payload: payload).encode(into: &out)
        try send(out)
    }

    private func currentChannel() throws -> any Channel {
        try state.withLock { s in
            if s.closed { throw NATSError.closed }
            guard let channel = s.channel else { throw NATSError.disconnected }
            return channel
        }
    }

    /// Waits until the server has processed everything sent before (a PING answered by PONG).
    public func flush(timeout: Duration = .seconds(5)) async throws {
        let channel = try currentChannel()
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
            state.withLock { $0.pings.append(continuation) }
            var buffer = channel.allocator.buffer(capacity: 6)
            buffer.writeString("PING\r\n")
            channel.writeAndFlush(buffer, promise: nil)
        }
    }

    /// Waits until the connection is up (it may be reconnecting), at most `timeout`.
    public func waitConnected(timeout: Duration) async throws {
        let loop = group.next()
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
            let id: UInt64? = state.withLock { s in
                if s.closed { continuation.resume(throwing: NATSError.closed); return nil }
                if s.channel != nil { continuation.resume(); return nil }
                let id = s.nextWaiter
                s.nextWaiter += 1
                s.connectWaiters[id] = continuation
                return id
            }
            guard let id else { return }
            loop.scheduleTask(in: .nanoseconds(Int64(timeout.nanoseconds))) { [self] in
                let waiter = state.withLock { $0.connectWaiters.removeValue(forKey: id) }
                waiter?.resume(throwing: NATSError.timeout("not reconnected within \(timeout)"))
            }
        }
    }

    // MARK: Inbox, requests, subscriptions

    /// Registers a handler for replies to a new token. Returns the reply subject to use; the
    /// handler also receives replies to subjects below it (`<subject>.<anything>`), so one
    /// token can serve many requests (a publisher numbers its messages that way).
    /// The handler runs on an event loop thread: it must be quick and must not block.
    public func registerInbox(_ handler: @escaping @Sendable (InboxEvent) -> Void) -> (subject: String, token: Substring) {
        let token: Substring = state.withLock { s in
            s.nextToken += 1
            let token = Substring(String(s.nextToken, radix: 36))
            s.inbox[token] = handler
            return token
        }
        return (inboxPrefix + token, token)
    }

    /// A fresh inbox subject outside the shared one, for a subscription of its own (pulled
    /// JetStream messages keep their original subject, so they are routed by sid).
    public func newInbox() -> String {
        var random = SystemRandomNumberGenerator()
        let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789")
        return "_INBOX." + String((0..<22).map { _ in alphabet[Int(random.next() % UInt64(alphabet.count))] })
    }

    public func removeInbox(_ token: Substring) {
        _ = state.withLock { $0.inbox.removeValue(forKey: token) }
    }

    /// Sends a request and waits for its first reply. A `503` status reply throws
    /// ``NATSError/noResponders(_:)``.
    public func request(
        _ subject: String, payload: [UInt8], headers: NATSHeaders? = nil,
        timeout: Duration = .seconds(5)
    ) async throws -> NATSInboundMessage {
        let once = Once<Result<NATSInboundMessage, any Error>>()
        let loop = group.next()
        return try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<NATSInboundMessage, any Error>) in
            once.install { continuation.resume(with: $0) }
            let (reply, token) = registerInbox { event in
                switch event {
                case let .message(m) where m.headers?.status == 503: once.fire(.failure(NATSError.noResponders(subject)))
                case let .message(m): once.fire(.success(m))
                case .disconnected: once.fire(.failure(NATSError.disconnected))
                }
            }
            once.onFire { [self] in removeInbox(token) }
            let timer = loop.scheduleTask(in: .nanoseconds(Int64(timeout.nanoseconds))) {
                once.fire(.failure(NATSError.timeout("no reply to '\(subject)' within \(timeout)")))
            }
            once.onFire { timer.cancel() }
            do {
                try publish(subject, replyTo: reply, headers: headers, payload: payload)
            } catch {
                once.fire(.failure(error))
            }
        }
    }

    /// Subscribes `handler` (called on an event loop thread) to `subject`. Returns the sid.
    @discardableResult
    public func subscribe(
        _ subject: String, queue: String? = nil,
        handler: @escaping @Sendable (NATSInboundMessage) -> Void
    ) throws -> UInt64 {
        let sid = state.withLock { s in
            let sid = s.nextSID
            s.nextSID += 1
            s.subscriptions[sid] = Subscription(subject: subject, queue: queue, handler: handler)
            return sid
        }
        var out: [UInt8] = []
        NATSClientOp.subscribe(subject: subject, queueGroup: queue, sid: sid).encode(into: &out)
        try? send(out)  // while reconnecting the SUB goes out with the others on reconnect
        return sid
    }

    public func unsubscribe(_ sid: UInt64) {
        _ = state.withLock { $0.subscriptions.removeValue(forKey: sid) }
        var out: [UInt8] = []
        NATSClientOp.unsubscribe(sid: sid, max: nil).encode(into: &out)
        try? send(out)
    }

    /// Closes the connection for good; waiters fail with ``NATSError/closed``.
    public func close() async {
        let (channel, inbox, pings, waiters, timer) = state.withLock { s in
            s.closed = true
            defer { s.channel = nil; s.inbox = [:]; s.pings = []; s.connectWaiters = [:]; s.pingTimer = nil }
            return (s.channel, Array(s.inbox.values), s.pings, Array(s.connectWaiters.values), s.pingTimer)
        }
        timer?.cancel()
        for handler in inbox { handler(.disconnected) }
        for ping in pings { ping?.resume(throwing: NATSError.closed) }
        for waiter in waiters { waiter.resume(throwing: NATSError.closed) }
        try? await channel?.close()
    }

    // MARK: Connection lifecycle

    func backoff(_ attempt: Int) -> Duration {
        let base = options.reconnectWait * (1 << min(attempt, 10))
        return min(base, options.maxReconnectWait)
    }

    private func connectLine(_ info: NATSServerInfo, address: NATSServerAddress) -> [UInt8] {
        var fields: [String: Any] = [
            "verbose": false, "pedantic": false, "headers": true, "no_responders": true,
            "protocol": 1, "lang": "swift", "version": "sluice", "name": options.name,
        ]
        if let user = address.user ?? options.user {
            fields["user"] = user
            fields["pass"] = address.password ?? options.password ?? ""
        } else if let token = address.token ?? options.token {
            fields["auth_token"] = token
        }
        let json = (try? JSONSerialization.data(withJSONObject: fields, options: [.sortedKeys])) ?? Data("{}".utf8)
        var out = Array("CONNECT ".utf8) + Array(json) + Array("\r\nPING\r\n".utf8)
        out.reserveCapacity(out.count)
        return out
    }

    /// Opens a TCP connection to `address` and runs the handshake.
    private func open(_ address: NATSServerAddress) -> EventLoopFuture<(any Channel, NATSServerInfo)> {
        let loop = group.next()
        let handshake = loop.makePromise(of: NATSServerInfo.self)
        let timeoutMS = Int64(options.connectTimeout.nanoseconds / 1_000_000)
        let bootstrap = ClientBootstrap(group: loop)
            .connectTimeout(.milliseconds(timeoutMS))
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelInitializer { [self] channel in
                let handler = NATSChannelHandler(
                    handshake: handshake,
                    connectLine: { [self] info in connectLine(info, address: address) },
                    deliver: { [self] op in deliver(op, on: channel) },
                    closed: { [self] reason in channelClosed(channel, reason: reason) })
                return channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(handler)
                }
            }
        return bootstrap.connect(host: address.host, port: address.port).flatMap { channel in
            let timer = loop.scheduleTask(in: .milliseconds(timeoutMS)) {
                if let handler = try? channel.pipeline.syncOperations.handler(type: NATSChannelHandler.self) {
                    handler.failure = .timeout("no INFO/PONG from \(address) within \(timeoutMS) ms")
                }
                channel.close(promise: nil)
            }
            return handshake.futureResult.map { info in
                timer.cancel()
                return (channel, info)
            }
        }.flatMapErrorThrowing { error in
            handshake.fail(error)  // no-op when it already failed
            throw error
        }
    }

    /// Makes `channel` the live connection: re-sends every subscription and starts pinging.
    private func install(_ channel: any Channel, info: NATSServerInfo, address: NATSServerAddress) {
        var out: [UInt8] = []
        let (waiters, reconnected) = state.withLock { s -> ([CheckedContinuation<Void, any Error>], Bool) in
            if s.closed { channel.close(promise: nil); return ([], false) }
            s.channel = channel
            s.info = info
            for url in info.connectURLs {
                if let a = try? NATSServerAddress(parsing: url), !s.servers.contains(where: { $0.host == a.host && $0.port == a.port }) {
                    s.servers.append(a)
                }
            }
            NATSClientOp.subscribe(subject: inboxPrefix + ">", queueGroup: nil, sid: Self.inboxSID).encode(into: &out)
            for (sid, sub) in s.subscriptions.sorted(by: { $0.key < $1.key }) {
                NATSClientOp.subscribe(subject: sub.subject, queueGroup: sub.queue, sid: sid).encode(into: &out)
            }
            let waiters = Array(s.connectWaiters.values)
            s.connectWaiters = [:]
            let interval = Int64(options.pingInterval.nanoseconds)
            s.pingTimer = channel.eventLoop.scheduleRepeatedTask(initialDelay: .nanoseconds(interval), delay: .nanoseconds(interval)) { [self] _ in
                pingTick(channel)
            }
            return (waiters, s.reconnects > 0)
        }
        var buffer = channel.allocator.buffer(capacity: out.count)
        buffer.writeBytes(out)
        channel.writeAndFlush(buffer, promise: nil)
        if reconnected {
            logger.info("NATS reconnected", metadata: ["server": "\(address)", "server_name": "\(info.serverName ?? "")"])
        }
        for waiter in waiters { waiter.resume() }
    }

    private func pingTick(_ channel: any Channel) {
        let unanswered = state.withLock { s -> Int in
            guard s.channel === channel else { return 0 }
            s.pings.append(nil)
            return s.pings.count
        }
        if unanswered > 2 {
            logger.warning("NATS server stopped answering pings; reconnecting")
            channel.close(promise: nil)
            return
        }
        var buffer = channel.allocator.buffer(capacity: 6)
        buffer.writeString("PING\r\n")
        channel.writeAndFlush(buffer, promise: nil)
    }

    private func deliver(_ op: NATSServerOp, on channel: any Channel) {
        switch op {
        case let .message(m):
            if m.sid == Self.inboxSID {
                guard m.subject.hasPrefix(inboxPrefix) else { return }
                var token = m.subject.dropFirst(inboxPrefix.count)
                if let dot = token.firstIndex(of: ".") { token = token[..<dot] }
                let handler = state.withLock { $0.inbox[token] }
                handler?(.message(m))
            } else {
                let handler = state.withLock { $0.subscriptions[m.sid]?.handler }
                handler?(m)
            }
        case .ping:
            var buffer = channel.allocator.buffer(capacity: 6)
            buffer.writeString("PONG\r\n")
            channel.writeAndFlush(buffer, promise: nil)
        case .pong:
            let waiter = state.withLock { s -> CheckedContinuation<Void, any Error>? in
                guard !s.pings.isEmpty else { return nil }
                return s.pings.removeFirst()
            }
            waiter?.resume()
        case let .info(json):
            let info = NATSServerInfo(json: json)
            state.withLock { s in
                for url in info.connectURLs {
                    if let a = try? NATSServerAddress(parsing: url), !s.servers.contains(where: { $0.host == a.host && $0.port == a.port }) {
                        s.servers.append(a)
                    }
                }
            }
        case let .error(text):
            logger.warning("NATS server error", metadata: ["error": "\(text)"])
        case .ok:
            break
        }
    }

    /// The live channel closed: tell in-flight handlers, then reconnect.
    private func channelClosed(_ channel: any Channel, reason: NATSError?) {
        let (handlers, pings, timer, closed) = state.withLock {
            s -> ([@Sendable (InboxEvent) -> Void], [CheckedContinuation<Void, any Error>?], RepeatedTask?, Bool) in
            guard s.channel === channel else { return ([], [], nil, true) }
            s.channel = nil
            defer { s.pings = []; s.pingTimer = nil }
            return (Array(s.inbox.values), s.pings, s.pingTimer, s.closed)
        }
        if closed { return }
        timer?.cancel()
        logger.warning("NATS connection lost; reconnecting", metadata: reason.map { ["reason": "\($0)"] } ?? [:])
        for ping in pings { ping?.resume(throwing: NATSError.disconnected) }
        for handler in handlers { handler(.disconnected) }
        scheduleReconnect(attempt: 0)
    }

    private func scheduleReconnect(attempt: Int) {
        let delay = attempt == 0 ? .milliseconds(10) : backoff(attempt)
        group.next().scheduleTask(in: .nanoseconds(Int64(delay.nanoseconds))) { [self] in
            let address: NATSServerAddress? = state.withLock { s in
                guard !s.closed else { return nil }
                let a = s.servers[s.nextServer % s.servers.count]
                s.nextServer += 1
                return a
            }
            guard let address else { return }
            open(address).whenComplete { [self] result in
                switch result {
                case let .success((channel, info)):
                    state.withLock { $0.reconnects += 1 }
                    install(channel, info: info, address: address)
                case let .failure(error):
                    logger.debug("NATS reconnect attempt failed", metadata: ["server": "\(address)", "error": "\(error)"])
                    scheduleReconnect(attempt: attempt + 1)
                }
            }
        }
    }
}

extension Duration {
    var nanoseconds: Int64 {
        let c = components
        return c.seconds * 1_000_000_000 + c.attoseconds / 1_000_000_000
    }
}

/// Resumes a continuation exactly once, whoever comes first (reply, timeout, disconnect), and
/// then runs the clean-ups registered with ``onFire(_:)``.
final class Once<Value: Sendable>: Sendable {
    private struct State {
        var fired = false
        var target: (@Sendable (Value) -> Void)?
        var cleanups: [@Sendable () -> Void] = []
    }
    private let state = Mutex(State())

    func install(_ target: @escaping @Sendable (Value) -> Void) {
        state.withLock { $0.target = target }
    }

    func onFire(_ cleanup: @escaping @Sendable () -> Void) {
        let already = state.withLock { s -> Bool in
            if s.fired { return true }
            s.cleanups.append(cleanup)
            return false
        }
        if already { cleanup() }
    }

    func fire(_ value: Value) {
        let taken = state.withLock { s -> ((@Sendable (Value) -> Void)?, [@Sendable () -> Void])? in
            if s.fired { return nil }
            s.fired = true
            defer { s.target = nil; s.cleanups = [] }
            return (s.target, s.cleanups)
        }
        guard let (target, cleanups) = taken else { return }
        for c in cleanups { c() }
        target?(value)
    }
}
