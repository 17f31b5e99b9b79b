import AsyncHTTPClient
import Foundation
import Logging
import NIOCore
import NIOHTTP1
import SluiceCore
import Synchronization

/// A response the client accepted (2xx).
struct APIResponse {
    var status: Int
    var headers: HTTPHeaders
    var body: ByteBuffer
}

/// Sends the source's requests politely and persistently: authentication (an OAuth2 token
/// cached and refreshed), a client-side rate limit, the server's own limits (`Retry-After`,
/// `X-RateLimit-*`, `RateLimit-*`), and retries with exponential backoff and jitter for
/// timeouts, connection errors, 408, 429 and 5xx. Other 4xx answers stop with the URL (secrets
/// masked), the status and an excerpt of the body.
///
/// An actor: fan-out fetches several pages at once, sharing the rate limit and the token.
actor HTTPAPIClient {
    let options: HTTPAPISourceOptions
    let logger: Logger
    nonisolated let masker: SecretMasker
    var limiter: RateLimiter?
    var token: OAuth2Token?
    /// The server said its quota is spent until then (`X-RateLimit-Remaining: 0`).
    var pausedUntil: ContinuousClock.Instant?
    /// The most a response may hold.
    static let maxBodyBytes = 1 << 30
    /// A client of its own: a refused connection fails at once (this client's backoff retries),
    /// where the shared client would try to connect again until the request's deadline.
    nonisolated let http: HTTPClient

    /// Counts the requests sent (cost accounting).
    nonisolated let requests: RequestTally?

    init(options: HTTPAPISourceOptions, logger: Logger, requests: RequestTally? = nil) {
        self.options = options
        self.logger = logger
        self.requests = requests
        masker = SecretMasker(options: options)
        limiter = options.rateLimit.map { RateLimiter(perSecond: $0.requestsPerSecond, burst: $0.burst) }
        var configuration = HTTPClient.Configuration()
        configuration.connectionPool.retryConnectionEstablishment = false
        configuration.timeout.connect = .seconds(10)
        http = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
    }

    /// Closes the connections. Call once, when the reader closes.
    func shutdown() async {
        try? await http.shutdown()
    }

    /// Fetches `url`, retrying what is worth retrying; throws a ``SluiceError`` otherwise.
    func fetch(_ url: URL) async throws -> APIResponse {
        var failures = 0
        var refreshedToken = false
        let policy = RetryPolicy(maxAttempts: options.maxRetries, baseDelay: .milliseconds(500), maxDelay: .seconds(60))
        while true {
            try Task.checkCancellation()
            if let until = pausedUntil {
                if until > .now { try await Task.sleep(until: until) }
                if let current = pausedUntil, current <= .now { pausedUntil = nil }
            }
            if let wait = limiter?.reserve(), wait > .zero { try await Task.sleep(for: wait) }
            let shown = masker.mask(url.absoluteString)
            let request: HTTPClientRequest
            do {
                request = try await makeRequest(url)
            } catch let error as SluiceError where error.isRetryable {
                // The OAuth2 token endpoint failed: retried like the request itself.
                failures += 1
                guard failures <= options.maxRetries else {
                    throw SluiceError(error.code, "\(error.message) (tried \(failures) times)", location: error.location, retryable: false)
                }
                let delay = policy.delay(attempt: failures)
                logger.warning("fetching a token failed; retrying", metadata: ["error": "\(error)", "in": "\(delay)"])
                try await Task.sleep(for: delay)
                continue
            }
            let response: HTTPClientResponse
            let body: ByteBuffer
            do {
                requests?.add()
                response = try await http.execute(request, timeout: Self.timeAmount(options.timeout))
                body = try await response.body.collect(upTo: Self.maxBodyBytes)
            } catch let error as CancellationError {
                throw error
            } catch {
                failures += 1
                guard failures <= options.maxRetries else {
                    // Retried as `max_retries` says: the pipeline does not start the pull over.
                    throw SluiceError(
                        .connection, "\(options.method.rawValue) \(shown) failed: \(masker.mask("\(error)")) (tried \(failures) times)", location: shown,
                        retryable: false)
                }
                let delay = policy.delay(attempt: failures)
                logger.warning("request failed; retrying", metadata: ["url": "\(shown)", "error": "\(masker.mask("\(error)"))", "in": "\(delay)"])
                try await Task.sleep(for: delay)
                continue
            }
            let status = Int(response.status.code)
            notePausedQuota(response.headers)
            if (200..<300).contains(status) { return APIResponse(status: status, headers: response.headers, body: body) }
            let retryAfter = Self.retryAfter(response.headers)
            if status == 429 {
                // The server's limit: wait as asked; not a failure.
                let wait = retryAfter ?? policy.delay(attempt: max(failures, 1))
                logger.info("rate limited by the API (429); waiting", metadata: ["url": "\(shown)", "seconds": "\(wait)"])
                try await Task.sleep(for: wait)
                continue
            }
            if status == 401, case .oauth2 = options.auth, !refreshedToken {
                refreshedToken = true
                token = nil
                continue
            }
            let excerpt = masker.mask(String(decoding: body.readableBytesView.prefix(300), as: UTF8.self))
            if status == 408 || status >= 500 {
                failures += 1
                guard failures <= options.maxRetries else {
                    throw SluiceError(
                        .unavailable, "\(options.method.rawValue) \(shown) answered \(status) \(failures) times in a row: \(excerpt)", location: shown,
                        retryable: false)
                }
                let delay = policy.delay(attempt: failures, retryAfter: retryAfter)
                logger.warning("the API answered \(status); retrying", metadata: ["url": "\(shown)", "in": "\(delay)"])
                try await Task.sleep(for: delay)
                continue
            }
            let code: SluiceError.Code = status == 401 || status == 403 ? .authentication : .configuration
            throw SluiceError(
                code, "\(options.method.rawValue) \(shown) answered \(status) \(response.status.reasonPhrase): \(excerpt)",
                location: shown, retryable: false)
        }
    }

    func makeRequest(_ url: URL) async throws -> HTTPClientRequest {
        var target = url
        if case let .apiKey(name, true, value) = options.auth, var c = URLComponents(url: url, resolvingAgainstBaseURL: true) {
            c.queryItems = (c.queryItems ?? []) + [URLQueryItem(name: name, value: value)]
            target = c.url ?? url
        }
        var request = HTTPClientRequest(url: target.absoluteString)
        request.method = options.method == .post ? .POST : .GET
        request.headers.add(name: "User-Agent", value: "sluice/\(SluiceVersion.current)")
        request.headers.add(name: "Accept", value: options.format == .csv ? "text/csv" : "application/json")
        for (name, value) in options.headers { request.headers.replaceOrAdd(name: name, value: value) }
        switch options.auth {
        case let .bearer(token)?: request.headers.replaceOrAdd(name: "Authorization", value: "Bearer \(token)")
        case let .basic(user, password)?:
            request.headers.replaceOrAdd(name: "Authorization", value: "Basic \(Data("\(user):\(password)".utf8).base64EncodedString())")
        case let .apiKey(name, false, value)?: request.headers.replaceOrAdd(name: name, value: value)
        case let .oauth2(credentials)?:
            let token = try await currentToken(credentials)
            request.headers.replaceOrAdd(name: "Authorization", value: "Bearer \(token)")
        case .apiKey?, nil: break
        }
        if let body = options.body {
            if !request.headers.contains(name: "Content-Type") { request.headers.add(name: "Content-Type", value: "application/json") }
            request.body = .bytes(ByteBuffer(string: body))
        }
        return request
    }

    /// The cached OAuth2 token, fetched again a minute (or a quarter of its lifetime) before it expires.
    func currentToken(_ credentials: OAuth2ClientCredentials) async throws -> String {
        if let token, token.refreshAt > .now { return token.value }
        let fresh = try await OAuth2Token.fetch(credentials, using: http, timeout: Self.timeAmount(options.timeout), masker: masker)
        masker.add(fresh.value)
        token = fresh
        logger.debug("OAuth2 token fetched", metadata: ["expires_in": "\(fresh.lifetime)"])
        return fresh.value
    }

    /// `X-RateLimit-Remaining: 0` (GitHub) or `RateLimit-Remaining: 0` (IETF draft) with a reset:
    /// no request until then.
    func notePausedQuota(_ headers: HTTPHeaders) {
        let remaining = headers.first(name: "X-RateLimit-Remaining") ?? headers.first(name: "RateLimit-Remaining")
        guard let remaining, Int(remaining.trimmingCharacters(in: .whitespaces)) == 0 else { return }
        var wait: Double?
        if let reset = headers.first(name: "X-RateLimit-Reset").flatMap({ Double($0.trimmingCharacters(in: .whitespaces)) }) {
            // Epoch seconds (GitHub), or seconds to wait when the number is small.
            wait = reset > 1_000_000_000 ? reset - Date().timeIntervalSince1970 : reset
        } else if let reset = headers.first(name: "RateLimit-Reset").flatMap({ Double($0.trimmingCharacters(in: .whitespaces)) }) {
            wait = reset
        }
        guard let wait, wait > 0 else { return }
        let capped = min(wait, 3600)
        logger.info("the API's quota is spent; waiting for its reset", metadata: ["seconds": "\(Int(capped.rounded(.up)))"])
        pausedUntil = .now + .milliseconds(Int64(capped * 1000))
    }

    /// `Retry-After` in seconds or as an HTTP date.
    static func retryAfter(_ headers: HTTPHeaders) -> Duration? {
        guard let value = headers.first(name: "Retry-After")?.trimmingCharacters(in: .whitespaces) else { return nil }
        if let seconds = Double(value), seconds >= 0 { return .milliseconds(Int64(min(seconds, 3600) * 1000)) }
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "GMT")
        formatter.dateFormat = "EEE, dd MMM yyyy HH:mm:ss zzz"
        guard let date = formatter.date(from: value) else { return nil }
        return .milliseconds(Int64(max(0, min(date.timeIntervalSinceNow, 3600)) * 1000))
    }

    static func timeAmount(_ d: Duration) -> TimeAmount {
        .nanoseconds(d.components.seconds * 1_000_000_000 + d.components.attoseconds / 1_000_000_000)
    }
}

/// Replaces secrets (tokens, passwords, keys) with `***` in anything that may be shown.
final class SecretMasker: Sendable {
    private let secrets: Mutex<[String]>

    init(options: HTTPAPISourceOptions) {
        secrets = Mutex((options.auth?.secrets ?? []).filter { $0.count >= 4 })
    }

    func add(_ secret: String) {
        if secret.count >= 4 { secrets.withLock { $0.append(secret) } }
    }

    func mask(_ text: String) -> String {
        var out = text
        for s in secrets.withLock({ $0 }) {
            out = out.replacingOccurrences(of: s, with: "***")
            if let encoded = s.addingPercentEncoding(withAllowedCharacters: .alphanumerics), encoded != s {
                out = out.replacingOccurrences(of: encoded, with: "***")
            }
        }
        return out
    }
}
