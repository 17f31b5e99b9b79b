import Foundation
import Synchronization

/// Publishes to JetStream with a bounded window of messages awaiting their PubAck.
///
/// Each message goes out as `HPUB <subject> <inbox>.<n>` with a `Nats-Msg-Id`; the PubAck
/// comes back on the publisher's inbox token and is matched by `n`, so thousands of publishes
/// are in flight on one connection. ``publish(subject:messageID:payload:)`` waits while the
/// window is full; ``drain(timeout:)`` returns once every message has its PubAck.
///
/// A message without its PubAck (the connection dropped, the stream leader died, the server
/// answered with an error) is sent again by ``drain(timeout:)`` with the same `Nats-Msg-Id`,
/// so the stream stores it once even when the first copy was stored and only its ack was lost
/// (within the stream's duplicate window).
public final class JetStreamPublisher: Sendable {
    public let connection: NATSConnection
    public let window: Int
    /// How long the publisher waits for acks before it sends the missing messages again.
    public var ackTimeout: Duration { .seconds(3) }
    private let inboxSubject: String
    private let inboxToken: Substring
    private let state: Mutex<State>
    private let onAck: @Sendable (Duration) -> Void

    /// One message to publish. `records` above 1 adds a `Sluice-Records` header: the payload
    /// holds that many NDJSON lines (see `JetStreamSink`). `recordIDs`, when set, is the value
    /// of a `Sluice-Record-Ids` header (the ids of the records it packs).
    public struct Message: Sendable {
        public var subject: String
        public var messageID: String
        public var payload: [UInt8]
        public var records: Int
        public var recordIDs: [UInt8]?

        public init(subject: String, messageID: String, payload: [UInt8], records: Int = 1, recordIDs: [UInt8]? = nil) {
            self.subject = subject
            self.messageID = messageID
            self.payload = payload
            self.records = records
            self.recordIDs = recordIDs
        }
    }

    private struct Pending {
        var subject: String
        var messageID: String
        var payload: [UInt8]
        var records: Int
        var recordIDs: [UInt8]?
        var sentAt: ContinuousClock.Instant
        var error: String?
    }

    private struct State {
        var pending: [UInt64: Pending] = [:]
        var next: UInt64 = 0
        var out: [UInt8] = []
        var waiter: CheckedContinuation<Void, Never>?
        /// The waiter is woken once this few (or fewer) messages await their ack.
        var wakeAt = 0
        var stored: Int64 = 0
        var duplicates: Int64 = 0
        /// The highest stream sequence of a PubAck so far.
        var lastSequence: UInt64 = 0
        var disconnected = false
    }

    /// `onAck` is called with each message's publish-to-ack latency (on an event loop thread).
    public init(connection: NATSConnection, window: Int = 4096, onAck: @escaping @Sendable (Duration) -> Void = { _ in }) {
        self.connection = connection
        self.window = max(1, window)
        self.onAck = onAck
        let state = Mutex(State())
        self.state = state
        let box = HandlerBox()
        (inboxSubject, inboxToken) = connection.registerInbox { event in box.handle(event) }
        box.publisher = self
    }

    deinit { connection.removeInbox(inboxToken) }

    /// Messages stored by the server so far, and how many of those it dropped as repeats.
    public var counts: (stored: Int64, duplicates: Int64) { state.withLock { ($0.stored, $0.duplicates) } }
    public var inFlight: Int { state.withLock { $0.pending.count } }
    /// The highest stream sequence the server acknowledged (0 before the first PubAck): after
    /// ``drain(timeout:)`` every message published so far is at or below it.
    public var lastSequence: UInt64 { state.withLock { $0.lastSequence } }

    /// Queues one message (written in chunks of 64 KB; call ``drain(timeout:)`` to wait for
    /// every ack). Waits while the window is full.
    public func publish(subject: String, messageID: String, payload: [UInt8]) async throws {
        try await publish([(subject, messageID, payload)])
    }

    /// Queues messages in order, as many at a time as the window has room for (one lock and one
    /// write per group). Waits while the window is full.
    public func publish(_ messages: [(subject: String, messageID: String, payload: [UInt8])]) async throws {
        try await publish(messages.map { Message(subject: $0.subject, messageID: $0.messageID, payload: $0.payload) })
    }

