import HTTPTypes
import SluiceCore
import SluiceFormats

/// Options of the `http` source, one push stream served by `sluice serve`; each one is declared,
/// with its default, in ``HTTPSource/spec``.
public struct HTTPStreamOptions: Decodable, Sendable {
    public enum Auth: String, Sendable {
        case none
        case apiKey = "api_key"
        case hmac
    }
    public enum OnInvalid: String, Sendable {
        case reject
        case deadLetter = "dead_letter"
    }

    public var stream: String
    public var auth: Auth = .none
    public var hmac: HMACOptions?
    public var rateLimit: RateLimitOptions?
    public var keyRateLimit: RateLimitOptions?
    public var fields: [Field] = []
    public var onInvalid: OnInvalid = .reject
    public var maxBody = 10 << 20
    public var limits = JSONRecordLimits()
    /// Top-level fields one request may add to the stream (names it does not have yet).
    public var maxNewFields = 100
    /// Top-level fields the stream may have in all (declared, `received_at` and learned ones),
    /// at most the decoder's cap, ``NDJSONDecoder/maxColumns``.
    public var maxColumns = NDJSONDecoder.maxColumns
    public var maxQueueRecords = 1_000_000
    public var maxQueueBytes = 256 << 20
    public var idempotencyTTL: Duration = .seconds(7 * 86_400)
    public var receivedAt: String? = "received_at"

    enum CodingKeys: String, CodingKey {
        case stream, auth, hmac, columns, required
        case rateLimit = "rate_limit"
        case keyRateLimit = "key_rate_limit"
        case onInvalid = "on_invalid"
        case maxBody = "max_body"
        case maxRecords = "max_records"
        case maxDepth = "max_depth"
        case maxFields = "max_fields"
        case maxNewFields = "max_new_fields"
        case maxColumns = "max_columns"
        case maxQueueRecords = "max_queue_records"
        case maxQueueBytes = "max_queue_bytes"
        case idempotencyTTL = "idempotency_ttl"
        case receivedAt = "received_at"
    }

    public init(stream: String) { self.stream = stream }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        stream = try c.decode(String.self, forKey: .stream)
        guard stream.range(of: #"^[A-Za-z0-9_.-]{1,128}$"#, options: .regularExpression) != nil else {
            throw try c.superDecoder(forKey: .stream).configError("stream names may use letters, digits, '_', '-' and '.' only (it appears in the URL)")
        }
        if let a = try c.decodeIfPresent(String.self, forKey: .auth) {
            guard let parsed = Auth(rawValue: a) else {
                throw try c.superDecoder(forKey: .auth).configError("unknown auth '\(a)'; use none, api_key or hmac")
            }
            auth = parsed
        }
        hmac = try c.decodeIfPresent(HMACOptions.self, forKey: .hmac)
        if auth == .hmac, hmac == nil {
            throw try c.superDecoder(forKey: .auth).configError("auth: hmac needs `hmac: { secret: \"${SECRET}\" }`")
        }
        rateLimit = try c.decodeIfPresent(RateLimitOptions.self, forKey: .rateLimit)
        keyRateLimit = try c.decodeIfPresent(RateLimitOptions.self, forKey: .keyRateLimit)
        if let declared = try c.decodeDeclaredColumns(forKey: .columns) {
            fields += declared
        }
        if let required = try c.decodeIfPresent([String].self, forKey: .required) {
            for name in required {
                guard let i = fields.firstIndex(where: { $0.name == name }) else {
                    throw try c.superDecoder(forKey: .required).configError("'\(name)' is not a declared column; declare it under `columns` with its type")
                }
                fields[i].nullable = false
            }
        }
        if let o = try c.decodeIfPresent(String.self, forKey: .onInvalid) {
            guard let parsed = OnInvalid(rawValue: o) else {
                throw try c.superDecoder(forKey: .onInvalid).configError("unknown on_invalid '\(o)'; use reject or dead_letter")
            }
            onInvalid = parsed
        }
        if let size = try c.decodeIfPresent(ConfigByteSize.self, forKey: .maxBody) {
            guard size.bytes >= 1024, size.bytes <= 1 << 30 else {
                throw try c.superDecoder(forKey: .maxBody).configError("must be between 1KB and 1GB")
            }
            maxBody = size.bytes
        }
        limits.maxRecords = try c.decodeIfPresent(Int.self, forKey: .maxRecords, in: 1...10_000_000) ?? limits.maxRecords
        limits.maxDepth = try c.decodeIfPresent(Int.self, forKey: .maxDepth, in: 1...512) ?? limits.maxDepth
        limits.maxFields = try c.decodeIfPresent(Int.self, forKey: .maxFields, in: 1...100_000) ?? limits.maxFields
        maxNewFields = try c.decodeIfPresent(Int.self, forKey: .maxNewFields, in: 1...NDJSONDecoder.maxColumns) ?? maxNewFields
        maxColumns = try c.decodeIfPresent(Int.self, forKey: .maxColumns, in: 1...NDJSONDecoder.maxColumns) ?? maxColumns
        maxQueueRecords = try c.decodeIfPresent(Int.self, forKey: .maxQueueRecords, in: 1...1_000_000_000) ?? maxQueueRecords
        if let size = try c.decodeIfPresent(ConfigByteSize.self, forKey: .maxQueueBytes) { maxQueueBytes = size.bytes }
        if let ttl = try c.decodeIfPresent(ConfigDuration.self, forKey: .idempotencyTTL) { idempotencyTTL = ttl.duration }
        if c.contains(.receivedAt) {
            let name = try c.decodeIfPresent(String.self, forKey: .receivedAt) ?? ""
            receivedAt = name.isEmpty ? nil : name
            if let name = receivedAt, name.contains("\"") || name.contains("\\") {
                throw try c.superDecoder(forKey: .receivedAt).configError("a field name without quotes or backslashes is expected")
            }
        }
        if decodeFields.count > maxColumns {
            throw try c.superDecoder(forKey: c.contains(.maxColumns) ? .maxColumns : .columns).configError(
                "the stream declares \(decodeFields.count) columns (received_at included) but may have at most \(maxColumns) (`max_columns`)")
        }
    }

    /// The columns records are decoded into: the arrival stamp first, then the declared ones.
    public var decodeFields: [Field] {
        var all: [Field] = []
        if let receivedAt { all.append(Field(receivedAt, .timestamp)) }
        all += fields.filter { $0.name != receivedAt }
        return all
    }
}

