import Foundation

/// Parses what a NATS server sends, incrementally: bytes go in as they arrive (``append(_:)``),
/// complete operations come out (``next()``). A pure state machine over a byte buffer: an
/// operation split anywhere (inside the control line, the header block or the payload) waits
/// for the rest; nothing is copied until an operation is complete.
///
/// Control lines end in CRLF; fields are separated by one or more spaces or tabs (the server
/// writes `MSG subj 1  25` with two spaces when there is no reply subject); verbs are
/// case-insensitive. `MSG <subject> <sid> [reply] <bytes>` and
/// `HMSG <subject> <sid> [reply] <header bytes> <total bytes>` are followed by that many bytes and
/// CRLF.
public struct NATSParser: Sendable {
    var buffer: [UInt8] = []
    var start = 0
    /// The longest control line accepted (an `INFO` with many cluster URLs stays far below).
    public var maxControlLine = 64 << 10
    /// The largest payload accepted (the server's `max_payload` is 1 MiB by default).
    public var maxPayload = 64 << 20

    public init() {}

    /// Bytes received from the server.
    public mutating func append<C: Collection>(_ bytes: C) where C.Element == UInt8 {
        if start > 0 && start == buffer.count {
            buffer.removeAll(keepingCapacity: true)
            start = 0
        } else if start > 1 << 16 && start * 2 > buffer.count {
            buffer.removeSubrange(0..<start)
            start = 0
        }
        buffer.append(contentsOf: bytes)
    }

    /// Bytes received but not yet parsed into an operation.
    public var pendingBytes: Int { buffer.count - start }

    /// The next complete operation, or nil until more bytes arrive. Throws on a protocol
    /// violation (the connection cannot be trusted after that).
    public mutating func next() throws -> NATSServerOp? {
        guard let lineEnd = findCRLF(from: start) else {
            if buffer.count - start > maxControlLine { throw NATSProtocolError("a control line is longer than \(maxControlLine) bytes") }
            return nil
        }
        let line = buffer[start..<lineEnd]
        let fields = Self.split(line)
        guard let verb = fields.first else { throw NATSProtocolError("an empty control line") }
        switch Self.verb(verb) {
        case "PING":
            start = lineEnd + 2
            return .ping
        case "PONG":
            start = lineEnd + 2
            return .pong
        case "+OK":
            start = lineEnd + 2
            return .ok
        case "-ERR":
            start = lineEnd + 2
            let text = String(decoding: line.dropFirst(4), as: UTF8.self).trimmingCharacters(in: .whitespaces)
            return .error(text.count >= 2 && text.hasPrefix("'") && text.hasSuffix("'") ? String(text.dropFirst().dropLast()) : text)
        case "INFO":
            start = lineEnd + 2
            let json = line.dropFirst(4).drop { $0 == 32 || $0 == 9 }
            return .info(Array(json))
        case "MSG":
            guard fields.count == 4 || fields.count == 5 else {
                throw NATSProtocolError("MSG needs subject, sid, [reply,] size: '\(String(decoding: line, as: UTF8.self))'")
            }
            let size = try Self.number(fields.last!, "MSG size")
            return try message(fields: fields, lineEnd: lineEnd, headerSize: nil, totalSize: size)
        case "HMSG":
            guard fields.count == 5 || fields.count == 6 else {
                throw NATSProtocolError("HMSG needs subject, sid, [reply,] header size, total size: '\(String(decoding: line, as: UTF8.self))'")
            }
            let headerSize = try Self.number(fields[fields.count - 2], "HMSG header size")
            let total = try Self.number(fields.last!, "HMSG total size")
            guard headerSize <= total else { throw NATSProtocolError("HMSG header size \(headerSize) exceeds total size \(total)") }
            return try message(fields: fields, lineEnd: lineEnd, headerSize: headerSize, totalSize: total)
        default:
            throw NATSProtocolError("unknown operation '\(String(decoding: verb.prefix(16), as: UTF8.self))'")
        }
    }