    /// Queues messages in order, as many at a time as the window has room for (one lock and one
    /// write per group). Waits while the window is full.
    public func publish(_ messages: [Message]) async throws {
        var next = 0
        while next < messages.count {
            let room = state.withLock { window - $0.pending.count }
            if room <= 0 {
                try flushOut()
                // Resume with room for a quarter of the window, not for one message per ack
                // (which would hand the task between threads once per message).
                let progressed = await waitForAcks(until: window - max(1, window / 4), timeout: ackTimeout)
                if !progressed { try await resendMissing() }
                continue
            }
            let end = min(messages.count, next + room)
            let chunk: [UInt8]? = state.withLock { s in
                let now = ContinuousClock.now
                for m in messages[next..<end] {
                    let n = s.next
                    s.next += 1
                    s.pending[n] = Pending(
                        subject: m.subject, messageID: m.messageID, payload: m.payload, records: m.records, recordIDs: m.recordIDs, sentAt: now)
                    // Growth by doubling, but at least to fit this message: doubling alone would
                    // take a buffer holding a packed message past the allocator's mmap threshold,
                    // and every chunk would be a fresh mapping to fault in.
                    let needed = s.out.count + m.payload.count + (m.recordIDs?.count ?? 0) + m.subject.utf8.count + m.messageID.utf8.count + 128
                    if needed > s.out.capacity { s.out.reserveCapacity(max(needed, 2 * s.out.capacity)) }
                    Self.encode(
                        subject: m.subject, reply: inboxSubject, n: n, messageID: m.messageID, records: m.records,
                        recordIDs: m.recordIDs, payload: m.payload, into: &s.out)
                }
                guard s.out.count >= 64 << 10 else { return nil }
                defer { s.out.removeAll(keepingCapacity: true) }
                return s.out
            }
            next = end
            if let chunk { try? connection.send(chunk) }  // a failed send is resent by drain
        }
    }

    /// Writes what is buffered.
    public func flushOut() throws {
        let chunk: [UInt8]? = state.withLock { s in
            guard !s.out.isEmpty else { return nil }
            defer { s.out.removeAll(keepingCapacity: true) }
            return s.out
        }
        if let chunk { try? connection.send(chunk) }
    }

    /// Waits until every message published so far has its PubAck, sending again those whose
    /// ack did not come within ``ackTimeout``. Throws after `timeout` with the last error.
    public func drain(timeout: Duration) async throws {
        let deadline = ContinuousClock.now + timeout
        try flushOut()
        while true {
            let (empty, errors) = state.withLock { s in (s.pending.isEmpty, s.pending.values.compactMap(\.error)) }
            if empty { return }
            if ContinuousClock.now >= deadline {
                let count = inFlight
                throw JetStreamError.publishFailed(
                    "\(count) message(s) have no PubAck after \(timeout)"
                        + (errors.first.map { "; the server said: \($0)" } ?? "; is the stream's leader up?"))
            }
            let progressed = await waitForAcks(until: 0, timeout: ackTimeout)
            let allFailed = state.withLock { s in !s.pending.isEmpty && s.pending.values.allSatisfy { $0.error != nil } }
            if !progressed || allFailed || state.withLock({ $0.disconnected }) {
                try await resendMissing()
            }
        }
    }

    /// Sends every message still without its ack again (same `Nats-Msg-Id`), once connected.
    private func resendMissing() async throws {
        do {
            try await connection.waitConnected(timeout: .seconds(10))
        } catch NATSError.closed {
            throw NATSError.closed
        } catch {
            return  // still down: the caller's deadline decides
        }
        let out: [UInt8] = state.withLock { s in
            s.disconnected = false
            var out: [UInt8] = []
            for n in s.pending.keys.sorted() {
                s.pending[n]!.error = nil
                s.pending[n]!.sentAt = .now
                let p = s.pending[n]!
                Self.encode(
                    subject: p.subject, reply: inboxSubject, n: n, messageID: p.messageID, records: p.records,
                    recordIDs: p.recordIDs, payload: p.payload, into: &out)
            }
            s.out.removeAll(keepingCapacity: true)
            return out
        }
        if !out.isEmpty { try? connection.send(out) }
    }

