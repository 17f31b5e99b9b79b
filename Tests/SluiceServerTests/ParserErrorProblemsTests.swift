import Foundation
@testable import SluiceServer
import Testing

/// Requests the HTTP parser refuses get a problem document, not a bare 400 (issue 17, item 14).
/// They are sent over raw sockets: no HTTP client sends raw UTF-8 in a path.
@Suite struct ParserErrorProblemsTests {
    /// Checks a refusal: its status, `application/problem+json`, a body with `type`, `title` and
    /// `status`, and the connection ending after it.
    static func expectProblem(
        _ request: [UInt8], status: Int, type: String, port: Int, sourceLocation: SourceLocation = #_sourceLocation
    ) async throws {
        let (reply, rest) = try await RawHTTPConnection.with(port: port) { c in
            try await c.send(request)
            return (try await c.response(), try await c.readToEnd())
        }
        #expect(reply.status == status, "\(reply.status) \(reply.text)", sourceLocation: sourceLocation)
        #expect(reply.header("Content-Type") == "application/problem+json", sourceLocation: sourceLocation)
        #expect(reply.header("Connection") == "close", sourceLocation: sourceLocation)
        #expect(reply.json["type"] as? String == "urn:sluice:problem:\(type)", "\(reply.text)", sourceLocation: sourceLocation)
        #expect(reply.json["title"] is String, sourceLocation: sourceLocation)
        #expect(reply.json["status"] as? Int == status, sourceLocation: sourceLocation)
        #expect((reply.json["detail"] as? String)?.isEmpty == false, sourceLocation: sourceLocation)
        #expect(rest.isEmpty, "the server closes the connection after its answer", sourceLocation: sourceLocation)
    }

    static func post(_ target: [UInt8], headers: String = "") -> [UInt8] {
        Array("POST ".utf8) + target
            + Array(" HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n\(headers)Content-Length: 2\r\n\r\n{}".utf8)
    }

    @Test func oversizedHeadersGet431AndBadRequestTargetsA400Problem() async throws {
        try await PushHarness.run([stream("clicks")]) { h in
            let records = Array("/v1/streams/clicks/records".utf8)
            // A 100 KB header (the parser's limit is 80 KB).
            try await Self.expectProblem(
                Self.post(records, headers: "X-Padding: \(String(repeating: "a", count: 100 << 10))\r\n"),
                status: 431, type: "header-fields-too-large", port: h.port)
            // Over 1000 header fields.
            try await Self.expectProblem(
                Self.post(records, headers: (0..<1100).map { "X-F\($0): 1\r\n" }.joined()),
                status: 431, type: "header-fields-too-large", port: h.port)
            // A 100 KB path counts against the same limit: the request line is part of the head.
            try await Self.expectProblem(
                Self.post(Array("/v1/streams/\(String(repeating: "x", count: 100 << 10))/records".utf8)),
                status: 431, type: "header-fields-too-large", port: h.port)
            // Raw UTF-8 in the path ("clické"), not percent-encoded.
            try await Self.expectProblem(
                Self.post(Array("/v1/streams/click".utf8) + [0xC3, 0xA9] + Array("/records".utf8)),
                status: 400, type: "invalid-request-target", port: h.port)
            // Raw UTF-8 in the query.
            try await Self.expectProblem(
                Self.post(records + Array("?q=".utf8) + [0xE2, 0x9C, 0x93]),
                status: 400, type: "invalid-request-target", port: h.port)
            // Not HTTP: a bad method, a control character in a header.
            try await Self.expectProblem(
                Array("P(ST /v1/streams/clicks/records HTTP/1.1\r\nHost: x\r\n\r\n".utf8),
                status: 400, type: "malformed-request", port: h.port)
            try await Self.expectProblem(
                Self.post(records, headers: "X-Bad: a\u{1}b\r\n"), status: 400, type: "malformed-request", port: h.port)
            // The percent-encoded spelling reaches the router and names the stream it did not find.
            let encoded = try await RawHTTPConnection.with(port: h.port) { c in
                try await c.send(Self.post(Array("/v1/streams/click%C3%A9/records".utf8)))
                return try await c.response()
            }
            #expect(encoded.status == 404 && encoded.json["type"] as? String == "urn:sluice:problem:unknown-stream", "\(encoded.text)")
            #expect(try await h.queuedLines("clicks").isEmpty)
        }
    }

    @Test func aRefusedRequestAfterPipelinedOnesIsAnsweredAfterThem() async throws {
        try await PushHarness.run([stream("clicks")]) { h in
            let good = Self.post(Array("/v1/streams/clicks/records".utf8))
            let bad = Self.post(Array("/v1/streams/clicks/records".utf8), headers: "X-Padding: \(String(repeating: "a", count: 100 << 10))\r\n")
            let (first, second, third) = try await RawHTTPConnection.with(port: h.port) { c in
                try await c.send(good + good + bad)
                return (try await c.response(), try await c.response(), try await c.response())
            }
            #expect(first.status == 202 && second.status == 202, "\(first.text) \(second.text)")
            #expect(third.status == 431 && third.header("Content-Type") == "application/problem+json", "\(third.text)")
            #expect(try await h.queuedLines("clicks").count == 2)
        }
    }
}
