import Foundation
import Synchronization

/// A message pulled from a JetStream consumer, with what its ack subject tells.
public struct JetStreamMessage: Sendable {
    public var subject: String
    public var payload: [UInt8]
    public var headers: NATSHeaders?
    /// Where acks go (`$JS.ACK.…`).
    public var ackSubject: String
    public var stream: String
    public var consumer: String
    /// 1 on the first delivery, more on redeliveries.
    public var delivered: Int
    public var streamSequence: UInt64
    public var consumerSequence: UInt64
    /// Messages still pending for the consumer after this one.
    public var pending: UInt64
    /// When the message was stored (nanoseconds since 1970).
    public var timestampNanos: Int64

    /// The delivery count in an ack subject (1 when it cannot be read).
    public static func delivered(ackSubject: String) -> Int {
        guard let t = tokens(ackSubject) else { return 1 }
        return Int(number(t.bytes[t.ranges[t.base + 2]]) ?? 1)
    }

    /// The dot-separated tokens of an ack subject, as byte ranges, and where the stream name is.
    private static func tokens(_ subject: String) -> (bytes: [UInt8], ranges: [Range<Int>], base: Int)? {
        let bytes = Array(subject.utf8)
        var ranges: [Range<Int>] = []
        ranges.reserveCapacity(12)
        var start = 0
        for i in 0..<bytes.count where bytes[i] == 46 {
            ranges.append(start..<i)
            start = i + 1
        }
        ranges.append(start..<bytes.count)
        guard ranges.count >= 2, bytes[ranges[0]].elementsEqual("$JS".utf8), bytes[ranges[1]].elementsEqual("ACK".utf8) else { return nil }
        switch ranges.count {
        case 9: return (bytes, ranges, 2)
        case 11, 12: return (bytes, ranges, 4)
        default: return nil
        }
    }

    private static func number(_ digits: ArraySlice<UInt8>) -> UInt64? {
        guard !digits.isEmpty, digits.count <= 19 else { return nil }
        var v: UInt64 = 0
        for d in digits {
            guard d >= 48 && d <= 57 else { return nil }
            v = v &* 10 &+ UInt64(d - 48)
        }
        return v
    }

    /// Parses `$JS.ACK.<stream>.<consumer>.<delivered>.<sseq>.<cseq>.<ts>.<pending>` (2.9), or the
    /// newer form with `<domain>.<account hash>` after `$JS.ACK` and a trailing token.
    public init?(_ m: NATSInboundMessage) {
        guard let reply = m.replyTo, let (bytes, t, base) = Self.tokens(reply) else { return nil }
        guard let delivered = Self.number(bytes[t[base + 2]]), let sseq = Self.number(bytes[t[base + 3]]),
            let cseq = Self.number(bytes[t[base + 4]]), let ts = Self.number(bytes[t[base + 5]]),
            let pending = Self.number(bytes[t[base + 6]])
        else { return nil }
        subject = m.subject
        payload = m.payload
        headers = m.headers
        ackSubject = reply
        stream = String(decoding: bytes[t[base]], as: UTF8.self)
        consumer = String(decoding: bytes[t[base + 1]], as: UTF8.self)
        self.delivered = Int(delivered)
        streamSequence = sseq
        consumerSequence = cseq
        timestampNanos = Int64(truncatingIfNeeded: ts)
        self.pending = pending
    }
}

/// How a message is settled.
public enum JetStreamAck: Sendable {
    case ack
    /// Redeliver after `delay` (to any worker).
    case nak(delay: Duration)
    /// Never redeliver (a poison message, after it was dead-lettered).
    case term
    /// Still being worked on: restart the ack-wait clock.
    case inProgress

    var body: [UInt8] {
        switch self {
        case .ack: Array("+ACK".utf8)
        case let .nak(delay): Array("-NAK {\"delay\":\(delay.nanoseconds)}".utf8)
        case .term: Array("+TERM".utf8)
        case .inProgress: Array("+WPI".utf8)
        }
    }
}

/// Pulls from a durable consumer that several workers may share.
///
/// One pull request (`$JS.API.CONSUMER.MSG.NEXT`) is open at a time, for up to ``batch``
/// messages of at most ``maxBytes`` in all, and at most ``expires``; pulled messages collect in a buffer that ``fetch(max:)``
/// hands out. A new request goes out only when ``fetch(max:)`` is called and the buffer is low,
/// so a slow pipeline does not pull more than it can hold.
public final class JetStreamPullConsumer: Sendable {
    public let connection: NATSConnection
    public let stream: String
    public let consumer: String
    public let batch: Int
    /// Bytes one pull request brings at most (messages of several records are large).
    public let maxBytes: Int
    public let expires: Duration
    private let inbox: String
    private let sid: UInt64
    private let state: Mutex<State>

    private struct State {
        var buffer: [JetStreamMessage] = []
        var bufferedBytes = 0
        var requestOpen = false
        var requestID = 0
        var remaining = 0
        var waiter: CheckedContinuation<Void, Never>?
        var lastWarning: String?
    }

    public init(
        connection: NATSConnection, stream: String, consumer: String, batch: Int = 2000, maxBytes: Int = 8 << 20,
        expires: Duration = .milliseconds(500)
    ) throws {
        self.connection = connection
        self.stream = stream
        self.consumer = consumer
        self.batch = batch
        // A message larger than a request's budget would never be delivered: leave room for the largest.
        self.maxBytes = max(maxBytes, 2 * (connection.serverInfo?.maxPayload ?? 1 << 20))
        self.expires = expires
        inbox = connection.newInbox()
        let state = Mutex(State())
        self.state = state
        let box = PullBox()
        sid = try connection.subscribe(inbox) { m in box.consumer?.received(m) }
        box.consumer = self
    }

