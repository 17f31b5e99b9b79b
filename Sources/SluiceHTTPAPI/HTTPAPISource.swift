import Foundation
import Logging
import SluiceCore
import SluiceFormats

/// Pulls records from an HTTP API, declaratively: a URL, authentication, where the records are
/// in the response, how to find the next page, and an incremental cursor.
///
/// Each page is one batch, and the checkpoint after it holds the next page's request (a URL, a
/// cursor, an offset or a page number) and the incremental cursor, so a crash resumes at the page
/// it was on. A finished pass leaves the greatest cursor value seen; the next pass (the next run,
/// or the next `schedule`d or `poll`ed pull) sends it as `incremental.param`.
public struct HTTPAPISource: Source {
    public var options: HTTPAPISourceOptions

    public init(options: HTTPAPISourceOptions) {
        self.options = options
    }

    public var isContinuous: Bool { options.schedule != nil }

    /// With `incremental.key`, a record version is its key plus its cursor value: records sent
    /// again (a lookback, an inclusive `since`, a crash between a page and its commit) are dropped.
    public var implicitDedupeKey: [String]? {
        guard let i = options.incremental, !i.key.isEmpty else { return nil }
        return i.key + (i.key.contains(i.field) ? [] : [i.field])
    }

    /// The pagination styles, for the source's pages and for fan-out's child pages.
    static let paginationOptions: [OptionSpec] = [
        OptionSpec("link_header", .string, example: "next", "Follow the `Link` header's link with this relation (GitHub style)."),
        OptionSpec("next_url", .string, example: "links.next", "Follow the URL at this path of the body; absent or null on the last page."),
        OptionSpec(
            "cursor",
            .object([
                OptionSpec("param", .string, required: true, example: "starting_after", "The query parameter that carries the cursor."),
                OptionSpec("path", .string, example: "meta.next_cursor", "The next cursor's path in the body."),
                OptionSpec("from_record", .string, example: "id", "Or: the last record's field is the cursor (Stripe style)."),
                OptionSpec("has_more", .string, example: "has_more", "A boolean at this path of the body says whether another page follows."),
            ]), example: "{ param: starting_after, from_record: id, has_more: has_more }",
            "A cursor read from each page and sent as `param` for the next one."),
        OptionSpec(
            "offset",
            .object([
                OptionSpec("param", .string, default: "offset", example: "offset", "The parameter that carries how many records to skip."),
                OptionSpec("limit_param", .string, example: "limit", "The parameter that carries the page size."),
                OptionSpec("limit", .integer(1...1_000_000), example: "100", "The page size; a shorter page is the last."),
            ]), example: "{ param: offset, limit_param: limit, limit: 100 }", "Offset and limit; an empty or short page is the last."),
        OptionSpec(
            "page",
            .object([
                OptionSpec("param", .string, default: "page", example: "page", "The parameter that carries the page number."),
                OptionSpec("start", .integer(0...1), default: "1", example: "0", "The first page's number."),
                OptionSpec("size_param", .string, example: "per_page", "The parameter that carries the page size."),
                OptionSpec("size", .integer(1...1_000_000), example: "100", "The page size; a shorter page is the last."),
            ]), example: "{ param: page, size_param: per_page, size: 100 }", "Page numbers; an empty or short page is the last."),
        OptionSpec("max_pages", .integer(1...100_000_000), example: "1000", "Stop a pass after this many pages."),
    ]

