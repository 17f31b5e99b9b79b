import AsyncHTTPClient
import Foundation
import Logging
import NIOCore
import NIOHTTP1
import NIOSSL
import SluiceCore
import Synchronization

/// One bucket of an S3-compatible server, through the REST API signed with SigV4.
///
/// Transient failures (connection errors, timeouts, 500/502/503/504, 429, `SlowDown`,
/// `RequestTimeout`) are retried with exponential backoff and jitter inside each call; when they
/// persist, the call throws a retryable ``SluiceError`` and the pipeline's own retry (pause and
/// resume) takes over. Everything else throws at once with the bucket, the key, S3's error
/// code and what to do.
public final class S3ObjectStore: ObjectStore {
    public let bucket: String
    let settings: S3Settings
    let signer: SigV4Signer
    let http: HTTPClient
    let logger: Logger
    let retry: RetryPolicy
    let endpointURL: URL
    let isShutDown = Mutex(false)

    public var name: String { "s3://\(bucket)" }

    /// - Parameter attempts: tries of one request before a transient failure is thrown.
    /// Counts the requests sent, retries included (cost accounting).
    let requests: RequestTally?

    /// The `User-Agent` of pipelines' requests.
    public static let userAgent = "sluice/\(SluiceVersion.current)"
    /// The `User-Agent` of lifecycle runs' requests, which `sluice cost` does not count as
    /// reads of a lake (a pipeline reading one does count).
    public static let lifecycleUserAgent = "sluice-lifecycle/\(SluiceVersion.current)"
    /// What this client sends as `User-Agent`.
    let userAgent: String

    public init(
        bucket: String, settings: S3Settings, logger: Logger, attempts: Int = 6, requests: RequestTally? = nil, userAgent: String = S3ObjectStore.userAgent
    ) {
        self.userAgent = userAgent
        self.requests = requests
        self.bucket = bucket
        self.settings = settings
        self.logger = logger
        signer = SigV4Signer(
            accessKeyID: settings.accessKeyID, secretAccessKey: settings.secretAccessKey, sessionToken: settings.sessionToken,
            region: settings.region)
        retry = RetryPolicy(maxAttempts: attempts, baseDelay: .milliseconds(200), maxDelay: .seconds(5))
        endpointURL = URL(string: settings.endpoint)!
        var configuration = HTTPClient.Configuration()
        configuration.connectionPool.retryConnectionEstablishment = false
        configuration.connectionPool.concurrentHTTP1ConnectionsPerHostSoftLimit = 64
        configuration.timeout.connect = .seconds(10)
        configuration.decompression = .disabled
        if !settings.verifyTLS {
            var tls = TLSConfiguration.makeClientConfiguration()
            tls.certificateVerification = .none
            configuration.tlsConfiguration = tls
        }
        http = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
    }

    /// Closes the connections.
    public func shutdown() async {
        guard
            !isShutDown.withLock({
                let was = $0; $0 = true; return was
            })
        else { return }
        try? await http.shutdown()
    }

    deinit {
        // A store dropped on an error path still closes its connections (without waiting).
        if !isShutDown.withLock({ $0 }) { http.shutdown(queue: .global()) { _ in } }
    }

    // MARK: Objects

    public func put(_ key: String, bytes: [UInt8], ifNoneMatch: Bool) async throws {
        let r = try await send(.PUT, key: key, headers: ifNoneMatch ? [("if-none-match", "*")] : [], body: .bytes(bytes), accept: [200, 412])
        if r.status == 412 { throw ObjectStoreError.alreadyExists(key) }
    }

    public func get(_ key: String, range: Range<Int>?, ifMatch: String?) async throws -> [UInt8] {
        var headers: [(String, String)] = []
        if let range {
            guard !range.isEmpty else { return [] }
            headers.append(("range", "bytes=\(range.lowerBound)-\(range.upperBound - 1)"))
        }
        if let ifMatch { headers.append(("if-match", "\"\(ifMatch)\"")) }
        let r = try await send(.GET, key: key, headers: headers, accept: [200, 206, 404, 412])
        if r.status == 412 { throw ObjectStoreError.changed(key) }
        if r.status == 404 {
            if r.code == "NoSuchBucket" { throw error(for: r, key: key) }
            throw ObjectStoreError.notFound(key)
        }
        return r.body
    }

    public func head(_ key: String) async throws -> ObjectInfo? {
        let r = try await send(.HEAD, key: key, accept: [200, 404])
        guard r.status == 200 else { return nil }
        let size = Int(r.headers.first(name: "content-length") ?? "") ?? 0
        let modified = r.headers.first(name: "last-modified").flatMap(Self.parseHTTPDate)
        return ObjectInfo(key: key, size: size, etag: Self.unquote(r.headers.first(name: "etag") ?? ""), lastModified: modified)
    }

