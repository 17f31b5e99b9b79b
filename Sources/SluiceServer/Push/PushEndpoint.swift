import Crypto
import Foundation
import Hummingbird
import HTTPTypes
import Logging
import Metrics
import NIOCore
import SluiceCore
import SluiceFormats
import Synchronization

/// One stream served by the endpoint.
public struct PushStream: Sendable {
    public var pipeline: String
    public var options: HTTPStreamOptions

    public init(pipeline: String, options: HTTPStreamOptions) {
        self.pipeline = pipeline
        self.options = options
    }
}

/// `POST /v1/streams/{stream}/records`: checks, in this order, the stream, content type and
/// encoding, credentials, rate limits, backlog and size; then reads the body, verifies a
/// webhook signature, validates every record, and answers 202 only once the accepted records
/// are durable in the push queue (with their idempotency key, in the same transaction).
public final class PushEndpoint: Sendable {
    let streams: [String: PushStream]
    let store: any PushQueueStore
    let queue: GroupCommitQueue
    let limiter = RateLimiter()
    let gate = IdempotencyGate()
    let logger: Logger
    /// Refuses requests once the server drains (SIGTERM), and counts those being answered.
    let intake: PushIntake
    /// Bytes of request bodies held in memory at once, at most, with a share for bodies whose
    /// sender is not known yet (signed webhooks before their signature is checked, open streams).
    let inflight: InflightBudget
    let metrics: PushMetrics
    /// How long a client may take to send its body.
    let bodyTimeout: Duration
    /// The field names of each stream, checked against its `max_new_fields` and `max_columns`.
    let fieldCatalogs: [String: StreamFieldCatalog]
    private let keyCache = Mutex<[String: (key: StoredAPIKey?, at: ContinuousClock.Instant)]>([:])

    public init(
        streams: [PushStream], store: any PushQueueStore, queue: GroupCommitQueue, inflight: InflightBudget,
        bodyTimeout: Duration = .seconds(30), intake: PushIntake = PushIntake(), logger: Logger
    ) {
        self.intake = intake
        var map: [String: PushStream] = [:]
        for s in streams { map[s.options.stream] = s }
        self.streams = map
        self.fieldCatalogs = map.mapValues { s in
            StreamFieldCatalog(
                initial: s.options.decodeFields.map(\.name), maxNewPerRequest: s.options.maxNewFields, maxColumns: s.options.maxColumns)
        }
        self.metrics = PushMetrics(pipelines: map.mapValues(\.pipeline))
        self.store = store
        self.queue = queue
        self.inflight = inflight
        self.bodyTimeout = bodyTimeout
        self.logger = logger
    }

    // MARK: Request handling

    public func handle(_ request: Request, stream name: String) async -> Response {
        let started = ContinuousClock.now
        let requestID = RequestID.next()
        var response: Response
        var streamLabel = "unknown"
        if !intake.enter() {
            streamLabel = streams[name] == nil ? "unknown" : name
            response = Self.drainingProblem.response(instance: "/v1/streams/\(name)/records#\(requestID)")
        } else if let stream = streams[name] {
            defer { intake.leave() }
            streamLabel = name
            do {
                response = try await accept(request, stream: stream, requestID: requestID)
            } catch let problem as ProblemThrown {
                response = problem.problem.response(instance: "/v1/streams/\(name)/records#\(requestID)")
            } catch {
                logger.error("push request failed", metadata: ["stream": "\(name)", "request_id": "\(requestID)", "error": "\(error)"])
                var p = Problem(
                    .serviceUnavailable, "unavailable", "Temporarily unavailable",
                    detail: "the records could not be made durable; nothing was ingested. Retry later.")
                p.extraHeaders[.retryAfter] = "1"
                response = p.response(instance: "/v1/streams/\(name)/records#\(requestID)")
            }
        } else {
            intake.leave()
            response = Problem(
                .notFound, "unknown-stream", "Unknown stream",
                detail: "no stream named '\(Problem.excerpt(name))' is served here; streams are declared in the config as `source: {http: {stream: NAME}}`"
            ).response()
        }
        response.headers[Self.requestIDHeader] = requestID
        metrics.requests(stream: streamLabel, code: Int(response.status.code)).increment()
        let elapsed = ContinuousClock.now - started
        metrics.duration(stream: streamLabel)
            .recordNanoseconds(elapsed.components.seconds * 1_000_000_000 + elapsed.components.attoseconds / 1_000_000_000)
        return response
    }