/// `hmac: { secret: ..., tolerance: 5m }`: requests are signed with HMAC-SHA256.
///
/// The sender sends `X-Sluice-Timestamp: <unix seconds>` and
/// `X-Sluice-Signature: sha256=<hex of HMAC-SHA256(secret, "<timestamp>.<raw body>")>`.
public struct HMACOptions: Decodable, Sendable {
    public var secret: String
    public var tolerance: Duration = .seconds(300)
    public var signatureHeader = "X-Sluice-Signature"
    public var timestampHeader = "X-Sluice-Timestamp"

    var signatureField: HTTPField.Name { HTTPField.Name(signatureHeader) ?? HTTPField.Name("X-Sluice-Signature")! }
    var timestampField: HTTPField.Name { HTTPField.Name(timestampHeader) ?? HTTPField.Name("X-Sluice-Timestamp")! }

    enum CodingKeys: String, CodingKey {
        case secret, tolerance
        case signatureHeader = "signature_header"
        case timestampHeader = "timestamp_header"
    }

    public init(secret: String) { self.secret = secret }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        secret = try c.decode(String.self, forKey: .secret)
        if secret.utf8.count < 16 {
            throw try c.superDecoder(forKey: .secret).configError("the secret must be at least 16 bytes long (use `openssl rand -hex 32`)")
        }
        if let t = try c.decodeIfPresent(ConfigDuration.self, forKey: .tolerance) { tolerance = t.duration }
        signatureHeader = try c.decodeIfPresent(String.self, forKey: .signatureHeader) ?? signatureHeader
        timestampHeader = try c.decodeIfPresent(String.self, forKey: .timestampHeader) ?? timestampHeader
        if HTTPField.Name(signatureHeader) == nil {
            throw try c.superDecoder(forKey: .signatureHeader).configError("'\(signatureHeader)' is not a valid HTTP header name")
        }
        if HTTPField.Name(timestampHeader) == nil {
            throw try c.superDecoder(forKey: .timestampHeader).configError("'\(timestampHeader)' is not a valid HTTP header name")
        }
    }
}

/// `rate_limit: { requests_per_second: 100, burst: 200 }`: a token bucket.
public struct RateLimitOptions: Decodable, Sendable, Hashable {
    public var requestsPerSecond: Double
    public var burst: Int

    enum CodingKeys: String, CodingKey {
        case requestsPerSecond = "requests_per_second"
        case burst
    }

    public init(requestsPerSecond: Double, burst: Int) {
        self.requestsPerSecond = requestsPerSecond
        self.burst = burst
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        requestsPerSecond = try c.decode(Double.self, forKey: .requestsPerSecond)
        guard requestsPerSecond > 0, requestsPerSecond <= 10_000_000 else {
            throw try c.superDecoder(forKey: .requestsPerSecond).configError("must be a positive number of requests per second")
        }
        burst = try c.decodeIfPresent(Int.self, forKey: .burst, in: 1...100_000_000) ?? max(1, Int(requestsPerSecond.rounded(.up)))
    }
}