    public func list(prefix: String) async throws -> [ObjectInfo] {
        var objects: [ObjectInfo] = []
        var token: String?
        repeat {
            var query = [("list-type", "2"), ("prefix", prefix)]
            if let token { query.append(("continuation-token", token)) }
            let r = try await send(.GET, key: nil, query: query)
            let xml = S3XML(r.body)
            for item in xml.elements("Contents") {
                guard let key = item.value("Key") else { continue }
                objects.append(
                    ObjectInfo(
                        key: key, size: Int(item.value("Size") ?? "") ?? 0, etag: Self.unquote(item.value("ETag") ?? ""),
                        lastModified: item.value("LastModified").flatMap(Self.parseISODate)))
            }
            token = xml.value("IsTruncated") == "true" ? xml.value("NextContinuationToken") : nil
        } while token != nil
        return objects.sorted { $0.key < $1.key }
    }

    public func delete(_ key: String) async throws {
        _ = try await send(.DELETE, key: key, accept: [200, 204, 404])
    }

    // MARK: Multipart uploads

    public func createMultipartUpload(_ key: String) async throws -> String {
        let r = try await send(.POST, key: key, query: [("uploads", "")])
        guard let id = S3XML(r.body).value("UploadId"), !id.isEmpty else {
            throw SluiceError(.io, "CreateMultipartUpload returned no upload id", location: "\(name)/\(key)")
        }
        return id
    }

    public func uploadPart(_ key: String, uploadID: String, number: Int, bytes: [UInt8]) async throws -> UploadedPart {
        let r = try await send(.PUT, key: key, query: [("partNumber", "\(number)"), ("uploadId", uploadID)], body: .bytes(bytes))
        guard let etag = r.headers.first(name: "etag") else {
            throw SluiceError(.io, "UploadPart \(number) returned no ETag", location: "\(name)/\(key)")
        }
        return UploadedPart(number: number, etag: Self.unquote(etag), size: bytes.count)
    }

    public func uploadPart(_ key: String, uploadID: String, number: Int, file: FileRange) async throws -> UploadedPart {
        let r = try await send(.PUT, key: key, query: [("partNumber", "\(number)"), ("uploadId", uploadID)], body: .file(file))
        guard let etag = r.headers.first(name: "etag") else {
            throw SluiceError(.io, "UploadPart \(number) returned no ETag", location: "\(name)/\(key)")
        }
        return UploadedPart(number: number, etag: Self.unquote(etag), size: file.length)
    }

    public func listParts(_ key: String, uploadID: String) async throws -> [UploadedPart]? {
        var parts: [UploadedPart] = []
        var marker: String?
        repeat {
            var query = [("uploadId", uploadID)]
            if let marker { query.append(("part-number-marker", marker)) }
            let r = try await send(.GET, key: key, query: query, accept: [200, 404])
            if r.status == 404 {
                if r.code == "NoSuchBucket" { throw error(for: r, key: key) }
                return nil
            }
            let xml = S3XML(r.body)
            for part in xml.elements("Part") {
                guard let number = Int(part.value("PartNumber") ?? ""), let etag = part.value("ETag") else { continue }
                parts.append(UploadedPart(number: number, etag: Self.unquote(etag), size: Int(part.value("Size") ?? "") ?? 0))
            }
            marker = xml.value("IsTruncated") == "true" ? xml.value("NextPartNumberMarker") : nil
        } while marker != nil
        return parts.sorted { $0.number < $1.number }
    }