    struct ProblemThrown: Error { var problem: Problem }

    /// The answer to every request once the server drains: it is shutting down, so the client
    /// should go to another instance (`Connection: close`) or come back after a restart.
    static var drainingProblem: Problem {
        var p = Problem(
            .serviceUnavailable, "shutting-down", "Shutting down",
            detail:
                "the server is shutting down and accepts no more records; nothing was ingested. Retry later (another instance, or this one after its restart).")
        p.extraHeaders[.retryAfter] = "5"
        p.extraHeaders[.connection] = "close"
        return p
    }

    static let requestIDHeader = HTTPField.Name("X-Request-Id")!
    static let replayedHeader = HTTPField.Name("Idempotent-Replayed")!

    static func fail(
        _ status: HTTPResponse.Status, _ slug: String, _ title: String, _ detail: String,
        headers: HTTPFields = [:]
    ) -> ProblemThrown {
        var p = Problem(status, slug, title, detail: detail)
        p.extraHeaders = headers
        return ProblemThrown(problem: p)
    }

    func accept(_ request: Request, stream: PushStream, requestID: String) async throws -> Response {
        let o = stream.options
        // Credentials first (an API key can be checked before reading the body).
        var principal = "anonymous"
        if o.auth == .apiKey {
            principal = try await authenticateKey(request.headers, stream: o.stream)
        }
        let format = try Self.bodyFormat(request.headers[.contentType])
        let gzip = try Self.isGzip(request.headers[.contentEncoding])
        let announced = request.headers[.contentLength].flatMap { Int($0) }
        if let announced, announced > o.maxBody {
            throw Self.fail(
                .contentTooLarge, "body-too-large", "Body too large",
                "the body has \(announced) bytes; this stream accepts at most \(o.maxBody) bytes per request; split the batch")
        }

        // Rate limits and backpressure. A signed webhook's signature needs the body, so on
        // `hmac` streams these run after it is verified: unsigned traffic cannot use them up.
        var rateHeaders: HTTPFields = [:]
        if o.auth != .hmac {
            try await admit(stream: o, principal: principal, rateHeaders: &rateHeaders)
        }

        // Memory held by bodies at once: the raw body counts twice (it is read into a growing
        // buffer). An authenticated body of announced length is reserved before it is read; any
        // other body is charged as its bytes arrive, so a stalled upload holds only what it sent,
        // and anonymous bodies draw on their share of the budget only (see `InflightBudget`).
        let memory = MemoryReservation(budget: inflight, anonymous: o.auth != .apiKey)
        defer { memory.release() }
        if let announced, o.auth == .apiKey {
            guard memory.grow(by: 2 * announced, alone: true) else { throw busy(stream: o.stream) }
        }
        let raw = try await readBody(request, stream: o.stream, limit: o.maxBody, memory: memory)

        if o.auth == .hmac {
            guard let h = o.hmac else { throw authFailure(stream: o.stream, reason: "hmac_not_configured") }
            if let reason = WebhookSignature.verify(
                body: raw, timestampHeader: request.headers[h.timestampField],
                signatureHeader: request.headers[h.signatureField],
                secret: h.secret, tolerance: h.tolerance)
            {
                throw authFailure(stream: o.stream, reason: reason)
            }
            principal = "hmac"
            memory.authenticate()
            try await admit(stream: o, principal: principal, rateHeaders: &rateHeaders)
        }

        var idempotencyKey = try Self.idempotencyKey(request.headers)
        // A signed request is remembered by its signature for the tolerance window, in the state
        // store with its records: the same signed request again is refused, whatever its other
        // headers (an Idempotency-Key is not signed, so it cannot stand in for the signature).
        var replayKey: String?
        if o.auth == .hmac, let h = o.hmac {
            replayKey = WebhookSignature.replayKey(body: raw, timestampHeader: request.headers[h.timestampField], secret: h.secret)
            if replayKey != nil { idempotencyKey = nil }
        }
        let body = try gzip ? Self.gunzip(raw, limit: o.maxBody, memory: memory) : raw
        // The payload written to the queue: the body plus the arrival stamp of every record.
        guard memory.grow(by: body.count + body.count / 2) else { throw busy(stream: o.stream) }
        var response: Response
        if let replayKey, let h = o.hmac {
            let since = Date().addingTimeInterval(-Double(WebhookSignature.replayWindow(tolerance: h.tolerance).components.seconds))
            let fingerprint = Self.fingerprint(stream: o.stream, format: format, body: body)
            let (recorded, leader) = await gate.run(key: "\(o.stream)\u{0}\(replayKey)") {
                await self.ingestOnce(
                    body, format: format, stream: stream, requestID: requestID, key: replayKey, fingerprint: fingerprint, since: since)
            }
            if recorded.replayed || (!leader && recorded.stored) {
                metrics.authFailures(stream: o.stream, reason: "replayed_signature").increment()
                throw Self.fail(
                    .conflict, "replayed-request", "Replayed request",
                    "this signed request (same timestamp and signature) was accepted before; its records were not ingested again. "
                        + "Sign each delivery with the time it is sent")
            }
            response = Response(
                status: .init(code: recorded.status),
                headers: [.contentType: recorded.status < 300 ? "application/json" : "application/problem+json"],
                body: .init(byteBuffer: ByteBuffer(bytes: recorded.body)))
        } else if let clientKey = idempotencyKey {
            // Keys are per credential: one client cannot see or collide with another's.
            let key = principal == "anonymous" ? clientKey : "\(principal) \(clientKey)"
            let fingerprint = Self.fingerprint(stream: o.stream, format: format, body: body)
            let (recorded, leader) = await gate.run(key: "\(o.stream)\u{0}\(key)") {
                await self.ingestOnce(body, format: format, stream: stream, requestID: requestID, key: key, fingerprint: fingerprint)
            }
            guard recorded.fingerprint == fingerprint || recorded.status >= 500 else {
                throw Self.fail(
                    .unprocessableContent, "idempotency-key-reused", "Idempotency key reused",
                    "the Idempotency-Key '\(clientKey)' was already used for a different request; use a new key for a new request")
            }
            response = Response(
                status: .init(code: recorded.status),
                headers: [.contentType: recorded.status < 300 ? "application/json" : "application/problem+json"],
                body: .init(byteBuffer: ByteBuffer(bytes: recorded.body)))
            if recorded.replayed || (!leader && recorded.stored) {
                response.headers[Self.replayedHeader] = "true"
            }
        } else {
            let recorded = await ingestOnce(body, format: format, stream: stream, requestID: requestID, key: nil, fingerprint: "")
            response = Response(
                status: .init(code: recorded.status),
                headers: [.contentType: recorded.status < 300 ? "application/json" : "application/problem+json"],
                body: .init(byteBuffer: ByteBuffer(bytes: recorded.body)))
        }
        if response.status.code == 503 { response.headers[.retryAfter] = "1" }
        for field in rateHeaders { response.headers.append(field) }
        return response
    }

