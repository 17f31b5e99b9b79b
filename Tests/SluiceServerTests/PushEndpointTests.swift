import AsyncHTTPClient
import Foundation
import SluiceCore
@testable import SluiceServer
import SluiceStateSQLite
import Testing

@Suite struct PushEndpointTests {
    @Test func acceptsAnObjectAnArrayNDJSONAndGzip() async throws {
        try await PushHarness.run([stream()]) { h in
            let one = try await h.post("s", #"{"id": 1}"#)
            #expect(one.status == 202)
            #expect(one.json["accepted"] as? Int == 1)
            #expect(one.headers.first(name: "X-Request-Id") == one.json["request_id"] as? String)
            #expect(try await h.post("s", #"[{"id": 2}, {"id": 3}]"#).status == 202)
            #expect(try await h.post("s", "{\"id\": 4}\n{\"id\": 5}\n", contentType: "application/x-ndjson").status == 202)
            let gz = try gzipped(Array("{\"id\": 6}\n{\"id\": 7}".utf8))
            let zipped = try await h.post("s", gz, contentType: "application/x-ndjson; charset=utf-8", headers: [("Content-Encoding", "gzip")])
            #expect(zipped.status == 202)
            let lines = try await h.queuedLines()
            #expect(lines.count == 7)
            #expect(lines.allSatisfy { $0.hasPrefix("{\"received_at\":\"20") && !$0.contains("\n") })
            #expect(lines.last!.hasSuffix("\"id\": 7}"))
            #expect(try await h.store.backlog(stream: "s") == PushBacklog(requests: 4, records: 7, bytes: lines.map { $0.utf8.count + 1 }.reduce(0, +)))
        }
    }

    @Test func malformedAndUnacceptableBodiesGetTheRight4xxAndAreNotIngested() async throws {
        try await PushHarness.run([
            stream {
                $0.maxBody = 4096; $0.limits.maxRecords = 3; $0.limits.maxDepth = 8
            }
        ]) { h in
            func check(_ status: Int, _ slug: String, _ reply: PushHarness.Reply, sourceLocation: SourceLocation = #_sourceLocation) {
                #expect(reply.status == status, "\(reply.body)", sourceLocation: sourceLocation)
                #expect(reply.headers.first(name: "Content-Type") == "application/problem+json", sourceLocation: sourceLocation)
                #expect(reply.json["type"] as? String == "urn:sluice:problem:\(slug)", "\(reply.body)", sourceLocation: sourceLocation)
                #expect(reply.json["status"] as? Int == status, sourceLocation: sourceLocation)
                #expect((reply.json["detail"] as? String)?.isEmpty == false, sourceLocation: sourceLocation)
            }
            check(400, "malformed-json", try await h.post("s", #"{"id": 1"#))
            check(400, "malformed-json", try await h.post("s", #"[{"id": 1}, {"id": ]"#))
            check(400, "invalid-utf8", try await h.post("s", Array(#"{"id": ""#.utf8) + [0xFF, 0xFE] + Array(#""}"#.utf8)))
            check(400, "too-deep", try await h.post("s", "{\"a\":" + String(repeating: "[", count: 20) + String(repeating: "]", count: 20) + "}"))
            check(400, "not-an-object", try await h.post("s", "42"))
            check(400, "malformed-record", try await h.post("s", "[1, 2]"))
            check(400, "empty-body", try await h.post("s", ""))
            check(400, "malformed-record", try await h.post("s", "{\"id\":1}\n{\"id\":\n", contentType: "application/x-ndjson"))
            check(413, "body-too-large", try await h.post("s", "[" + String(repeating: "{\"id\": 1},", count: 500) + "{}]"))
            check(413, "too-many-records", try await h.post("s", "[{},{},{},{}]"))
            check(415, "unsupported-media-type", try await h.post("s", #"{"id": 1}"#, contentType: "text/plain"))
            check(415, "unsupported-media-type", try await h.post("s", #"{"id": 1}"#, contentType: nil))
            check(415, "unsupported-charset", try await h.post("s", #"{"id": 1}"#, contentType: "application/json; charset=latin1"))
            check(415, "unsupported-encoding", try await h.post("s", #"{"id": 1}"#, headers: [("Content-Encoding", "br")]))
            check(400, "invalid-gzip", try await h.post("s", #"{"id": 1}"#, headers: [("Content-Encoding", "gzip")]))
            check(
                413, "body-too-large",
                try await h.post(
                    "s", try gzipped(Array(("[" + String(repeating: "{},", count: 3000) + "{}]").utf8)),
                    headers: [("Content-Encoding", "gzip")]))
            check(400, "invalid-idempotency-key", try await h.post("s", #"{"id": 1}"#, headers: [("Idempotency-Key", "has space")]))
            check(404, "unknown-stream", try await h.post("nope", #"{"id": 1}"#))
            #expect(try await h.queuedLines().isEmpty, "nothing answered 4xx is ingested")
            #expect(try await h.store.deadLetterCount(pipeline: nil) == 0)
        }
    }

    @Test func schemaViolationsAre422NamingRecordAndField() async throws {
        let s = stream { $0.fields = [Field("id", .int64, nullable: false), Field("ts", .timestamp)] }
        try await PushHarness.run([s]) { h in
            let r = try await h.post("s", #"[{"id": 1}, {"id": "one"}, {"ts": "2026-11-26T00:00:00Z"}]"#)
            #expect(r.status == 422)
            #expect(r.json["type"] as? String == "urn:sluice:problem:schema-violation")
            let errors = r.json["errors"] as? [[String: Any]] ?? []
            #expect(errors.count == 2)
            #expect(errors.first?["record"] as? Int == 1 && errors.first?["field"] as? String == "id")
            #expect(errors.first?["kind"] as? String == "type_mismatch")
            #expect(errors.last?["record"] as? Int == 2 && errors.last?["kind"] as? String == "missing_field")
            #expect(try await h.queuedLines().isEmpty)
        }
    }

    @Test func deadLetterModeAcceptsValidRecordsAndListsTheRest() async throws {
        let s = stream {
            $0.fields = [Field("id", .int64, nullable: false)]; $0.onInvalid = .deadLetter
        }
        try await PushHarness.run([s]) { h in
            let r = try await h.post("s", "{\"id\":1}\n{\"id\":\"x\"}\n{broken\n{\"id\":4}\n", contentType: "application/x-ndjson")
            #expect(r.status == 202)
            #expect(r.json["accepted"] as? Int == 2)
            let rejected = r.json["rejected"] as? [[String: Any]] ?? []
            #expect(rejected.map { $0["record"] as? Int } == [1, 2])
            #expect(try await h.queuedLines().count == 2)
            let letters = try await h.store.deadLetters(pipeline: "p", limit: 10)
            #expect(letters.count == 2)
            let requestID = r.json["request_id"] as! String
            #expect(letters.map(\.letter.location).sorted() == ["http:s/\(requestID)#1", "http:s/\(requestID)#2"])
            #expect(letters.contains { $0.letter.raw == Array("{broken".utf8) && $0.letter.errorKind == "malformed_json" })
            // All records invalid: nothing to accept, so the request is refused as a whole.
            #expect(try await h.post("s", #"{"id": "no"}"#).status == 422)
        }
    }

    @Test func idempotencyKeyRepeatedConcurrentlyIngestsOnceWithOneAnswer() async throws {
        let counted = CountingQueue()
        try await PushHarness.run([stream()], queue: { counted.make($0) }) { h in
            let body = #"[{"n": 1}, {"n": 2}]"#
            let client = wideClient(100)
            let replies: [PushHarness.Reply]
            do {
                replies = try await withThrowingTaskGroup(of: PushHarness.Reply.self) { group in
                    for _ in 0..<100 { group.addTask { try await h.post("s", body, headers: [("Idempotency-Key", "order-42")], client: client) } }
                    return try await group.reduce(into: []) { $0.append($1) }
                }
            } catch {
                // A client must be shut down before it is released, also when a request failed.
                try? await client.shutdown()
                throw error
            }
            try await client.shutdown()
            #expect(counted.queue?.submitted == 1, "concurrent repeats wait for the first instead of writing")
            #expect(replies.count == 100)
            #expect(replies.allSatisfy { $0.status == 202 })
            #expect(Set(replies.map(\.body)).count == 1, "every repeat gets the first answer")
            #expect(replies.filter { $0.headers.first(name: "Idempotent-Replayed") == nil }.count == 1)
            #expect(try await h.queuedLines().count == 2, "ingested once")
            // Later repeats replay from the store; a different body under the same key is refused.
            let again = try await h.post("s", body, headers: [("Idempotency-Key", "order-42")])
            #expect(again.status == 202 && again.body == replies[0].body)
            #expect(again.headers.first(name: "Idempotent-Replayed") == "true")
            let other = try await h.post("s", #"[{"n": 3}]"#, headers: [("Idempotency-Key", "order-42")])
            #expect(other.status == 422)
            #expect(other.json["type"] as? String == "urn:sluice:problem:idempotency-key-reused")
            #expect(try await h.queuedLines().count == 2)
            // The same key on another stream is another request.
        }
    }

    @Test func idempotencyKeysBelongToOneCredential() async throws {
        try await PushHarness.run([stream { $0.auth = .apiKey }]) { h in
            let (k1, s1) = APIKeyFormat.generate(name: "one", streams: ["*"])
            let (k2, s2) = APIKeyFormat.generate(name: "two", streams: ["*"])
            try await h.store.createAPIKey(s1)
            try await h.store.createAPIKey(s2)
            let a = try await h.post("s", #"{"n": 1}"#, headers: [("X-API-Key", k1), ("Idempotency-Key", "same")])
            let b = try await h.post("s", #"{"n": 2}"#, headers: [("X-API-Key", k2), ("Idempotency-Key", "same")])
            #expect(a.status == 202 && b.status == 202, "another client's key neither replays nor conflicts")
            #expect(b.headers.first(name: "Idempotent-Replayed") == nil)
            #expect(try await h.queuedLines().count == 2)
        }
    }

    @Test func expiredIdempotencyKeysNoLongerMatchAndAreSwept() async throws {
        try await PushHarness.run([stream { $0.idempotencyTTL = .seconds(1) }]) { h in
            #expect(try await h.post("s", #"{"n": 1}"#, headers: [("Idempotency-Key", "k")]).status == 202)
            try await Task.sleep(for: .milliseconds(1100))
            let later = try await h.post("s", #"{"n": 2}"#, headers: [("Idempotency-Key", "k")])
            #expect(later.status == 202 && later.headers.first(name: "Idempotent-Replayed") == nil)
            #expect(try await h.queuedLines().count == 2)
            #expect(try await h.store.sweepIdempotencyKeys(before: Date().addingTimeInterval(1)) == 1)
        }
    }

    @Test func apiKeysAuthenticateAndScopeStreams() async throws {
        let streams = [stream("a") { $0.auth = .apiKey }, stream("b", pipeline: "q") { $0.auth = .apiKey }]
        try await PushHarness.run(streams) { h in
            let (keyA, storedA) = APIKeyFormat.generate(name: "svc", streams: ["a"])
            try await h.store.createAPIKey(storedA)
            let secret = Array(keyA.split(separator: "_").last!.utf8)
            let files = ["state.db", "state.db-wal"].compactMap { FileManager.default.contents(atPath: "\(h.directory)/\($0)") }
            #expect(!files.isEmpty)
            #expect(!files.contains { Array($0).firstRange(of: secret) != nil }, "the secret is not stored, only its hash")
            let body = #"{"id": 1}"#
            for reply in [
                try await h.post("a", body),
                try await h.post("a", body, headers: [("Authorization", "Bearer nonsense")]),
                try await h.post("a", body, headers: [("Authorization", "Bearer \(keyA)x")]),
                try await h.post("a", body, headers: [("Authorization", "Bearer slk_unknown_secret")]),
            ] {
                #expect(reply.status == 401)
                #expect(reply.json["detail"] as? String == "authentication failed", "no detail that helps an attacker")
                #expect(reply.headers.first(name: "WWW-Authenticate") != nil)
            }
            #expect(try await h.post("a", body, headers: [("Authorization", "Bearer \(keyA)")]).status == 202)
            #expect(try await h.post("a", body, headers: [("X-API-Key", keyA)]).status == 202)
            #expect(try await h.post("b", body, headers: [("Authorization", "Bearer \(keyA)")]).status == 403)
            #expect(try await h.post("a", "{bad", headers: [("X-API-Key", keyA)]).status == 400)
            #expect(try await h.post("a", "{bad").status == 401, "credentials are checked before the body")
            #expect(try await h.store.revokeAPIKey(id: storedA.id, at: Date()))
            try await Task.sleep(for: .milliseconds(2100))
            #expect(try await h.post("a", body, headers: [("Authorization", "Bearer \(keyA)")]).status == 401, "revocation takes effect")
            #expect(try await h.queuedLines("a").count == 2)
            #expect(try await h.queuedLines("b").isEmpty)
        }
    }

    @Test func hmacSignedWebhooks() async throws {
        let secret = "0123456789abcdef0123456789abcdef"
        try await PushHarness.run([
            stream {
                $0.auth = .hmac; $0.hmac = HMACOptions(secret: secret)
            }
        ]) { h in
            let body = Array(#"{"event": "paid"}"#.utf8)
            let now = Int(Date().timeIntervalSince1970)
            let good = WebhookSignature.sign(body: body, timestamp: now, secret: secret)
            let valid = [("X-Sluice-Timestamp", "\(now)"), ("X-Sluice-Signature", good)]
            var flipped = Array(good.utf8)
            flipped[flipped.count - 1] = flipped.last == UInt8(ascii: "0") ? UInt8(ascii: "1") : UInt8(ascii: "0")
            let tampered = [("X-Sluice-Timestamp", "\(now)"), ("X-Sluice-Signature", String(decoding: flipped, as: UTF8.self))]
            let stale = now - 600
            let staleHeaders = [
                ("X-Sluice-Timestamp", "\(stale)"),
                ("X-Sluice-Signature", WebhookSignature.sign(body: body, timestamp: stale, secret: secret)),
            ]
            // A delivery of its own (another second): the same signed request again would be a replay.
            let wrongSecret = WebhookSignature.sign(body: body, timestamp: now - 1, secret: secret + "x")
            let goodLater = WebhookSignature.sign(body: body, timestamp: now - 1, secret: secret)
            let rotation = [("X-Sluice-Timestamp", "\(now - 1)"), ("X-Sluice-Signature", "\(wrongSecret), \(goodLater)")]
            let changedBody = Array(#"{"event": "paid!"}"#.utf8)
            let r0 = try await h.post("s", body, headers: valid)
            #expect(r0.status == 202)
            let r1 = try await h.post("s", body, headers: tampered)
            #expect(r1.status == 401)
            let r2 = try await h.post("s", changedBody, headers: valid)
            #expect(r2.status == 401, "the body is signed")
            let r3 = try await h.post("s", body, headers: staleHeaders)
            #expect(r3.status == 401)
            let r4 = try await h.post("s", body, headers: [("X-Sluice-Signature", good)])
            #expect(r4.status == 401)
            let r5 = try await h.post("s", body)
            #expect(r5.status == 401)
            let r6 = try await h.post("s", body, headers: rotation)
            #expect(r6.status == 202, "rotation: any listed signature")
            let replay = try await h.post("s", body, headers: valid)
            #expect(replay.status == 409, "a replayed signed request is refused")
            #expect(try await h.queuedLines().count == 2)
        }
    }

    @Test func rateLimitsPerStreamAndPerKeyAnswer429WithHeaders() async throws {
        // A refill of one token per 1000 s: nothing refills during the test, however slow the machine.
        let streams = [
            stream("open") { $0.rateLimit = RateLimitOptions(requestsPerSecond: 0.001, burst: 3) },
            stream("keyed", pipeline: "q") {
                $0.auth = .apiKey; $0.keyRateLimit = RateLimitOptions(requestsPerSecond: 0.001, burst: 2)
            },
        ]
        try await PushHarness.run(streams) { h in
            var statuses: [Int] = []
            var last: PushHarness.Reply?
            for _ in 0..<4 {
                let r = try await h.post("open", #"{"x": 1}"#)
                statuses.append(r.status)
                last = r
            }
            #expect(statuses == [202, 202, 202, 429])
            #expect(last?.json["type"] as? String == "urn:sluice:problem:rate-limited")
            #expect(Int(last?.headers.first(name: "Retry-After") ?? "") ?? 0 >= 1)
            #expect(last?.headers.first(name: "RateLimit-Limit") == "3")
            #expect(last?.headers.first(name: "RateLimit-Remaining") == "0")
            #expect(last?.headers.first(name: "RateLimit-Reset") != nil)
            let (k1, s1) = APIKeyFormat.generate(name: "one", streams: ["*"])
            let (k2, s2) = APIKeyFormat.generate(name: "two", streams: ["*"])
            try await h.store.createAPIKey(s1)
            try await h.store.createAPIKey(s2)
            var byKey: [Int] = []
            for key in [k1, k1, k1, k2] {
                byKey.append(try await h.post("keyed", #"{"x": 1}"#, headers: [("X-API-Key", key)]).status)
            }
            #expect(byKey == [202, 202, 429, 202], "each key has its own bucket")
            #expect(try await h.queuedLines("open").count == 3)
        }
    }

    @Test func aFullQueueAnswers503WithRetryAfter() async throws {
        try await PushHarness.run([stream { $0.maxQueueRecords = 5 }]) { h in
            #expect(try await h.post("s", "[{},{},{}]").status == 202)
            #expect(try await h.post("s", "[{},{},{}]").status == 202)
            let full = try await h.post("s", "[{}]")
            #expect(full.status == 503)
            #expect(full.headers.first(name: "Retry-After") == "1")
            #expect(full.json["type"] as? String == "urn:sluice:problem:backpressure")
            // The pipeline commits: room again.
            var commit = StateCommit(pipeline: "p")
            commit.checkpoint = [PushQueuePartition.name(stream: "s"): "1000000"]
            try await h.store.commit(commit)
            #expect(try await h.post("s", "[{}]").status == 202)
        }
    }

    @Test func theArrivalStampIsReservedAndDeclaredDecimalsAndBinariesAreCheckedAtTheDoor() async throws {
        let s = stream { $0.fields = [Field("amount", .decimal(precision: 6, scale: 2)), Field("blob", .binary)] }
        try await PushHarness.run([s]) { h in
            let forged = try await h.post("s", #"{"received_at": "2020-01-01T00:00:00Z"}"#)
            #expect(forged.status == 422 && (forged.json["errors"] as? [[String: Any]])?.first?["kind"] as? String == "reserved_field")
            #expect(try await h.post("s", #"{"amount": "12.5", "blob": "aGVsbG8="}"#).status == 202)
            #expect(try await h.post("s", #"{"amount": 12.25}"#).status == 202)
            #expect(try await h.post("s", #"{"amount": "abc"}"#).status == 422)
            #expect(try await h.post("s", #"{"amount": 123456.7}"#).status == 422, "too many digits for decimal(6,2)")
            #expect(try await h.post("s", #"{"blob": "not base64!"}"#).status == 422)
            #expect(try await h.queuedLines().count == 2)
        }
    }

    @Test func unsignedRequestsCannotUseUpASignedStreamsRateLimit() async throws {
        let secret = "0123456789abcdef0123456789abcdef"
        let s = stream {
            $0.auth = .hmac; $0.hmac = HMACOptions(secret: secret); $0.rateLimit = RateLimitOptions(requestsPerSecond: 0.001, burst: 2)
        }
        try await PushHarness.run([s]) { h in
            for _ in 0..<5 {
                let r = try await h.post("s", #"{"n": 1}"#, headers: [("X-Sluice-Timestamp", "1"), ("X-Sluice-Signature", "sha256=00")])
                #expect(r.status == 401)
            }
            let body = Array(#"{"n": 2}"#.utf8)
            let now = Int(Date().timeIntervalSince1970)
            let headers = [("X-Sluice-Timestamp", "\(now)"), ("X-Sluice-Signature", WebhookSignature.sign(body: body, timestamp: now, secret: secret))]
            let r = try await h.post("s", body, headers: headers)
            #expect(r.status == 202, "the signed sender still has its tokens")
        }
    }

    @Test func gzipBodiesCountTheirDecompressedSizeAgainstTheMemoryBudget() async throws {
        var settings = PushServer.Settings()
        settings.maxInflightBytes = 256 << 10
        try await PushHarness.run([stream { $0.maxBody = 4 << 20 }], settings: settings) { h in
            // 20 KB of gzip that expands to ~2 MB: over the 256 KB budget once decompressed.
            let expanding = try gzipped(Array(("[" + String(repeating: #"{"pad": "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"},"#, count: 40_000) + "{}]").utf8))
            #expect(expanding.count < 64 << 10)
            let r = try await h.post("s", expanding, headers: [("Content-Encoding", "gzip")])
            #expect(r.status == 503 && r.json["type"] as? String == "urn:sluice:problem:busy", "\(r.status) \(r.body)")
            let small = try gzipped(Array(#"[{"n": 1}]"#.utf8))
            #expect(try await h.post("s", small, headers: [("Content-Encoding", "gzip")]).status == 202, "the budget was given back")
        }
    }

    @Test func committingAQueuePartitionConsumesItsRequestsInTheSameTransaction() async throws {
        try await PushHarness.run([stream()]) { h in
            for i in 0..<3 { #expect(try await h.post("s", "{\"n\": \(i)}").status == 202) }
            let queued = try await h.store.queued(stream: "s", after: 0, limit: 10, maxBytes: .max)
            #expect(queued.count == 3)
            var commit = StateCommit(pipeline: "p")
            commit.checkpoint = [PushQueuePartition.name(stream: "s"): String(queued[1].sequence)]
            try await h.store.commit(commit)
            #expect(try await h.queuedLines().count == 1, "committed requests are never read again")
            #expect(try await h.store.backlog(stream: "s").records == 1)
            #expect(try await h.store.queued(stream: "s", after: 0, limit: 10, maxBytes: .max).map(\.sequence) == [queued[2].sequence])
            // Deleted lazily, in chunks.
            #expect(try await h.store.trimConsumed(stream: "s", limit: 1) == 1)
            #expect(try await h.store.trimConsumed(stream: "s", limit: 10) == 1)
            #expect(try await h.store.trimConsumed(stream: "s", limit: 10) == 0)
            #expect(try await h.store.backlog(stream: "s").records == 1)
        }
    }

    @Test func healthReadinessAndMetrics() async throws {
        try await PushHarness.run([stream()]) { h in
            #expect(try await h.get("/healthz").status == 200)
            let ready = try await h.get("/readyz")
            #expect(ready.status == 200 && ready.body == "ready\n")
            #expect(try await h.get("/metrics").status == 200)
            #expect(try await h.get("/nope").status == 404)
        }
        try await PushHarness.run([stream()], failedPipelines: { ["p"] }) { h in
            let notReady = try await h.get("/readyz")
            #expect(notReady.status == 503)
            #expect((notReady.json["detail"] as? String)?.contains("pipeline 'p' has failed") == true)
            #expect(try await h.get("/healthz").status == 200, "alive, though not ready")
        }
    }
}

/// Makes the server's group-commit queue and keeps it, so a test can count what was submitted.
final class CountingQueue: @unchecked Sendable {
    var queue: GroupCommitQueue?
    func make(_ store: SQLiteStateStore) -> GroupCommitQueue {
        let q = GroupCommitQueue(store: store)
        queue = q
        return q
    }
}
