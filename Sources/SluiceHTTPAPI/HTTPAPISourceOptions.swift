import Foundation
import SluiceCore

/// Options of the `http_api` source; each one is declared, with its default, in ``HTTPAPISource/spec``.
public struct HTTPAPISourceOptions: Decodable, Sendable {
    public enum Method: String, Sendable {
        case get = "GET"
        case post = "POST"
    }
    public enum Format: String, Sendable { case json, ndjson, csv }

    public var url: String
    public var method: Method = .get
    public var headers: [(String, String)] = []
    public var params: [(String, String)] = []
    public var body: String?
    public var auth: HTTPAPIAuth?
    /// Keys leading to the array of records (`data.items` → `["data", "items"]`); empty: the body is the array.
    public var records: [String] = []
    public var format: Format = .json
    public var pagination: HTTPAPIPagination = .none
    public var maxPages: Int?
    public var incremental: HTTPAPIIncremental?
    public var rateLimit: HTTPAPIRateLimit?
    public var maxRetries = 8
    public var timeout: Duration = .seconds(30)
    public var declared: [Field] = []
    public var schedule: ExtractSchedule?
    /// Set by `sluice backfill`: the pass sends `from` (and `to` as `incremental.until_param`)
    /// and keeps only records whose cursor is in [from, to).
    public var backfill: (from: String, to: String)?
    /// A child endpoint read for each record of these pages; the children are the records.
    public var fanOut: HTTPAPIFanOut?

    enum CodingKeys: String, CodingKey {
        case url, method, headers, params, body, auth, records, format, pagination, incremental, timeout, columns, schedule, poll
        case fanOut = "fan_out"
        case maxPages = "max_pages"
        case rateLimit = "rate_limit"
        case maxRetries = "max_retries"
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        url = try c.decode(String.self, forKey: .url)
        guard let parsed = URLComponents(string: url), let scheme = parsed.scheme?.lowercased(), scheme == "http" || scheme == "https", parsed.host != nil
        else {
            throw try c.superDecoder(forKey: .url).configError("an absolute http:// or https:// URL is expected, found '\(url)'")
        }
        if let m = try c.decodeIfPresent(String.self, forKey: .method) {
            guard let parsed = Method(rawValue: m.uppercased()) else {
                throw try c.superDecoder(forKey: .method).configError("unknown method '\(m)'; use GET or POST")
            }
            method = parsed
        }
        headers = try c.decodeIfPresent(OrderedMapping<String>.self, forKey: .headers)?.entries ?? []
        params = try c.decodeIfPresent(OrderedMapping<String>.self, forKey: .params)?.entries ?? []
        body = try c.decodeIfPresent(String.self, forKey: .body)
        if body != nil, method == .get {
            throw try c.superDecoder(forKey: .body).configError("`body` is sent with method: POST (a search request); GET requests have no body")
        }
        auth = try c.decodeIfPresent(HTTPAPIAuth.self, forKey: .auth)
        if let auth, auth.secrets.contains(where: \.isEmpty) {
            throw try c.superDecoder(forKey: .auth).configError("the secret is empty: is its environment variable set?")
        }
        records = try c.decodeKeyPath(forKey: .records) ?? []
        if let f = try c.decodeIfPresent(String.self, forKey: .format) {
            guard let parsed = Format(rawValue: f) else {
                throw try c.superDecoder(forKey: .format).configError("unknown format '\(f)'; use json, ndjson or csv")
            }
            format = parsed
        }
        if format != .json, !records.isEmpty {
            throw try c.superDecoder(forKey: .records).configError("`records` picks the array out of a JSON body; an \(format.rawValue) body is the records")
        }
        if c.contains(.pagination) {
            let nested = try c.superDecoder(forKey: .pagination)
            let p = try HTTPAPIPaginationConfig(from: nested)
            pagination = p.style
            maxPages = p.maxPages
            if case let .cursor(cursor) = pagination, cursor.fromRecord != nil, format != .json {
                throw nested.configError("a cursor taken from the last record needs JSON responses")
            }
        }
        incremental = try c.decodeIfPresent(HTTPAPIIncremental.self, forKey: .incremental)
        if incremental != nil, format == .csv {
            throw try c.superDecoder(forKey: .incremental).configError(
                "the incremental cursor is read from JSON or NDJSON records; CSV responses have no typed fields")
        }
        rateLimit = try c.decodeIfPresent(HTTPAPIRateLimit.self, forKey: .rateLimit)
        maxRetries = try c.decodeIfPresent(Int.self, forKey: .maxRetries, in: 0...100) ?? maxRetries
        if let t = try c.decodeIfPresent(ConfigDuration.self, forKey: .timeout) {
            guard t.duration > .zero else { throw try c.superDecoder(forKey: .timeout).configError("the timeout must be positive") }
            timeout = t.duration
        }
        declared = try c.decodeDeclaredColumns(forKey: .columns) ?? []
        fanOut = try c.decodeIfPresent(HTTPAPIFanOut.self, forKey: .fanOut)
        if fanOut != nil, format != .json {
            throw try c.superDecoder(forKey: .fanOut).configError("fan-out reads the parent records' fields from JSON responses")
        }
        if fanOut != nil, incremental != nil {
            throw try c.superDecoder(forKey: .fanOut).configError(
                "`incremental` with `fan_out` is not supported yet: the cursor of the children and of the parents differ; pull the children on a schedule, with a dedupe key"
            )
        }
        schedule = try ExtractSchedule.decode(from: c, schedule: .schedule, poll: .poll, allowPoll: incremental != nil)
    }
}