    /// Validates and appends a body; the answer is recorded so repeats of an idempotency key get it.
    func ingestOnce(
        _ body: [UInt8], format: JSONBodyFormat, stream: PushStream, requestID: String, key: String?,
        fingerprint: String, since replaySince: Date? = nil
    ) async -> RecordedResponse {
        let o = stream.options
        func problem(_ p: Problem) -> RecordedResponse {
            RecordedResponse(
                fingerprint: fingerprint, status: Int(p.status.code), body: p.body(instance: "/v1/streams/\(o.stream)/records#\(requestID)"),
                stored: false)
        }
        let since = replaySince ?? Date().addingTimeInterval(-Double(o.idempotencyTTL.components.seconds))
        if let key {
            do {
                if let stored = try await store.idempotencyRecord(stream: o.stream, key: key, since: since) {
                    return RecordedResponse(fingerprint: stored.fingerprint, status: stored.status, body: stored.response, stored: true, replayed: true)
                }
            } catch {
                return problem(
                    Problem(
                        .serviceUnavailable, "unavailable", "Temporarily unavailable",
                        detail: "the idempotency key could not be checked; nothing was ingested. Retry later."))
            }
        }

        let splitter = JSONRecordSplitter(
            limits: o.limits, fields: o.fields, reserved: o.receivedAt.map { [$0] } ?? [], collectFieldNames: true)
        let split = body.withUnsafeBytes { splitter.split($0, format: format) }
        if let issue = split.bodyIssue {
            let status: HTTPResponse.Status = issue.kind == .tooManyRecords ? .contentTooLarge : .badRequest
            var p = Problem(
                status, issue.kind.rawValue.replacingOccurrences(of: "_", with: "-"),
                issue.kind == .tooManyRecords ? "Too many records" : "Malformed body", detail: issue.message)
            p.errors = [Self.describe(issue)]
            metrics.rejected(stream: o.stream, reason: issue.kind.rawValue).increment()
            return problem(p)
        }
        var bad = Set<Int>()
        for issue in split.recordIssues { bad.insert(issue.record ?? -1) }
        if !split.recordIssues.isEmpty && (o.onInvalid == .reject || bad.count == split.records.count) {
            let schemaOnly = split.recordIssues.allSatisfy(\.isSchemaViolation)
            var p = Problem(
                schemaOnly ? .unprocessableContent : .badRequest,
                schemaOnly ? "schema-violation" : "malformed-record",
                schemaOnly ? "Records violate the stream's schema" : "Malformed records",
                detail: "\(split.recordIssues.count) of \(split.records.count) records are invalid (first: \(split.recordIssues[0])); nothing was ingested")
            p.errors = split.recordIssues.prefix(100).map(Self.describe)
            metrics.rejected(stream: o.stream, reason: split.recordIssues[0].kind.rawValue).increment(by: split.records.count)
            return problem(p)
        }

        // New fields: checked (and counted for the stream) before anything is accepted, so no
        // record answered 202 meets the decoder's column cap later.
        if let refusal = fieldCatalogs[o.stream]?.admit(split.fieldNames) {
            metrics.rejected(stream: o.stream, reason: refusal.limit == .columns ? "too_many_columns" : "too_many_new_fields")
                .increment(by: split.records.count)
            return problem(Self.fieldsProblem(refusal))
        }

        let receivedAt = Date()
        var prefix: [UInt8] = []
        if let field = o.receivedAt {
            var stamp: [UInt8] = []
            TemporalText.appendTimestamp(micros: Int64((receivedAt.timeIntervalSince1970 * 1_000_000).rounded()), to: &stamp)
            prefix.reserveCapacity(field.utf8.count + stamp.count + 5)
            prefix.append(UInt8(ascii: "\""))
            prefix.append(contentsOf: field.utf8)
            prefix.append(contentsOf: "\":\"".utf8)
            prefix.append(contentsOf: stamp)
            prefix.append(UInt8(ascii: "\""))
        }
        var payload: [UInt8] = []
        payload.reserveCapacity(body.count + split.records.count * (prefix.count + 2))
        var letters: [DeadLetter] = []
        var accepted = 0
        body.withUnsafeBytes { raw in
            for (index, range) in split.records.enumerated() {
                if bad.contains(index) { continue }
                JSONRecordSplitter.appendLine(raw, range, prefix: prefix, to: &payload)
                accepted += 1
            }
            for issue in split.recordIssues {
                guard let index = issue.record else { continue }
                let r = split.records[index]
                letters.append(
                    DeadLetter(
                        stage: "ingest", errorKind: issue.kind.rawValue, message: issue.description,
                        location: "http:\(o.stream)/\(requestID)#\(index)", raw: Array(raw[r])))
            }
        }
        let responseBody: [UInt8]
        if split.recordIssues.isEmpty {
            // The common case, without JSONSerialization: ids and stream names need no escaping.
            responseBody = Array("{\"accepted\":\(accepted),\"request_id\":\"\(requestID)\",\"stream\":\"\(o.stream)\"}\n".utf8)
        } else {
            responseBody = Self.json([
                "request_id": requestID, "stream": o.stream, "accepted": accepted,
                "rejected": split.recordIssues.prefix(1000).map(Self.describe), "dead_lettered": letters.count,
            ])
        }
        let record = key.map {
            IdempotencyRecord(stream: o.stream, key: $0, fingerprint: fingerprint, status: 202, response: responseBody, createdAt: receivedAt)
        }
        let append = PushAppend(
            stream: o.stream, pipeline: stream.pipeline, requestID: requestID, payload: payload, records: accepted,
            receivedAt: receivedAt, idempotency: record, idempotencySince: since, deadLetters: letters)
        do {
            switch try await queue.append(append) {
            case .appended:
                metrics.records(stream: o.stream).increment(by: accepted)
                if !letters.isEmpty {
                    metrics.rejected(stream: o.stream, reason: "dead_lettered").increment(by: letters.count)
                }
                return RecordedResponse(fingerprint: fingerprint, status: 202, body: responseBody, stored: key != nil)
            case .duplicate(let stored):
                return RecordedResponse(fingerprint: stored.fingerprint, status: stored.status, body: stored.response, stored: true, replayed: true)
            }
        } catch {
            logger.error("push queue append failed", metadata: ["stream": "\(o.stream)", "request_id": "\(requestID)", "error": "\(error)"])
            return problem(
                Problem(
                    .serviceUnavailable, "unavailable", "Temporarily unavailable",
                    detail: "the records could not be made durable; nothing was ingested. Retry later."))
        }
    }

