import Foundation
import SluiceCore
@testable import SluiceServer
import Testing

/// The memory budget of request bodies against uploads whose sender is not known yet: stalled
/// or flooding, they must not make requests with a valid API key get 503 (issue 17, item 12).
/// Every upload here goes over a raw socket, so its body can stop half-way.
@Suite struct PushMemoryBudgetTests {
    static let secret = "0123456789abcdef0123456789abcdef"

    static func streams(maxBody: Int = 10 << 20) -> [PushStream] {
        [
            stream("hooks") {
                $0.auth = .hmac; $0.hmac = HMACOptions(secret: secret); $0.maxBody = maxBody
            },
            stream("orders", pipeline: "q") {
                $0.auth = .apiKey; $0.maxBody = maxBody
            },
        ]
    }

    /// The head of a chunked `POST` to `stream`, with `headers`.
    static func chunkedHead(_ stream: String, _ headers: [String]) -> String {
        "POST /v1/streams/\(stream)/records HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            + "Transfer-Encoding: chunked\r\n" + headers.map { $0 + "\r\n" }.joined() + "\r\n"
    }

    /// Headers of a webhook whose signature is wrong (it is only found out once the body is in).
    static var unsigned: [String] { ["X-Sluice-Timestamp: \(Int(Date().timeIntervalSince1970))", "X-Sluice-Signature: sha256=00"] }

    /// A JSON array of records of about `size` bytes.
    static func records(_ size: Int) -> [UInt8] {
        let record = #"{"n": 1, "pad": "\#(String(repeating: "x", count: 90))"}"#
        return Array(("[" + Array(repeating: record, count: max(1, size / 101)).joined(separator: ",") + "]").utf8)
    }

    /// Sends a chunked request with a valid API key for `orders` and reads its answer.
    static func postOrders(port: Int, key: String, _ body: [UInt8]) async throws -> RawHTTPConnection.Response {
        try await RawHTTPConnection.with(port: port) { c in
            try await c.send(chunkedHead("orders", ["Authorization: Bearer \(key)"]))
            let half = body.count / 2
            try await c.send(chunk(Array(body[..<half])) + chunk(Array(body[half...])) + Array("0\r\n\r\n".utf8))
            return try await c.response()
        }
    }

    @Test func stalledUnsignedChunkedUploadsDoNotMakeAnAPIKeyStreamAnswer503() async throws {
        // Default budget (64 MB) and max_body (10 MB): a chunked body used to reserve 2 × max_body
        // before its signature could be checked, so three stalled uploads held 60 MB.
        let intake = PushIntake()
        var settings = PushServer.Settings()
        settings.bodyTimeout = .seconds(3600)  // the stalled uploads outlive the test, however loaded the machine
        settings.idleTimeout = .seconds(3600)
        try await PushHarness.run(Self.streams(), settings: settings, intake: intake) { h in
            let (key, stored) = APIKeyFormat.generate(name: "shop", streams: ["orders"])
            try await h.store.createAPIKey(stored)
            try await withThrowingTaskGroup(of: Void.self) { group in
                for _ in 0..<3 {
                    group.addTask {
                        try await RawHTTPConnection.with(port: h.port) { c in
                            try await c.send(Self.chunkedHead("hooks", Self.unsigned))
                            try await c.send(chunk(Array(#"[{"n": 1},"#.utf8)))
                            // Stalls: no answer comes until the test ends the connection.
                            _ = try? await c.response()
                        }
                    }
                }
                #expect(try await waitFor { intake.inflight == 3 }, "the three uploads are being read")
                let reply = try await Self.postOrders(port: h.port, key: key, Array(#"[{"id": 1}, {"id": 2}]"#.utf8))
                #expect(reply.status == 202, "\(reply.status) \(reply.text)")
                #expect(intake.inflight == 3, "the stalled uploads are still waiting")
                group.cancelAll()
            }
            #expect(try await h.queuedLines("orders").count == 2)
            #expect(try await h.queuedLines("hooks").isEmpty)
        }
    }

    @Test func unverifiedBodiesDrawOnTheirShareOnlyAndAreChargedAsTheyArrive() async throws {
        let budget = InflightBudget(limit: 1 << 20, anonymousLimit: 256 << 10)
        // The stalled upload must outlive the test, however loaded the machine: a 30 s body
        // timeout ended it mid-test once, and the 60 s idle timeout another time (its budget
        // came back, and the next upload was read).
        var settings = PushServer.Settings()
        settings.bodyTimeout = .seconds(3600)
        settings.idleTimeout = .seconds(3600)
        try await PushHarness.run(Self.streams(maxBody: 1 << 20), settings: settings, inflight: budget) { h in
            let (key, stored) = APIKeyFormat.generate(name: "shop", streams: ["orders"])
            try await h.store.createAPIKey(stored)
            let part = Array(repeating: UInt8(ascii: " "), count: 120 << 10)
            try await withThrowingTaskGroup(of: Void.self) { group in
                // One unsigned upload sends 120 KB and stalls: it holds twice what it sent, no more.
                group.addTask {
                    try await RawHTTPConnection.with(port: h.port) { c in
                        try await c.send(Self.chunkedHead("hooks", Self.unsigned))
                        try await c.send(chunk(part))
                        _ = try? await c.response()
                    }
                }
                #expect(try await waitFor { budget.usage == .init(total: 240 << 10, anonymous: 240 << 10) }, "\(budget.usage)")
                // More unsigned uploads do not fit in the share of unverified bodies: 503 as they send.
                for _ in 0..<3 {
                    let refused = try await RawHTTPConnection.with(port: h.port) { c in
                        try await c.send(Self.chunkedHead("hooks", Self.unsigned))
                        try await c.send(chunk(part))
                        return try await c.response()
                    }
                    #expect(refused.status == 503, "\(refused.status) \(refused.text)")
                    #expect(refused.json["type"] as? String == "urn:sluice:problem:busy")
                    #expect(refused.header("Retry-After") == "1")
                }
                #expect(budget.usage.anonymous == 240 << 10, "the refused uploads gave back what they held")
                // The API key's request has the rest of the budget: 2 × 150 KB for its body, and its payload.
                let reply = try await Self.postOrders(port: h.port, key: key, Self.records(150 << 10))
                #expect(reply.status == 202, "\(reply.status) \(reply.text)")
                group.cancelAll()
            }
            // Alone, a correctly signed body may hold more than the share (its max_body bounds it).
            #expect(try await waitFor { budget.usage == .init() }, "\(budget.usage)")
            let body = Self.records(250 << 10)
            let now = Int(Date().timeIntervalSince1970)
            let signed = try await h.post(
                "hooks", body,
                headers: [("X-Sluice-Timestamp", "\(now)"), ("X-Sluice-Signature", WebhookSignature.sign(body: body, timestamp: now, secret: Self.secret))])
            #expect(signed.status == 202, "\(signed.status) \(signed.body)")
            #expect(budget.usage == .init(), "everything was given back")
        }
    }
}