    public static let spec = ComponentSpec(
        type: "http_api",
        summary:
            "records pulled from a REST API: auth, a path to the records, pagination (Link header, next URL, cursor, offset, page), an incremental cursor, rate limits and retries",
        options: [
            OptionSpec(
                "url", .string, required: true, example: #""https://api.example.com/v1/items?per_page=100""#,
                "The first page's URL (`${ENV}` allowed). Its query parameters are kept on every page the source builds."),
            OptionSpec("method", .choice(["GET", "POST"]), default: "GET", example: "POST", "POST sends `body` (a search request)."),
            OptionSpec("headers", .map(.string), example: "{ Accept: application/vnd.github+json }", "Extra request headers."),
            OptionSpec("params", .map(.string), example: "{ state: all }", "Extra query parameters, on every page the source builds."),
            OptionSpec(
                "body", .string, example: #""{\"query\": \"status:active\"}""#, requires: ["method: POST"],
                "The POST body (JSON unless `headers` say otherwise)."),
            OptionSpec(
                "auth",
                .object([
                    OptionSpec("bearer", .string, example: #""${API_TOKEN}""#, secret: true, "`Authorization: Bearer <token>`."),
                    OptionSpec(
                        "basic",
                        .object([
                            OptionSpec("username", .string, required: true, example: "sluice", "The user name."),
                            OptionSpec("password", .string, required: true, example: #""${API_PASSWORD}""#, secret: true, "The password."),
                        ]), example: #"{ username: sluice, password: "${API_PASSWORD}" }"#, "HTTP Basic authentication."),
                    OptionSpec(
                        "api_key",
                        .object([
                            OptionSpec("header", .string, example: "X-API-Key", "The header that carries the key."),
                            OptionSpec("query", .string, example: "api_key", "Or the query parameter that carries it."),
                            OptionSpec("value", .string, required: true, example: #""${API_KEY}""#, secret: true, "The key."),
                        ]), example: #"{ header: X-API-Key, value: "${API_KEY}" }"#, "An API key in a header or a query parameter."),
                    OptionSpec(
                        "oauth2",
                        .object([
                            OptionSpec("token_url", .string, required: true, example: #""https://auth.example.com/oauth/token""#, "The token endpoint."),
                            OptionSpec("client_id", .string, required: true, example: #""${CLIENT_ID}""#, "The client id."),
                            OptionSpec("client_secret", .string, required: true, example: #""${CLIENT_SECRET}""#, secret: true, "The client secret."),
                            OptionSpec("scope", .string, example: "read:items", "The scope to ask for."),
                        ]), example: #"{ token_url: "https://auth.example.com/oauth/token", client_id: "${CLIENT_ID}", client_secret: "${CLIENT_SECRET}" }"#,
                        "OAuth 2.0 client credentials: the token is fetched, cached, and fetched again before it expires or after a 401."),
                ]), example: #"{ bearer: "${API_TOKEN}" }"#,
                "How requests authenticate (one of bearer, basic, api_key, oauth2). Secrets are never logged and are masked in errors."),
            OptionSpec(
                "records", .string, example: "data.items",
                "Keys leading to the array of records in a JSON response, separated by `.`. Default: the body is the array (or one record). Absent or null: an empty page."
            ),
            OptionSpec("format", .choice(["json", "ndjson", "csv"]), default: "json", example: "ndjson", "How responses hold the records."),
            OptionSpec(
                "pagination", .object(paginationOptions), example: "{ link_header: next }",
                "How the next page is found (one style). Without it, one request per pass. A pass also ends at an empty page."),
            OptionSpec(
                "incremental",
                .object([
                    OptionSpec(
                        "field", .string, required: true, example: "updated_at", "The record field that grows when a record changes (a timestamp or an id)."),
                    OptionSpec("param", .string, required: true, example: "since", "The query parameter the greatest value seen so far is sent in."),
                    OptionSpec(
                        "lookback", .duration, example: "10m", requires: ["key: [id]"],
                        "Send the cursor this much earlier, for records that arrive late with older timestamps; the repeats are dropped by `key`."),
                    OptionSpec("key", .list(.string), example: "[id]", "Fields identifying a record: with `field`, a record version; repeats are dropped."),
                    OptionSpec(
                        "until_param", .string, example: "until",
                        "The API's upper-bound parameter, which `sluice backfill --to` is sent in. Without it the backfill reads from `--from` on and keeps the records before `--to`."
                    ),
                ]), example: "{ field: updated_at, param: since, lookback: 10m, key: [id] }",
                "Only records changed since the last pass: the greatest `field` value seen is kept in the checkpoint, exactly as the API wrote it."
            ),
            OptionSpec(
                "rate_limit",
                .object([
                    OptionSpec("requests_per_second", .number, required: true, example: "10", "The average request rate, at most."),
                    OptionSpec("burst", .integer(1...10_000), default: "1", example: "5", "Requests that may go at once."),
                ]), example: "{ requests_per_second: 10, burst: 5 }",
                "A client-side limit. The API's own limits are honoured too: 429 and 503 with `Retry-After`, `X-RateLimit-Remaining: 0` with its reset, `RateLimit-*`."
            ),
            OptionSpec(
                "max_retries", .integer(0...100), default: "8", example: "3",
                "Retries of a timeout, a connection error, 408 or 5xx, with exponential backoff and jitter. 429 waits do not count. Other 4xx stop the pipeline."
            ),
            OptionSpec(
                "fan_out",
                .object([
                    OptionSpec(
                        "url", .string, required: true, example: #""https://api.example.com/v1/customers/{id}/orders""#,
                        "The child endpoint, absolute or relative to the parent page's URL; `{field}` takes each parent record's field."),
                    OptionSpec("records", .string, example: "data", "Keys leading to the array of child records."),
                    OptionSpec(
                        "pagination", .object(paginationOptions), example: "{ link_header: next }",
                        "How the children's next page is found (the same styles as `pagination`)."),
                    OptionSpec("parallel", .integer(1...64), default: "4", example: "8", "Parents whose children are fetched at once."),
                    OptionSpec(
                        "parent_fields", .map(.string), example: "{ customer_id: id }",
                        "Child field ← parent field, copied into every child record (a child's own field of that name wins)."),
                ]), example: #"{ url: "/v1/customers/{id}/orders", records: data, parallel: 4, parent_fields: { customer_id: id } }"#,
                "Read a child endpoint for each record of these pages (`/customers`, then `/customers/{id}/orders`): the children are the records. Each child page is checkpointed."
            ),
            OptionSpec("timeout", .duration, default: "30s", example: "1m", "The longest wait for one response."),
            OptionSpec(
                "columns", .map(.string), example: #"{ amount: "decimal(12,2)", updated_at: timestamp }"#,
                "Declared types by field name; other fields are inferred from the first page read. Declare them for types that stay the same whichever page a run starts at."
            ),
            OptionSpec(
                "schedule", .string, example: #""every 5m""#,
                "Keep pulling on a schedule until stopped: `every <duration>` or a five-field cron expression (UTC). Without `schedule` or `poll`, one pass, then the run ends."
            ),
            OptionSpec(
                "poll",
                .object([
                    OptionSpec("min", .duration, required: true, example: "1s", "The wait before the next poll while polls return records (positive)."),
                    OptionSpec("max", .duration, required: true, example: "1m", "The longest wait between polls while idle (at least `min`)."),
                ]), example: "{ min: 10s, max: 5m }", requires: ["incremental: { field: updated_at, param: since }"],
                "Instead of `schedule`, with `incremental`: adaptive polling, again after `min` while polls return records, doubling up to `max` while idle."),
        ],
        example: """
            source:
              http_api:
                url: "https://api.example.com/v1/items?per_page=100"
                auth: { bearer: "${API_TOKEN}" }
                records: data.items
                pagination: { link_header: next }
                incremental: { field: updated_at, param: since, key: [id] }
            """,
        capabilities: [.backfillable],
        exampleFile: "examples/http-api-pull.yaml"
    )

    public static let factory = SourceFactory(spec: spec) { config, _ in
        HTTPAPISource(options: try config.decodeOptions(HTTPAPISourceOptions.self))
    }

    /// One authenticated request for the first page (`sluice validate --connect`).
    public func checkReachable() async throws {
        let client = HTTPAPIClient(options: options, logger: Logger(label: "sluice.http_api"))
        do {
            _ = try await client.fetch(try PagePlan(options: options).url(for: .first, since: nil))
        } catch {
            await client.shutdown()
            throw error
        }
        await client.shutdown()
    }

    public func makeReader(resumingFrom checkpoint: Checkpoint, context: SourceContext) async throws -> any SourceReader {
        guard let schedule = options.schedule else { return try openPass(checkpoint, context: context) }
        return RepeatingReader(schedule: schedule, context: context) { checkpoint in
            try openPass(checkpoint, context: context)
        }
    }

    func openPass(_ checkpoint: Checkpoint, context: SourceContext) throws -> any SourceReader {
        if let fan = options.fanOut { return try HTTPAPIFanOutReader(source: self, fan: fan, checkpoint: checkpoint, context: context) }
        return try HTTPAPIReader(source: self, checkpoint: checkpoint, context: context)
    }
}

/// Reads one pass, page by page. See ``HTTPAPISource``.
final class HTTPAPIReader: SourceReader {
    let options: HTTPAPISourceOptions
    let plan: PagePlan
    let client: HTTPAPIClient
    let pages: PageDecoder
    let logger: Logger
    var position: HTTPAPIPosition

    init(source: HTTPAPISource, checkpoint: Checkpoint, context: SourceContext) throws {
        options = source.options
        plan = PagePlan(options: options)
        logger = context.logger
        pages = PageDecoder(options: options)
        let saved = checkpoint[HTTPAPIPosition.partition].flatMap(HTTPAPIPosition.decode)
        if let saved, !saved.done {
            position = saved  // resume the interrupted pass at its next page
        } else {
            position = try HTTPAPIPosition.newPass(after: saved, lookback: options.incremental?.lookback, backfillFrom: options.backfill?.from)
        }
        // Last: once made, the client must be shut down (``close()``), so nothing may throw after it.
        client = HTTPAPIClient(options: options, logger: context.logger, requests: context.requests)
    }

    func next() async throws -> SourceBatch? {
        guard let request = position.next else { return nil }
        let url = try plan.url(for: request, since: position.since)
        let response = try await client.fetch(url)
        let body = Array(response.body.readableBytesView)
        let location = "\(client.masker.mask(url.absoluteString)) (page \(position.pages + 1))"
        var page: DecodedPage
        var next = position
        next.pages += 1
        let links = response.headers["Link"]
        var readable = true
        do {
            page = try pages.decode(body, location: location)
        } catch let error as SluiceError where error.code == .malformedInput {
            // The page goes to the dead-letter queue; the pass goes on when the next page is
            // known without the body (a Link header, an offset with a limit, a page number).
            let letter = DeadLetter(stage: "decode", errorKind: "malformed_response", message: error.message, location: location, raw: body)
            page = DecodedPage(batch: RecordBatch.empty(pages.schema ?? Schema([])), rejects: [letter], records: 0)
            next.next = try plan.nextAfterUnreadable(request, at: url, linkHeaders: links)
            logger.warning(
                next.next == nil
                    ? "a response could not be read and the next page cannot be known without it; the page goes to the dead-letter queue and the pass ends"
                    : "a response could not be read; its page goes to the dead-letter queue",
                metadata: ["location": "\(location)", "error": "\(error.message)"])
            readable = false
        }
        if readable {
            // Outside the catch: a pagination that loops (the same cursor twice) stops the pull.
            let outcome = PageOutcome(
                records: page.records, linkHeaders: links,
                lookup: { path in body.withUnsafeBytes { try? JSONLookup.value(at: path, in: $0) } },
                lastRecordCursor: page.lastRecordCursor)
            next.next = try plan.next(after: request, at: url, outcome: outcome)
        }
        if let maxPages = options.maxPages, next.pages >= maxPages { next.next = nil }
        if let value = page.maxCursor, next.maxSeen.map({ CursorValue.isGreater(value, than: $0) }) ?? true { next.maxSeen = value }
        position = next
        let batch = SourceBatch(
            records: page.batch, rejects: page.rejects,
            position: SourcePosition(partition: HTTPAPIPosition.partition, value: position.encoded), inputBytes: body.count)
        if position.done {
            logger.info("pull finished", metadata: ["pages": "\(position.pages)", "cursor": "\(position.maxSeen ?? "-")"])
        }
        return batch
    }

    func close() async {
        await client.shutdown()
    }
}

extension HTTPAPISource: BackfillableSource {
    /// Re-reads the records whose incremental cursor is in [from, to): one pass that sends `from`
    /// (and `to`, when the API takes an upper bound), keeping only the records in the range.
    public func backfill(from: String, to: String, parallel: Int) throws -> any Source {
        guard options.incremental != nil else {
            throw SluiceError(
                .configuration, "a backfill re-reads a range of the incremental cursor; this http_api source has no `incremental`",
                location: "source.http_api.incremental")
        }
        guard parallel == 1 else {
            throw SluiceError(.configuration, "an API's pages are read one after another; run the backfill without --parallel", location: "--parallel")
        }
        guard CursorValue.isGreater(to, than: from) else {
            throw SluiceError(.configuration, "--to (\(to)) must come after --from (\(from))", location: "--to")
        }
        var o = options
        o.backfill = (from, to)
        o.schedule = nil
        o.incremental?.lookback = nil
        return HTTPAPISource(options: o)
    }
}