    // MARK: Checks

    static func bodyFormat(_ header: String?) throws -> JSONBodyFormat {
        // The common spellings, without parsing (this runs for every request).
        switch header {
        case "application/json", "application/json; charset=utf-8": return .json
        case "application/x-ndjson", "application/x-ndjson; charset=utf-8": return .ndjson
        default: break
        }
        guard let header else {
            throw fail(
                .unsupportedMediaType, "unsupported-media-type", "Content-Type required",
                "send Content-Type: application/json (an object or an array of objects) or application/x-ndjson (one object per line)")
        }
        let parts = header.lowercased().split(separator: ";").map { $0.trimmingCharacters(in: .whitespaces) }
        for param in parts.dropFirst() where param.hasPrefix("charset=") {
            let charset = param.dropFirst("charset=".count).trimmingCharacters(in: CharacterSet(charactersIn: "\""))
            if charset != "utf-8" && charset != "utf8" {
                throw fail(.unsupportedMediaType, "unsupported-charset", "Unsupported charset", "records must be UTF-8; found charset=\(charset)")
            }
        }
        switch parts.first ?? "" {
        case "application/json": return .json
        case "application/x-ndjson", "application/ndjson", "application/jsonl", "application/x-jsonlines", "application/jsonlines": return .ndjson
        default:
            throw fail(
                .unsupportedMediaType, "unsupported-media-type", "Unsupported Content-Type",
                "Content-Type '\(parts.first ?? "")' is not accepted; use application/json or application/x-ndjson")
        }
    }

