import Foundation

/// What a NATS server sends a client (the client protocol, nats-server 2.9).
public enum NATSServerOp: Sendable, Hashable {
    /// `INFO {json}`: on connect and whenever the cluster changes.
    case info([UInt8])
    /// `MSG` / `HMSG`: a message on a subscription.
    case message(NATSInboundMessage)
    case ping
    case pong
    /// `+OK` (verbose mode only).
    case ok
    /// `-ERR 'text'`.
    case error(String)
}

/// A delivered message. `headers` is set for `HMSG` (possibly a status-only header block).
public struct NATSInboundMessage: Sendable, Hashable {
    public var subject: String
    public var sid: UInt64
    public var replyTo: String?
    public var headers: NATSHeaders?
    public var payload: [UInt8]

    public init(subject: String, sid: UInt64, replyTo: String?, headers: NATSHeaders?, payload: [UInt8]) {
        self.subject = subject
        self.sid = sid
        self.replyTo = replyTo
        self.headers = headers
        self.payload = payload
    }
}

/// A NATS header block: `NATS/1.0[ <status>[ <description>]]` and `Key: Value` lines. Keys keep
/// their case (NATS headers are case-sensitive); a key may repeat.
public struct NATSHeaders: Sendable, Hashable {
    /// The status of a status message (`503` no responders, `404` no messages, `408` request
    /// timeout, `409` conflict, `100` idle heartbeat / flow control), nil for plain headers.
    public var status: Int?
    public var statusDescription: String
    public var fields: [(name: String, value: String)]

    public init(status: Int? = nil, statusDescription: String = "", fields: [(name: String, value: String)] = []) {
        self.status = status
        self.statusDescription = statusDescription
        self.fields = fields
    }

    /// The first value of `name`.
    public subscript(name: String) -> String? { fields.first { $0.name == name }?.value }

    public static func == (a: NATSHeaders, b: NATSHeaders) -> Bool {
        a.status == b.status && a.statusDescription == b.statusDescription
            && a.fields.map(\.name) == b.fields.map(\.name) && a.fields.map(\.value) == b.fields.map(\.value)
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(status)
        for f in fields { hasher.combine(f.name); hasher.combine(f.value) }
    }

    /// The wire form, through the blank line that ends it.
    public var encoded: [UInt8] {
        var out = Array("NATS/1.0".utf8)
        if let status { out += Array(" \(status)".utf8); if !statusDescription.isEmpty { out += Array(" \(statusDescription)".utf8) } }
        out += [13, 10]
        for f in fields { out += Array("\(f.name): \(f.value)\r\n".utf8) }
        out += [13, 10]
        return out
    }

    /// Parses a header block (`bytes` runs through the blank line), byte by byte.
    static func parse(_ bytes: ArraySlice<UInt8>) throws -> NATSHeaders {
        let prefix: [UInt8] = Array("NATS/1.0".utf8)
        guard bytes.starts(with: prefix) else {
            throw NATSProtocolError("a header block does not start with NATS/1.0")
        }
        var headers = NATSHeaders()
        var lineStart = bytes.startIndex + prefix.count
        var first = true
        while lineStart < bytes.endIndex {
            var lineEnd = lineStart
            while lineEnd + 1 < bytes.endIndex && !(bytes[lineEnd] == 13 && bytes[lineEnd + 1] == 10) { lineEnd += 1 }
            if lineEnd + 1 >= bytes.endIndex { lineEnd = bytes.endIndex }
            let line = bytes[lineStart..<lineEnd]
            lineStart = lineEnd + 2
            if first {
                first = false
                let rest = line.drop { $0 == 32 || $0 == 9 }
                guard !rest.isEmpty else { continue }
                let code = rest.prefix { $0 >= 48 && $0 <= 57 }
                guard !code.isEmpty, code.count <= 4 else {
                    throw NATSProtocolError("a header status '\(String(decoding: rest, as: UTF8.self))' is not a number")
                }
                headers.status = code.reduce(0) { $0 * 10 + Int($1 - 48) }
                headers.statusDescription = String(decoding: rest.dropFirst(code.count).drop { $0 == 32 || $0 == 9 }, as: UTF8.self)
                continue
            }
            if line.isEmpty { continue }
            guard let colon = line.firstIndex(of: UInt8(ascii: ":")) else {
                throw NATSProtocolError("a header line '\(String(decoding: line, as: UTF8.self))' has no ':'")
            }
            let name = String(decoding: line[line.startIndex..<colon], as: UTF8.self)
            let value = String(decoding: line[(colon + 1)...].drop { $0 == 32 || $0 == 9 }, as: UTF8.self)
            headers.fields.append((name, value))
        }
        return headers
    }
}

/// A violation of the NATS protocol: what was expected and where.
public struct NATSProtocolError: Error, Sendable, Hashable, CustomStringConvertible {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { "NATS protocol error: \(message)" }
}

/// What a client sends, encoded for the wire.
public enum NATSClientOp: Sendable, Hashable {
    case connect(json: String)
    case publish(subject: String, replyTo: String?, headers: NATSHeaders?, payload: [UInt8])
    case subscribe(subject: String, queueGroup: String?, sid: UInt64)
    case unsubscribe(sid: UInt64, max: Int?)
    case ping
    case pong

    public func encode(into out: inout [UInt8]) {
        switch self {
        case let .connect(json):
            out += Array("CONNECT \(json)\r\n".utf8)
        case let .publish(subject, replyTo, headers, payload):
            let reply = replyTo.map { " \($0)" } ?? ""
            if let headers {
                let block = headers.encoded
                out += Array("HPUB \(subject)\(reply) \(block.count) \(block.count + payload.count)\r\n".utf8)
                out += block
            } else {
                out += Array("PUB \(subject)\(reply) \(payload.count)\r\n".utf8)
            }
            out += payload
            out += [13, 10]
        case let .subscribe(subject, queue, sid):
            out += Array("SUB \(subject)\(queue.map { " \($0)" } ?? "") \(sid)\r\n".utf8)
        case let .unsubscribe(sid, max):
            out += Array("UNSUB \(sid)\(max.map { " \($0)" } ?? "")\r\n".utf8)
        case .ping:
            out += Array("PING\r\n".utf8)
        case .pong:
            out += Array("PONG\r\n".utf8)
        }
    }
}