    deinit { connection.unsubscribe(sid) }

    /// A status the server sent that the caller may want to log (409: max ack pending, …).
    public func takeWarning() -> String? {
        state.withLock { s in
            defer { s.lastWarning = nil }; return s.lastWarning
        }
    }

    /// Up to `max` messages: what is buffered, or what arrives within one pull request's expiry.
    /// Returns an empty array when nothing came (or the task was cancelled).
    public func fetch(max: Int) async throws -> [JetStreamMessage] {
        let deadline = ContinuousClock.now + expires + .seconds(1)
        while !Task.isCancelled {
            let request: (id: Int, bytes: [UInt8])? = state.withLock { s in
                guard !s.requestOpen, s.buffer.count < batch / 2, s.bufferedBytes < maxBytes / 2 else { return nil }
                s.requestOpen = true
                s.requestID += 1
                s.remaining = batch
                let body = "{\"batch\":\(batch),\"max_bytes\":\(maxBytes),\"expires\":\(expires.nanoseconds)}"
                var out: [UInt8] = []
                NATSClientOp.publish(
                    subject: "$JS.API.CONSUMER.MSG.NEXT.\(stream).\(consumer)", replyTo: inbox,
                    headers: nil, payload: Array(body.utf8)
                ).encode(into: &out)
                return (s.requestID, out)
            }
            if let request {
                do {
                    try connection.send(request.bytes)
                } catch {
                    state.withLock { $0.requestOpen = false }
                    throw error
                }
                // A request lost with its connection must not block the next one.
                connection.group.next().scheduleTask(in: .nanoseconds((expires + .seconds(2)).nanoseconds)) { [self] in
                    endRequest(request.id)
                }
            }
            // Messages stream in one by one: give a batch a moment to fill before handing
            // out a handful.
            let lingerUntil = ContinuousClock.now + .milliseconds(5)
            while ContinuousClock.now < lingerUntil,
                state.withLock({ !$0.buffer.isEmpty && $0.buffer.count < Swift.min(max, batch) && $0.requestOpen })
            {
                try? await Task.sleep(for: .milliseconds(1))
            }
            let taken: [JetStreamMessage] = state.withLock { s in
                if s.buffer.count <= max {
                    defer { s.buffer = []; s.bufferedBytes = 0 }
                    return s.buffer
                }
                let taken = Array(s.buffer.prefix(max))
                s.buffer.removeFirst(max)
                s.bufferedBytes -= taken.reduce(0) { $0 + $1.payload.count }
                return taken
            }
            if !taken.isEmpty { return taken }
            if ContinuousClock.now >= deadline { return [] }
            await withTaskCancellationHandler {
                await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
                    let ready = state.withLock { s -> Bool in
                        if !s.buffer.isEmpty || !s.requestOpen || Task.isCancelled { return true }
                        s.waiter?.resume()
                        s.waiter = c
                        return false
                    }
                    if ready { c.resume() }
                }
            } onCancel: {
                wake()
            }
        }
        return []
    }

    /// Settles messages (one write for all).
    public func settle(_ subjects: [String], _ ack: JetStreamAck) throws {
        guard !subjects.isEmpty else { return }
        let body = ack.body
        var length = Array(String(body.count).utf8)
        length.append(13)
        length.append(10)
        var out: [UInt8] = []
        out.reserveCapacity(subjects.count * (subjects[0].utf8.count + 12 + body.count))
        for subject in subjects {  // PUB <ack subject> <n>\r\n<body>\r\n
            out += "PUB ".utf8
            out += subject.utf8
            out.append(32)
            out += length
            out += body
            out += [13, 10]
        }
        try connection.send(out)
    }

    /// Messages pulled and not yet handed out (they count against max ack pending).
    public var buffered: Int { state.withLock { $0.buffer.count } }

    /// The ack subjects of messages pulled and not yet handed out (to keep them with `+WPI`).
    public var bufferedSubjects: [String] { state.withLock { $0.buffer.map(\.ackSubject) } }

    /// Empties the buffer, returning the ack subjects of what was pulled and never handed out.
    public func takeBuffered() -> [String] {
        state.withLock { s in
            defer { s.buffer = []; s.bufferedBytes = 0 }
            return s.buffer.map(\.ackSubject)
        }
    }

    private func endRequest(_ id: Int) {
        let ended = state.withLock { s -> Bool in
            guard s.requestOpen, s.requestID == id else { return false }
            s.requestOpen = false
            return true
        }
        if ended { wake() }
    }

    private func wake() {
        let w = state.withLock { s -> CheckedContinuation<Void, Never>? in
            defer { s.waiter = nil }
            return s.waiter
        }
        w?.resume()
    }

    fileprivate func received(_ m: NATSInboundMessage) {
        if let status = m.headers?.status {
            switch status {
            case 100:
                return  // idle heartbeat
            case 404, 408:
                break  // no messages / request expired
            case 409 where m.headers?.statusDescription.contains("MaxBytes") == true:
                break  // the request's byte budget is spent
            default:
                state.withLock { $0.lastWarning = "status \(status) \(m.headers?.statusDescription ?? "")" }
            }
            state.withLock { $0.requestOpen = false }
            wake()
            return
        }
        guard let message = JetStreamMessage(m) else { return }
        let waiter = state.withLock { s -> CheckedContinuation<Void, Never>? in
            s.buffer.append(message)
            s.bufferedBytes += message.payload.count
            s.remaining -= 1
            if s.remaining <= 0 { s.requestOpen = false }
            defer { s.waiter = nil }
            return s.waiter
        }
        waiter?.resume()
    }
}

private final class PullBox: @unchecked Sendable {
    weak var consumer: JetStreamPullConsumer?
}