    static func isGzip(_ header: String?) throws -> Bool {
        guard let header else { return false }
        switch header.lowercased().trimmingCharacters(in: .whitespaces) {
        case "", "identity": return false
        case "gzip", "x-gzip": return true
        default:
            throw fail(
                .unsupportedMediaType, "unsupported-encoding", "Unsupported Content-Encoding",
                "Content-Encoding '\(header)' is not accepted; send gzip or no encoding")
        }
    }

    static let idempotencyKeyHeader = HTTPField.Name("Idempotency-Key")!
    static let apiKeyHeader = HTTPField.Name("X-API-Key")!

    static func idempotencyKey(_ headers: HTTPFields) throws -> String? {
        guard let key = headers[idempotencyKeyHeader] else { return nil }
        let trimmed = key.trimmingCharacters(in: CharacterSet(charactersIn: "\" "))
        guard !trimmed.isEmpty, trimmed.utf8.count <= 255, trimmed.utf8.allSatisfy({ $0 >= 0x21 && $0 <= 0x7E }) else {
            throw fail(
                .badRequest, "invalid-idempotency-key", "Invalid Idempotency-Key",
                "the Idempotency-Key must be 1 to 255 visible ASCII characters (a UUID is a good choice)")
        }
        return trimmed
    }

    static func fingerprint(stream: String, format: JSONBodyFormat, body: [UInt8]) -> String {
        var h = SHA256()
        h.update(data: Array("\(stream)\n\(format.rawValue)\n".utf8))
        h.update(data: body)
        return h.finalize().map { String(format: "%02x", $0) }.joined()
    }