    /// Waits until at most `target` messages await their ack, the connection drops, or
    /// `timeout` passes. True when acks arrived meanwhile (progress), false otherwise.
    private func waitForAcks(until target: Int, timeout: Duration) async -> Bool {
        let before = state.withLock { $0.pending.count }
        let deadline = ContinuousClock.now + timeout
        let timer = connection.group.next().scheduleTask(in: .nanoseconds(timeout.nanoseconds)) { [self] in wake() }
        defer { timer.cancel() }
        while true {
            await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
                let ready = state.withLock { s -> Bool in
                    if s.pending.count <= target || s.disconnected { return true }
                    s.waiter?.resume()
                    s.waiter = c
                    s.wakeAt = target
                    return false
                }
                if ready { c.resume() }
            }
            let (count, disconnected) = state.withLock { ($0.pending.count, $0.disconnected) }
            if count <= target { return count < before }
            if disconnected || ContinuousClock.now >= deadline { return count < before }
        }
    }

    private func wake() {
        let w = state.withLock { s -> CheckedContinuation<Void, Never>? in
            defer { s.waiter = nil }
            return s.waiter
        }
        w?.resume()
    }

    fileprivate func handle(_ event: NATSConnection.InboxEvent) {
        switch event {
        case .disconnected:
            state.withLock { $0.disconnected = true }
            wake()
        case let .message(m):
            // The reply subject ends in `.<n>`: read n from the bytes, backwards.
            var n: UInt64 = 0, scale: UInt64 = 1, digits = 0
            for byte in m.subject.utf8.reversed() {
                guard byte != UInt8(ascii: ".") else { break }
                guard byte >= 48 && byte <= 57, digits < 19 else { return }
                n += UInt64(byte - 48) * scale
                scale &*= 10
                digits += 1
            }
            guard digits > 0 else { return }
            let error: String? =
                if let status = m.headers?.status, status >= 300 {
                    "status \(status) \(m.headers?.statusDescription ?? "")"
                        + (status == 503 ? " (no stream takes this subject, or its leader is being elected)" : "")
                } else if let range = Self.find(Self.errorField, in: m.payload) {
                    String(decoding: m.payload[range...].prefix(300), as: UTF8.self)
                } else {
                    nil
                }
            let duplicate =
                Self.find(Self.duplicateField, in: m.payload).map {
                    m.payload[($0 + Self.duplicateField.count)...].drop(while: { $0 == 58 || $0 == 32 }).starts(with: "true".utf8)
                } ?? false
            let sequence = Self.find(Self.sequenceField, in: m.payload).map { start in
                m.payload[(start + Self.sequenceField.count)...].drop(while: { $0 == 58 || $0 == 32 }).prefix(while: { $0 >= 48 && $0 <= 57 })
                    .reduce(UInt64(0)) { $0 &* 10 &+ UInt64($1 - 48) }
            }
            let (latency, waiter) = state.withLock { s -> (Duration?, CheckedContinuation<Void, Never>?) in
                // The waiter wakes at its mark (an error ack keeps its message pending: drain
                // sends it again when its wait ends without progress).
                func takeWaiter() -> CheckedContinuation<Void, Never>? {
                    guard s.pending.count <= s.wakeAt else { return nil }
                    defer { s.waiter = nil }
                    return s.waiter
                }
                guard let p = s.pending[n] else { return (nil, takeWaiter()) }
                if let error {
                    s.pending[n]!.error = error
                    return (nil, takeWaiter())
                }
                s.pending.removeValue(forKey: n)
                s.stored += 1
                if let sequence { s.lastSequence = max(s.lastSequence, sequence) }
                if duplicate { s.duplicates += 1 }
                return (ContinuousClock.now - p.sentAt, takeWaiter())
            }
            if let latency { onAck(latency) }
            waiter?.resume()
        }
    }

    static func encode(
        subject: String, reply: String, n: UInt64, messageID: String, records: Int = 1, recordIDs: [UInt8]? = nil, payload: [UInt8],
        into out: inout [UInt8]
    ) {
        // HPUB <subject> <reply>.<n> <hdr> <total>\r\nNATS/1.0\r\nNats-Msg-Id: <id>\r\n[Sluice-Records: <k>\r\n]
        // [Sluice-Record-Ids: <ids>\r\n]\r\n<payload>\r\n
        var headerLength = 10 + 13 + messageID.utf8.count + 2 + 2
        if records > 1 { headerLength += 16 + decimalLength(records) + 2 }
        if let recordIDs { headerLength += 19 + recordIDs.count + 2 }
        out += "HPUB ".utf8
        out += subject.utf8
        out.append(32)
        out += reply.utf8
        out.append(UInt8(ascii: "."))
        appendDecimal(Int(n), to: &out)
        out.append(32)
        appendDecimal(headerLength, to: &out)
        out.append(32)
        appendDecimal(headerLength + payload.count, to: &out)
        out += "\r\nNATS/1.0\r\nNats-Msg-Id: ".utf8
        out += messageID.utf8
        if records > 1 {
            out += "\r\nSluice-Records: ".utf8
            appendDecimal(records, to: &out)
        }
        if let recordIDs {
            out += "\r\nSluice-Record-Ids: ".utf8
            out += recordIDs
        }
        out += "\r\n\r\n".utf8
        out += payload
        out += [13, 10]
    }

    static func appendDecimal(_ value: Int, to out: inout [UInt8]) {
        if value < 10 { out.append(UInt8(48 + value)); return }
        // Digits appended least significant first, then reversed in place (no allocation).
        let start = out.count
        var v = value
        while v > 0 { out.append(UInt8(48 + v % 10)); v /= 10 }
        out[start...].reverse()
    }

    static func decimalLength(_ value: Int) -> Int {
        var digits = 1, v = value
        while v >= 10 { v /= 10; digits += 1 }
        return digits
    }

    static let errorField = Array("\"error\"".utf8)
    static let duplicateField = Array("\"duplicate\"".utf8)
    static let sequenceField = Array("\"seq\"".utf8)

    static func find(_ needle: [UInt8], in haystack: [UInt8]) -> Int? {
        guard haystack.count >= needle.count else { return nil }
        for i in 0...(haystack.count - needle.count) where haystack[i] == needle[0] {
            if haystack[i..<(i + needle.count)].elementsEqual(needle) { return i }
        }
        return nil
    }
}

/// Lets the inbox handler reach the publisher without a retain cycle at init time.
private final class HandlerBox: @unchecked Sendable {
    weak var publisher: JetStreamPublisher?
    func handle(_ event: NATSConnection.InboxEvent) { publisher?.handle(event) }
}