/// How requests authenticate. Secrets are never logged and are masked in errors.
public enum HTTPAPIAuth: Decodable, Sendable {
    case bearer(String)
    case basic(username: String, password: String)
    /// An API key in a header (`header`) or in a query parameter (`query`).
    case apiKey(name: String, inQuery: Bool, value: String)
    case oauth2(OAuth2ClientCredentials)

    enum CodingKeys: String, CodingKey { case bearer, basic, api_key, oauth2 }
    struct Basic: Decodable { var username: String; var password: String }
    struct APIKey: Decodable { var header: String?; var query: String?; var value: String }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        guard c.allKeys.count == 1, let key = c.allKeys.first else {
            throw decoder.configError("give exactly one of bearer, basic, api_key or oauth2")
        }
        switch key {
        case .bearer: self = .bearer(try c.decode(String.self, forKey: .bearer))
        case .basic:
            let b = try c.decode(Basic.self, forKey: .basic)
            self = .basic(username: b.username, password: b.password)
        case .api_key:
            let k = try c.decode(APIKey.self, forKey: .api_key)
            guard (k.header == nil) != (k.query == nil), let name = k.header ?? k.query, !name.isEmpty else {
                throw try c.superDecoder(forKey: .api_key).configError("name where the key goes: `header: X-API-Key` or `query: api_key` (one of them)")
            }
            self = .apiKey(name: name, inQuery: k.query != nil, value: k.value)
        case .oauth2: self = .oauth2(try c.decode(OAuth2ClientCredentials.self, forKey: .oauth2))
        }
    }

    /// The secret values to mask wherever a message could show them.
    var secrets: [String] {
        switch self {
        case let .bearer(t): [t]
        case let .basic(_, p): [p, Data(p.utf8).base64EncodedString()]
        case let .apiKey(_, _, v): [v]
        case let .oauth2(o): [o.clientSecret]
        }
    }
}

/// OAuth 2.0 client credentials (RFC 6749 section 4.4): a token fetched from `token_url`, cached,
/// and fetched again shortly before it expires (or when the API answers 401).
public struct OAuth2ClientCredentials: Decodable, Sendable {
    public var tokenURL: String
    public var clientID: String
    public var clientSecret: String
    public var scope: String?

    enum CodingKeys: String, CodingKey {
        case scope
        case tokenURL = "token_url"
        case clientID = "client_id"
        case clientSecret = "client_secret"
    }
}

/// How the next page is found.
public enum HTTPAPIPagination: Sendable, Equatable {
    /// One request per pass.
    case none
    /// RFC 8288 `Link` header with this relation (GitHub: `next`).
    case linkHeader(relation: String)
    /// The next page's URL at this path of the body (absent or null: last page).
    case nextURL(path: [String])
    case cursor(HTTPAPICursorPagination)
    /// `param` = records so far; `limit_param` = `limit`. A short or empty page is the last.
    case offset(param: String, limitParam: String?, limit: Int?)
    /// `param` = page number from `start`; `size_param` = `size`. An empty (or short) page is the last.
    case page(param: String, start: Int, sizeParam: String?, size: Int?)
}

/// A cursor sent as `param`: read from the body (`path`) or from the last record (`from_record`,
/// Stripe's `starting_after`), while `has_more` (when given) says there is more.
public struct HTTPAPICursorPagination: Sendable, Equatable {
    public var param: String
    public var path: [String]?
    public var fromRecord: String?
    public var hasMore: [String]?
}

struct HTTPAPIPaginationConfig: Decodable {
    var style: HTTPAPIPagination = .none
    var maxPages: Int?

    enum CodingKeys: String, CodingKey {
        case cursor, offset, page
        case linkHeader = "link_header"
        case nextURL = "next_url"
        case maxPages = "max_pages"
    }
    struct Cursor: Decodable {
        var param: String
        var path: String?
        var from_record: String?
        var has_more: String?
    }
    struct Offset: Decodable {
        var param: String?
        var limit_param: String?
        var limit: Int?
    }
    struct Page: Decodable {
        var param: String?
        var start: Int?
        var size_param: String?
        var size: Int?
    }