    static func gunzip(_ data: [UInt8], limit: Int, memory: MemoryReservation) throws -> [UInt8] {
        do {
            return try GzipMemory.decompress(data, limit: limit, reserve: { memory.grow(by: $0) })
        } catch GzipMemory.Failure.tooLarge {
            throw fail(
                .contentTooLarge, "body-too-large", "Body too large",
                "the decompressed body exceeds \(limit) bytes; split the batch")
        } catch GzipMemory.Failure.noMemory {
            throw busyProblem
        } catch {
            throw fail(.badRequest, "invalid-gzip", "Invalid gzip body", "the body is not valid gzip data: \(error)")
        }
    }

    /// The id of the API key presented for writing to `stream` (a 401 or 403 problem otherwise).
    func authenticateKey(_ headers: HTTPFields, stream: String) async throws -> String {
        try await authenticateKey(headers, stream: stream, forbidden: "this credential may not write to this stream") { $0.allows(stream: stream) }
    }

    /// The id of the API key presented for a write to the schema registry API: it needs the
    /// scope `registry:write` (a key for streams, even for every stream, does not have it).
    func authenticateRegistryWriter(_ headers: HTTPFields) async throws -> String {
        try await authenticateKey(headers, stream: "registry", forbidden: "this key may not write to the schema registry (it needs --registry write)") {
            $0.allowsRegistryWrite
        }
    }