    mutating func message(fields: [ArraySlice<UInt8>], lineEnd: Int, headerSize: Int?, totalSize: Int) throws -> NATSServerOp? {
        guard totalSize <= maxPayload else { throw NATSProtocolError("a message of \(totalSize) bytes exceeds the limit of \(maxPayload)") }
        let body = lineEnd + 2
        guard buffer.count >= body + totalSize + 2 else { return nil }  // wait for the rest
        guard buffer[body + totalSize] == 13, buffer[body + totalSize + 1] == 10 else {
            throw NATSProtocolError("a message's \(totalSize) bytes are not followed by CRLF")
        }
        let subject = String(decoding: fields[1], as: UTF8.self)
        let sid = try UInt64(Self.number(fields[2], "sid"))
        let hasReply = fields.count == (headerSize == nil ? 5 : 6)
        let replyTo = hasReply ? String(decoding: fields[3], as: UTF8.self) : nil
        var headers: NATSHeaders?
        var payloadStart = body
        if let headerSize {
            headers = try NATSHeaders.parse(buffer[body..<(body + headerSize)])
            payloadStart = body + headerSize
        }
        let payload = Array(buffer[payloadStart..<(body + totalSize)])
        start = body + totalSize + 2
        return .message(NATSInboundMessage(subject: subject, sid: sid, replyTo: replyTo, headers: headers, payload: payload))
    }

    func findCRLF(from index: Int) -> Int? {
        var i = index
        let end = buffer.count - 1
        while i < end {
            if buffer[i] == 13 && buffer[i + 1] == 10 { return i }
            i += 1
        }
        return nil
    }

    /// Fields separated by runs of spaces and tabs.
    static func split(_ line: ArraySlice<UInt8>) -> [ArraySlice<UInt8>] {
        var fields: [ArraySlice<UInt8>] = []
        var i = line.startIndex
        while i < line.endIndex {
            while i < line.endIndex && (line[i] == 32 || line[i] == 9) { i += 1 }
            let begin = i
            while i < line.endIndex && line[i] != 32 && line[i] != 9 { i += 1 }
            if begin < i { fields.append(line[begin..<i]) }
            // INFO and -ERR carry free text: only their verb matters here.
            if fields.count == 1 && (fields[0].first == UInt8(ascii: "I") || fields[0].first == UInt8(ascii: "i") || fields[0].first == UInt8(ascii: "-")),
                verb(fields[0]) == "INFO" || verb(fields[0]) == "-ERR"
            {
                break
            }
        }
        return fields
    }

    static func upper(_ field: ArraySlice<UInt8>) -> String {
        String(decoding: field.map { $0 >= 97 && $0 <= 122 ? $0 - 32 : $0 }, as: UTF8.self)
    }

    /// The verb, upper-cased, from a static table (no allocation for the ones the server sends).
    static func verb(_ field: ArraySlice<UInt8>) -> String {
        @inline(__always) func matches(_ word: StaticString) -> Bool {
            guard field.count == word.utf8CodeUnitCount else { return false }
            return word.withUTF8Buffer { w in
                var i = field.startIndex
                for c in w {
                    let b = field[i]
                    if (b >= 97 && b <= 122 ? b - 32 : b) != c { return false }
                    i += 1
                }
                return true
            }
        }
        if matches("MSG") { return "MSG" }
        if matches("HMSG") { return "HMSG" }
        if matches("PING") { return "PING" }
        if matches("PONG") { return "PONG" }
        if matches("+OK") { return "+OK" }
        if matches("-ERR") { return "-ERR" }
        if matches("INFO") { return "INFO" }
        return upper(field)
    }

    static func number(_ field: ArraySlice<UInt8>, _ what: String) throws -> Int {
        guard !field.isEmpty, field.count <= 18, field.allSatisfy({ $0 >= 48 && $0 <= 57 }) else {
            throw NATSProtocolError("\(what) '\(String(decoding: field.prefix(20), as: UTF8.self))' is not a number")
        }
        return field.reduce(0) { $0 * 10 + Int($1 - 48) }
    }
}