    init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        maxPages = try c.decodeIfPresent(Int.self, forKey: .maxPages, in: 1...100_000_000)
        let styles = c.allKeys.filter { $0 != .maxPages }
        guard styles.count <= 1 else {
            throw decoder.configError("give one pagination style: link_header, next_url, cursor, offset or page")
        }
        switch styles.first {
        case nil: style = .none
        case .linkHeader: style = .linkHeader(relation: try c.decode(String.self, forKey: .linkHeader))
        case .nextURL: style = .nextURL(path: try c.decodeKeyPath(forKey: .nextURL) ?? [])
        case .cursor:
            let k = try c.decode(Cursor.self, forKey: .cursor)
            let at = try c.superDecoder(forKey: .cursor)
            func path(_ text: String) throws -> [String] { try keyPath(text, at: at) }
            guard (k.path == nil) != (k.from_record == nil) else {
                throw try c.superDecoder(forKey: .cursor).configError(
                    "say where the next cursor is: `path: meta.next_cursor` (in the body) or `from_record: id` (the last record's field, Stripe style)")
            }
            style = .cursor(
                HTTPAPICursorPagination(param: k.param, path: try k.path.map(path), fromRecord: k.from_record, hasMore: try k.has_more.map(path)))
        case .offset:
            let o = try c.decode(Offset.self, forKey: .offset)
            if let l = o.limit, l < 1 { throw try c.superDecoder(forKey: .offset).configError("`limit` must be positive") }
            style = .offset(param: o.param ?? "offset", limitParam: o.limit_param, limit: o.limit)
        case .page:
            let p = try c.decode(Page.self, forKey: .page)
            if let s = p.size, s < 1 { throw try c.superDecoder(forKey: .page).configError("`size` must be positive") }
            style = .page(param: p.param ?? "page", start: p.start ?? 1, sizeParam: p.size_param, size: p.size)
        case .maxPages?: style = .none
        }
    }
}

/// Only records changed since the last pass: the greatest `field` seen is kept in the checkpoint
/// and sent as `param` (exactly as the API wrote it, minus `lookback` for timestamps).
public struct HTTPAPIIncremental: Decodable, Sendable {
    public var field: String
    public var param: String
    public var lookback: Duration?
    /// The API's upper-bound parameter, sent by `sluice backfill` with the end of its range.
    public var untilParam: String?
    /// Fields identifying a record: with the cursor field, a record version; repeats (lookback,
    /// an inclusive `since`) are dropped by it.
    public var key: [String]

    enum CodingKeys: String, CodingKey {
        case field, param, lookback, key
        case untilParam = "until_param"
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        field = try c.decode(String.self, forKey: .field)
        param = try c.decode(String.self, forKey: .param)
        key = try c.decodeIfPresent([String].self, forKey: .key) ?? []
        untilParam = try c.decodeIfPresent(String.self, forKey: .untilParam)
        if let l = try c.decodeIfPresent(ConfigDuration.self, forKey: .lookback) {
            guard key.isEmpty == false else {
                throw try c.superDecoder(forKey: .lookback).configError(
                    "`lookback` re-reads recent records and drops the repeats by record identity: name it with `key: [id]`")
            }
            lookback = l.duration
        }
    }
}

/// Client-side politeness: at most `requests_per_second` on average, `burst` at once.
public struct HTTPAPIRateLimit: Decodable, Sendable {
    public var requestsPerSecond: Double
    public var burst: Int

    enum CodingKeys: String, CodingKey {
        case burst
        case requestsPerSecond = "requests_per_second"
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        requestsPerSecond = try c.decode(Double.self, forKey: .requestsPerSecond)
        guard requestsPerSecond > 0 else { throw try c.superDecoder(forKey: .requestsPerSecond).configError("must be positive") }
        burst = try c.decodeIfPresent(Int.self, forKey: .burst, in: 1...10_000) ?? 1
    }
}

/// `data.items` as the keys `["data", "items"]`; an empty key (`data..items`, `.data`) is refused.
func keyPath(_ text: String, at decoder: any Decoder) throws -> [String] {
    let keys = text.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
    guard !keys.contains(where: \.isEmpty) else {
        throw decoder.configError("a path of keys separated by '.' is expected (e.g. data.items), found '\(text)'")
    }
    return keys
}

extension KeyedDecodingContainer {
    /// A key path option (see ``keyPath(_:at:)``), or nil when absent.
    func decodeKeyPath(forKey key: Key) throws -> [String]? {
        guard let text = try decodeIfPresent(String.self, forKey: key) else { return nil }
        return try keyPath(text, at: try superDecoder(forKey: key))
    }
}