    /// `stream` labels the failure metrics; `allowed` decides whether a valid key may go on.
    func authenticateKey(_ headers: HTTPFields, stream: String, forbidden: String, allowed: (StoredAPIKey) -> Bool) async throws -> String {
        var presented: Substring?
        if let auth = headers[.authorization] {
            let parts = auth.split(separator: " ", maxSplits: 1)
            if parts.count == 2, parts[0].lowercased() == "bearer" {
                presented = parts[1].drop { $0 == " " }
            } else if parts.count == 2, parts[0].lowercased() == "basic",
                let decoded = Data(base64Encoded: String(parts[1].drop { $0 == " " })).map({ String(decoding: $0, as: UTF8.self) })
            {
                // Basic auth, as registry clients send it (`basic.auth.user.info`): the key is the password (or the user).
                let pair = decoded.split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false)
                presented = pair.count == 2 && pair[1].hasPrefix(APIKeyFormat.prefix) ? pair[1] : pair.first
            }
        } else if let key = headers[Self.apiKeyHeader] {
            presented = Substring(key)
        }
        guard let presented else { throw authFailure(stream: stream, reason: "missing_key") }
        guard let (id, secret) = APIKeyFormat.parse(presented) else { throw authFailure(stream: stream, reason: "malformed_key") }
        let key: StoredAPIKey?
        if let cached = keyCache.withLock({ $0[id] }), ContinuousClock.now - cached.at < .seconds(2) {
            key = cached.key
        } else {
            key = try await store.apiKey(id: id)
            // Unknown ids are cached too (bounded), so a flood of made-up keys does not hit the store.
            keyCache.withLock { cache in
                if cache.count >= 10_000 { cache.removeAll(keepingCapacity: true) }
                cache[id] = (key, .now)
            }
        }
        guard let key, key.revokedAt == nil, APIKeyFormat.matches(secret: secret, storedHash: key.secretHash) else {
            throw authFailure(stream: stream, reason: "invalid_key")
        }
        guard allowed(key) else {
            metrics.authFailures(stream: stream, reason: "forbidden").increment()
            throw Self.fail(.forbidden, "forbidden", "Forbidden", forbidden)
        }
        return key.id
    }

    func authFailure(stream: String, reason: String) -> ProblemThrown {
        metrics.authFailures(stream: stream, reason: reason).increment()
        logger.debug("authentication failed", metadata: ["stream": "\(stream)", "reason": "\(reason)"])
        return Self.fail(
            .unauthorized, "unauthorized", "Unauthorized", "authentication failed",
            headers: [.wwwAuthenticate: "Bearer realm=\"sluice\""])
    }

    /// Rate limits (the stream's bucket, then the key's) and the stream's backlog.
    func admit(stream o: HTTPStreamOptions, principal: String, rateHeaders: inout HTTPFields) async throws {
        if let limit = o.rateLimit {
            try checkRate(limiter.take("stream:\(o.stream)", limit), stream: o.stream, scope: "stream", headers: &rateHeaders)
        }
        if let limit = o.keyRateLimit, o.auth == .apiKey {
            try checkRate(limiter.take("key:\(o.stream):\(principal)", limit), stream: o.stream, scope: "key", headers: &rateHeaders)
        }
        let backlog = try await store.backlog(stream: o.stream)
        metrics.queueRecords(stream: o.stream).record(backlog.records)
        if backlog.records >= o.maxQueueRecords || backlog.bytes >= o.maxQueueBytes {
            metrics.backpressure(stream: o.stream).increment()
            throw Self.fail(
                .serviceUnavailable, "backpressure", "The stream is full",
                "the pipeline is behind: its queue is at its limit; retry after the Retry-After delay",
                headers: [.retryAfter: "1"])
        }
    }

    func checkRate(_ d: RateLimiter.Decision, stream: String, scope: String, headers: inout HTTPFields) throws {
        let fields: HTTPFields = [
            .init("RateLimit-Limit")!: "\(d.limit)",
            .init("RateLimit-Remaining")!: "\(d.remaining)",
            .init("RateLimit-Reset")!: "\(d.resetSeconds)",
        ]
        guard d.allowed else {
            metrics.rateLimited(stream: stream, scope: scope).increment()
            var all = fields
            all[.retryAfter] = "\(d.retryAfterSeconds)"
            throw Self.fail(
                .tooManyRequests, "rate-limited", "Too many requests",
                "the \(scope) rate limit is \(d.limit) requests per burst; retry after \(d.retryAfterSeconds)s", headers: all)
        }
        headers = fields
    }

    static func describe(_ issue: JSONRecordIssue) -> [String: any Sendable] {
        var d: [String: any Sendable] = ["kind": issue.kind.rawValue, "detail": issue.message, "offset": issue.offset]
        if let r = issue.record { d["record"] = r }
        if let f = issue.field { d["field"] = f }
        return d
    }

    static func json(_ object: [String: Any]) -> [UInt8] {
        let data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])) ?? Data()
        return [UInt8](data) + [0x0A]
    }
}
