import SluiceNATS
import Testing
import SluiceTesting

/// The NATS client protocol, byte for byte (forms checked against nats-server 2.9 in the shared notes).
@Suite(.offCooperativePool) struct NATSParserTests {
    func parseAll(_ text: String, chunks: Int? = nil) throws -> [NATSServerOp] {
        var parser = NATSParser()
        var ops: [NATSServerOp] = []
        let bytes = Array(text.utf8)
        let size = chunks ?? bytes.count
        var i = 0
        while i < bytes.count {
            parser.append(bytes[i..<min(bytes.count, i + size)])
            i += size
            while let op = try parser.next() { ops.append(op) }
        }
        #expect(parser.pendingBytes == 0)
        return ops
    }

    static let stream =
        "INFO {\"server_id\":\"N1\",\"max_payload\":1048576,\"headers\":true}\r\n"
        + "PING\r\nPONG\r\n+OK\r\n"
        + "MSG _INBOX.x 1  5\r\nhello\r\n"
        + "MSG events.a 22 _INBOX.r.7 0\r\n\r\n"
        + "HMSG orders 3 $JS.ACK.S.C.1.5.5.1700000000000000000.0 33 36\r\nNATS/1.0\r\nNats-Msg-Id: 0/1A:2\r\n\r\nabc\r\n"
        + "HMSG _INBOX.p.1 9 28 28\r\nNATS/1.0 404 No Messages\r\n\r\n\r\n"
        + "-ERR 'Authorization Violation'\r\n"

    static let expected: [NATSServerOp] = [
        .info(Array("{\"server_id\":\"N1\",\"max_payload\":1048576,\"headers\":true}".utf8)),
        .ping, .pong, .ok,
        .message(NATSInboundMessage(subject: "_INBOX.x", sid: 1, replyTo: nil, headers: nil, payload: Array("hello".utf8))),
        .message(NATSInboundMessage(subject: "events.a", sid: 22, replyTo: "_INBOX.r.7", headers: nil, payload: [])),
        .message(
            NATSInboundMessage(
                subject: "orders", sid: 3, replyTo: "$JS.ACK.S.C.1.5.5.1700000000000000000.0",
                headers: NATSHeaders(fields: [("Nats-Msg-Id", "0/1A:2")]), payload: Array("abc".utf8))),
        .message(
            NATSInboundMessage(
                subject: "_INBOX.p.1", sid: 9, replyTo: nil,
                headers: NATSHeaders(status: 404, statusDescription: "No Messages"), payload: [])),
        .error("Authorization Violation"),
    ]

    @Test func everyServerOperationParses() throws {
        #expect(try parseAll(Self.stream) == Self.expected)
    }

    @Test func anOperationSplitAtAnyByteWaitsForTheRest() throws {
        for size in [1, 2, 3, 7, 13, 64] {
            #expect(try parseAll(Self.stream, chunks: size) == Self.expected, "chunks of \(size)")
        }
    }

    @Test func verbsAreCaseInsensitiveAndFieldsMaySeparateByTabs() throws {
        let ops = try parseAll("msg\tsubj\t\t4 3\r\nabc\r\nping\r\n")
        #expect(ops == [.message(NATSInboundMessage(subject: "subj", sid: 4, replyTo: nil, headers: nil, payload: Array("abc".utf8))), .ping])
    }

    @Test func aStatusMessageCarriesItsHeaders() throws {
        let block = "NATS/1.0 408 Request Timeout\r\nNats-Pending-Messages: 5\r\nNats-Pending-Bytes: 640\r\n\r\n"
        let ops = try parseAll("HMSG _INBOX.p 2 \(block.utf8.count) \(block.utf8.count)\r\n\(block)\r\n")
        guard case let .message(m) = ops.first else { Issue.record("no message"); return }
        #expect(m.headers?.status == 408 && m.headers?.statusDescription == "Request Timeout")
        #expect(m.headers?["Nats-Pending-Messages"] == "5" && m.headers?["Nats-Pending-Bytes"] == "640")
    }

    @Test func violationsThrowWithWhatWasWrong() {
        func fails(_ text: String, _ fragment: String) {
            var parser = NATSParser()
            parser.maxPayload = 100
            parser.append(Array(text.utf8))
            do {
                while try parser.next() != nil {}
                Issue.record("no error for \(text.debugDescription)")
            } catch let e as NATSProtocolError {
                #expect(e.message.contains(fragment), "\(e.message)")
            } catch {
                Issue.record("\(error)")
            }
        }
        fails("NOPE x\r\n", "unknown operation")
        fails("MSG a 1\r\n", "MSG needs")
        fails("MSG a 1 x\r\n", "is not a number")
        fails("MSG a 1 3\r\nabcd\r\n", "not followed by CRLF")
        fails("MSG a 1 101\r\n", "exceeds the limit")
        fails("HMSG a 1 9 5\r\n", "exceeds total size")
        fails("HMSG a 1 5 5\r\nHTTP/\r\n", "NATS/1.0")
        fails("\r\n", "empty control line")
    }

    @Test func anOverlongControlLineIsRefused() {
        var parser = NATSParser()
        parser.maxControlLine = 10
        parser.append(Array("INFO {\"aaaaaaaaaaaaaaaaa".utf8))
        #expect(throws: NATSProtocolError.self) { try parser.next() }
    }

    @Test func clientOperationsEncodeExactly() {
        func encoded(_ op: NATSClientOp) -> String {
            var out: [UInt8] = []
            op.encode(into: &out)
            return String(decoding: out, as: UTF8.self)
        }
        #expect(encoded(.publish(subject: "a.b", replyTo: nil, headers: nil, payload: Array("hi".utf8))) == "PUB a.b 2\r\nhi\r\n")
        #expect(encoded(.publish(subject: "a", replyTo: "_INBOX.1", headers: nil, payload: [])) == "PUB a _INBOX.1 0\r\n\r\n")
        // The header size counts through the blank line; the total adds the payload.
        let headers = NATSHeaders(fields: [("Nats-Msg-Id", "k1")])
        #expect(
            encoded(.publish(subject: "s", replyTo: "r", headers: headers, payload: Array("xyz".utf8)))
                == "HPUB s r 29 32\r\nNATS/1.0\r\nNats-Msg-Id: k1\r\n\r\nxyz\r\n")
        #expect(encoded(.subscribe(subject: "_INBOX.abc.*", queueGroup: nil, sid: 1)) == "SUB _INBOX.abc.* 1\r\n")
        #expect(encoded(.subscribe(subject: "jobs", queueGroup: "workers", sid: 2)) == "SUB jobs workers 2\r\n")
        #expect(encoded(.unsubscribe(sid: 2, max: 1)) == "UNSUB 2 1\r\n")
        #expect(encoded(.connect(json: "{\"verbose\":false}")) == "CONNECT {\"verbose\":false}\r\n")
        #expect(encoded(.ping) == "PING\r\n" && encoded(.pong) == "PONG\r\n")
        // What the client encodes, the parser reads back (as the server would relay it).
        var parser = NATSParser()
        parser.append(Array("HMSG s 1 r 29 32\r\nNATS/1.0\r\nNats-Msg-Id: k1\r\n\r\nxyz\r\n".utf8))
        #expect((try? parser.next()) == .message(NATSInboundMessage(subject: "s", sid: 1, replyTo: "r", headers: headers, payload: Array("xyz".utf8))))
    }
}