    public func completeMultipartUpload(_ key: String, uploadID: String, parts: [UploadedPart]) async throws {
        var body = "<CompleteMultipartUpload>"
        for part in parts.sorted(by: { $0.number < $1.number }) {
            body += "<Part><PartNumber>\(part.number)</PartNumber><ETag>\(S3XML.escape("\"\(part.etag)\""))</ETag></Part>"
        }
        body += "</CompleteMultipartUpload>"
        let r = try await send(.POST, key: key, query: [("uploadId", uploadID)], body: .bytes(Array(body.utf8)))
        // S3 may answer 200 and still report an error in the body (a failure while assembling).
        let xml = S3XML(r.body)
        if let code = xml.elements("Error").first?.value("Code") {
            let message = xml.elements("Error").first?.value("Message") ?? ""
            throw SluiceError(
                .unavailable, "CompleteMultipartUpload failed: \(code) \(message)", location: "\(name)/\(key)", retryable: true)
        }
    }

    public func abortMultipartUpload(_ key: String, uploadID: String) async throws {
        _ = try await send(.DELETE, key: key, query: [("uploadId", uploadID)], accept: [200, 204, 404])
    }

    public func listMultipartUploads(prefix: String) async throws -> [PendingUpload] {
        var uploads: [PendingUpload] = []
        var keyMarker: String?
        var idMarker: String?
        repeat {
            var query = [("uploads", ""), ("prefix", prefix)]
            if let keyMarker { query.append(("key-marker", keyMarker)) }
            if let idMarker { query.append(("upload-id-marker", idMarker)) }
            let r = try await send(.GET, key: nil, query: query)
            let xml = S3XML(r.body)
            for upload in xml.elements("Upload") {
                guard let key = upload.value("Key"), let id = upload.value("UploadId") else { continue }
                uploads.append(PendingUpload(key: key, uploadID: id, initiated: upload.value("Initiated").flatMap(Self.parseISODate)))
            }
            if xml.value("IsTruncated") == "true", let next = xml.value("NextKeyMarker") {
                keyMarker = next
                idMarker = xml.value("NextUploadIdMarker")
            } else {
                keyMarker = nil
            }
        } while keyMarker != nil
        return uploads
    }

    // MARK: Requests

    struct Response {
        var status: Int
        var headers: HTTPHeaders
        var body: [UInt8]
        /// S3's error code from the body (`NoSuchBucket`), when there is one.
        var code: String? { body.isEmpty ? nil : S3XML(body).elements("Error").first?.value("Code") }
    }

    /// What a request sends.
    enum Body {
        case bytes([UInt8])
        /// Read from the file as it is sent (again on a retry).
        case file(FileRange)

        var count: Int {
            switch self {
            case .bytes(let b): b.count
            case .file(let f): f.length
            }
        }
    }

    /// Sends one request, retrying transient failures; answers outside `accept` throw.
    func send(
        _ method: HTTPMethod, key: String?, query: [(String, String)] = [], headers extra: [(String, String)] = [], body: Body? = nil,
        accept: Set<Int> = [200]
    ) async throws -> Response {
        let location = key.map { "\(name)/\($0)" } ?? name
        let payloadHash: String
        switch body {
        case .bytes(let bytes): payloadHash = SigV4Signer.sha256Hex(bytes)
        case .file(let file): payloadHash = try file.sha256Hex()
        case nil: payloadHash = SigV4Signer.emptyPayloadHash
        }
        var attempt = 0
        while true {
            try Task.checkCancellation()
            attempt += 1
            let request = makeRequest(method, key: key, query: query, headers: extra, body: body, payloadHash: payloadHash)
            let outcome: Result<Response, any Error>
            do {
                let timeout: TimeAmount = body.map { .seconds(Int64(60 + $0.count / (1 << 20))) } ?? .seconds(60)
                requests?.add()
                let response = try await http.execute(request, timeout: timeout)
                let bytes = try await response.body.collect(upTo: 1 << 30)
                outcome = .success(Response(status: Int(response.status.code), headers: response.headers, body: Array(bytes.readableBytesView)))
            } catch let error as CancellationError {
                throw error
            } catch {
                outcome = .failure(error)
            }
            let retryAfter: Duration?
            let reason: String
            switch outcome {
            case .success(let r) where accept.contains(r.status):
                return r
            case .success(let r) where Self.isTransient(r):
                retryAfter = r.headers.first(name: "retry-after").flatMap(Int.init).map { .seconds($0) }
                reason = "\(r.status) \(r.code ?? "")"
            case .success(let r):
                throw error(for: r, key: key)
            case .failure(let e):
                retryAfter = nil
                reason = "\(e)"
            }
            guard attempt < retry.maxAttempts else {
                throw SluiceError(
                    .unavailable, "\(method.rawValue) failed \(attempt) times, last: \(reason); is the S3 server at \(settings.endpoint) up?",
                    location: location, retryable: true)
            }
            let delay = retry.delay(attempt: attempt, retryAfter: retryAfter)
            logger.debug(
                "S3 request failed; retrying", metadata: ["request": "\(method.rawValue) \(location)", "reason": "\(reason)", "attempt": "\(attempt)"])
            try await Task.sleep(for: delay)
        }
    }

    func makeRequest(
        _ method: HTTPMethod, key: String?, query: [(String, String)], headers extra: [(String, String)], body: Body?, payloadHash: String
    ) -> HTTPClientRequest {
        let host = endpointURL.host!
        let port = endpointURL.port.map { ":\($0)" } ?? ""
        let hostHeader: String
        var path: String
        if settings.pathStyle {
            hostHeader = host + port
            path = "/\(bucket)" + (key.map { "/" + $0 } ?? "")
        } else {
            hostHeader = "\(bucket).\(host)\(port)"
            path = "/" + (key ?? "")
        }
        path = SigV4Signer.encodePath(path)
        let queryString = query.map { "\(SigV4Signer.encode($0.0))=\(SigV4Signer.encode($0.1))" }.joined(separator: "&")
        let scheme = endpointURL.scheme ?? "https"
        let base = endpointURL.path.hasSuffix("/") ? String(endpointURL.path.dropLast()) : endpointURL.path
        var request = HTTPClientRequest(url: "\(scheme)://\(hostHeader)\(base)\(path)" + (queryString.isEmpty ? "" : "?\(queryString)"))
        request.method = method
        var signed = [("host", hostHeader)] + extra
        signed.append(
            contentsOf: signer.sign(method: method.rawValue, path: base + path, query: query, headers: signed, payloadHash: payloadHash, date: Date()))
        for (name, value) in signed { request.headers.replaceOrAdd(name: name, value: value) }
        // Names Sluice in the bucket's access logs (unsigned), so lifecycle runs' reads are not
        // taken for readers of a lake (``S3AccessLogRecord``).
        request.headers.replaceOrAdd(name: "user-agent", value: userAgent)
        switch body {
        case .bytes(let bytes):
            // Handed over as a collection: the client copies it into buffers 4 MB at a time as it
            // sends, instead of a second copy of the whole body.
            request.body = .bytes(bytes)
        case .file(let file):
            request.body = .stream(file.chunks, length: .known(Int64(file.length)))
        case nil:
            break
        }
        return request
    }

    static func isTransient(_ r: Response) -> Bool {
        if [429, 500, 502, 503, 504].contains(r.status) { return true }
        return r.status == 400 && r.code == "RequestTimeout"
    }

    /// A clear, non-retryable error for an answer S3 gave.
    func error(for r: Response, key: String?) -> SluiceError {
        let xml = S3XML(r.body).elements("Error").first
        let code = xml?.value("Code") ?? "HTTP \(r.status)"
        let message = xml?.value("Message").map { ": \($0)" } ?? ""
        let location = key.map { "\(name)/\($0)" } ?? name
        switch (r.status, code) {
        case (_, "SignatureDoesNotMatch"):
            return SluiceError(
                .authentication,
                "S3 refused the signature for bucket '\(bucket)' (\(code)\(message)); the secret access key for \(settings.accessKeyID) is wrong",
                location: location)
        case (_, "InvalidAccessKeyId"):
            return SluiceError(
                .authentication,
                "S3 does not know the access key \(settings.accessKeyID) (\(code), bucket '\(bucket)'); check AWS_ACCESS_KEY_ID or storage.access_key_id",
                location: location)
        case (403, _):
            return SluiceError(
                .authentication,
                "access denied to bucket '\(bucket)'\(key.map { " key '\($0)'" } ?? "") (\(code)\(message)); check the credentials' permissions",
                location: location)
        case (404, "NoSuchBucket"):
            return SluiceError(.configuration, "the bucket '\(bucket)' does not exist at \(settings.endpoint); create it first", location: location)
        case (301, _), (_, "AuthorizationHeaderMalformed"), (_, "PermanentRedirect"), (_, "IllegalLocationConstraintException"):
            let region = r.headers.first(name: "x-amz-bucket-region") ?? xml?.value("Region")
            return SluiceError(
                .configuration,
                "the bucket '\(bucket)' is not in region \(settings.region)"
                    + (region.map { "; it is in \($0): set storage.region: \($0)" } ?? "; set storage.region to the bucket's region"),
                location: location)
        default:
            return SluiceError(.io, "S3 answered \(r.status) \(code)\(message)", location: location)
        }
    }

    static func unquote(_ etag: String) -> String {
        var e = etag
        if e.hasPrefix("W/") { e.removeFirst(2) }
        if e.hasPrefix("\"") && e.hasSuffix("\"") && e.count >= 2 { e = String(e.dropFirst().dropLast()) }
        return e
    }

    static func parseISODate(_ text: String) -> Date? {
        let f = ISO8601DateFormatter()
        f.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        if let d = f.date(from: text) { return d }
        f.formatOptions = [.withInternetDateTime]
        return f.date(from: text)
    }

    static func parseHTTPDate(_ text: String) -> Date? {
        let f = DateFormatter()
        f.locale = Locale(identifier: "en_US_POSIX")
        f.timeZone = TimeZone(identifier: "GMT")
        f.dateFormat = "EEE, dd MMM yyyy HH:mm:ss zzz"
        return f.date(from: text)
    }
}
