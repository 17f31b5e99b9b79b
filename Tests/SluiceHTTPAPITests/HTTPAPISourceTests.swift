import Foundation
import Logging
import SluiceConnectors
import SluiceCore
import SluiceTesting
import Testing

@testable import SluiceHTTPAPI

/// The `http_api` source against the real test API (`scripts/test_api_server.py`).
///
/// The limit catches a hang, not slowness: in the full suite the HTTP clients share the
/// process's two event-loop threads with the push-flood tests, and a 2-second test took 212 s.
@Suite(.offCooperativePool, .timeLimit(.minutes(10))) struct HTTPAPISourceTests {
    struct Read {
        var ids: [Int] = []
        var rows: [[String: Value]] = []
        var rejects: [DeadLetter] = []
        var checkpoint = Checkpoint.empty
        var pages = 0
    }

    func source(_ yaml: String) throws -> any Source {
        try ConformanceSupport.plan(registry: BuiltinComponents.registry, source: yaml, sink: "blackhole: {}").source
    }

    /// Reads a pass (or `pages` pages of it) from `checkpoint`.
    func read(_ source: any Source, from checkpoint: Checkpoint = .empty, pages: Int = .max) async throws -> Read {
        let ctx = SourceContext(pipeline: "p", state: MemoryStateStore(), logger: Logger(label: "test"))
        let reader = try await source.makeReader(resumingFrom: checkpoint, context: ctx)
        var out = Read(checkpoint: checkpoint)
        while out.pages < pages, let batch = try await nextBatch(reader) {
            out.pages += 1
            out.ids += ConformanceSupport.ids(batch.records)
            for row in 0..<batch.records.count {
                var record: [String: Value] = [:]
                for (i, f) in batch.records.schema.fields.enumerated() { record[f.name] = batch.records.columns[i].value(at: row) }
                out.rows.append(record)
            }
            out.rejects += batch.rejects
            out.checkpoint.partitions[batch.position.partition] = batch.position.value
        }
        await reader.close()
        return out
    }

    /// The reader's next batch; the reader is closed when it throws.
    func nextBatch(_ reader: any SourceReader) async throws -> SourceBatch? {
        do {
            return try await reader.next()
        } catch {
            await reader.close()
            throw error
        }
    }

    static let styles: [(String, String)] = [
        ("link", #"url: "URL/link/items?per_page=10", pagination: { link_header: next }"#),
        ("stripe", #"url: "URL/stripe/items?limit=10", records: data, pagination: { cursor: { param: starting_after, from_record: id, has_more: has_more } }"#),
        ("next", #"url: "URL/next/items?limit=10", records: results, pagination: { next_url: links.next }"#),
        ("offset", #"url: "URL/offset/items", records: data.items, pagination: { offset: { param: offset, limit_param: limit, limit: 10 } }"#),
        ("page", #"url: "URL/page/items", records: items, pagination: { page: { param: page, size_param: size, size: 10 } }"#),
        ("ndjson", #"url: "URL/ndjson/items", format: ndjson, pagination: { page: { param: page, size_param: size, size: 10 } }"#),
    ]

    @Test(arguments: styles.map(\.0))
    func everyPaginationStyleReadsEveryRecordOnceAndExactly(style: String) async throws {
        let server = try TestAPIServer.start(["--items", "95"])
        defer { server.stop() }
        let config = Self.styles.first { $0.0 == style }!.1.replacingOccurrences(of: "URL", with: server.url)
        let r = try await read(try source("http_api: { \(config) }"))
        #expect(r.ids == Array(1...95), "\(style): \(r.ids)")
        #expect(r.rejects.isEmpty)
        // 9007199254740993 + id is beyond float64's integers: exact only if never parsed as a double.
        let bigs = r.rows.map { $0["big"] }
        #expect(bigs == (1...95).map { Value.int64(9_007_199_254_740_993 + Int64($0)) })
        #expect(r.rows.first?["updated_at"] == .timestamp(1_700_000_001_123_456))
    }

    @Test func aReaderFromAPageCheckpointReadsOnlyTheRest() async throws {
        let server = try TestAPIServer.start(["--items", "95"])
        defer { server.stop() }
        let s = try source(
            #"http_api: { url: "\#(server.url)/stripe/items?limit=10", records: data, pagination: { cursor: { param: starting_after, from_record: id, has_more: has_more } } }"#
        )
        let first = try await read(s, pages: 4)
        #expect(first.ids == Array(1...40))
        let rest = try await read(s, from: first.checkpoint)
        #expect(rest.ids == Array(41...95))
    }

    @Test func incrementalSendsTheGreatestValueSeenAndPicksUpOnlyChanges() async throws {
        let server = try TestAPIServer.start(["--items", "30"])
        defer { server.stop() }
        let s = try source(
            #"http_api: { url: "\#(server.url)/link/items?per_page=7", pagination: { link_header: next }, incremental: { field: updated_at, param: since, key: [id] } }"#
        )
        #expect(s.implicitDedupeKey == ["id", "updated_at"])
        let first = try await read(s)
        #expect(first.ids == Array(1...30))
        // Nothing changed: `since` is inclusive, so only the newest record comes back (dropped by the key).
        let again = try await read(s, from: first.checkpoint)
        #expect(again.ids == [30])
        try await offPool { try server.control("/_control/update", ["ids": [4, 9], "updated_at": "2030-01-01T00:00:00.000001Z"]) }
        let changed = try await read(s, from: again.checkpoint)
        #expect(changed.ids == [30, 4, 9])
        let position = HTTPAPIPosition.decode(changed.checkpoint["http_api"]!)
        #expect(position?.maxSeen == "2030-01-01T00:00:00.000001Z", "kept exactly as the API wrote it")
    }

    @Test func lookbackSendsTheCursorEarlierForLateUpdates() async throws {
        let server = try TestAPIServer.start(["--items", "20"])
        defer { server.stop() }
        let s = try source(
            #"http_api: { url: "\#(server.url)/link/items?per_page=50", pagination: { link_header: next }, incremental: { field: updated_at, param: since, key: [id], lookback: 5s } }"#
        )
        let first = try await read(s)
        #expect(first.ids == Array(1...20))
        // A late update: its timestamp is 3 s before the newest one seen. The pass sends the newest
        // minus 5 s, item 15's timestamp (inclusive), so 15...20 come again (dropped by the key) with it.
        try await offPool { try server.control("/_control/update", ["ids": [2], "updated_at": "2023-11-14T22:13:37.123456Z", "name": "late"]) }
        let second = try await read(s, from: first.checkpoint)
        #expect(Set(second.ids) == [2, 15, 16, 17, 18, 19, 20])
    }

    @Test func aBackfillReadsTheCursorRangeWithOrWithoutAnUpperBoundParameter() async throws {
        let server = try TestAPIServer.start(["--items", "40"])
        defer { server.stop() }
        // Items 10...19 have updated_at in [BASE+10, BASE+20).
        let from = "2023-11-14T22:13:30.000000Z", to = "2023-11-14T22:13:40.000000Z"  // in the API's own format
        for until in ["", ", until_param: until"] {
            let live = try source(
                #"http_api: { url: "\#(server.url)/link/items?per_page=4", pagination: { link_header: next }, incremental: { field: updated_at, param: since\#(until) } }"#
            )
            let backfill = try (live as! any BackfillableSource).backfill(from: from, to: to, parallel: 1)
            let r = try await read(backfill)
            #expect(r.ids == Array(10...19), "until_param\(until): \(r.ids)")
            #expect(r.checkpoint["http_api"]?.contains("\"done\":true") == true, "sluice backfill tells a finished one by this")
            #expect(throws: SluiceError.self) { _ = try (live as! any BackfillableSource).backfill(from: from, to: to, parallel: 2) }
        }
        let stats = try await offPool { try server.stats() }
        // With until_param the API stops at the range's end: 3 pages instead of 8 to the end of the list.
        #expect((stats["item_requests"] ?? 0) == 8 + 3, "\(stats)")
    }

    @Test(arguments: [1, 4])
    func fanOutReadsEveryParentsChildrenOnceInParentOrderAndResumesMidParent(parallel: Int) async throws {
        let server = try TestAPIServer.start(["--items", "23"])
        defer { server.stop() }
        let s = try source(
            #"http_api: { url: "\#(server.url)/page/items", records: items, pagination: { page: { size_param: size, size: 5 } }, fan_out: { url: "/children/{id}/orders?size=1", records: data, pagination: { link_header: next }, parallel: \#(parallel), parent_fields: { customer_id: id } } }"#
        )
        // Parent i has i % 4 orders, one a page: every order once, in parent order.
        let expected = (1...23).flatMap { i in (0..<(i % 4)).map { i * 100 + $0 } }
        func orders(_ r: Read) -> [Int] {
            r.rows.map { row in
                guard case let .int64(v)? = row["order_id"] else { return -1 }
                return Int(v)
            }
        }
        let all = try await read(s)
        #expect(orders(all) == expected)
        #expect(
            all.rows.allSatisfy { row in
                guard case let .int64(o)? = row["order_id"], case let .int64(c)? = row["customer_id"] else { return false }
                return o / 100 == c
            })
        // Stop after 9 child pages (parent 6's first of two), resume: nothing twice.
        let first = try await read(s, pages: 9)
        let rest = try await read(s, from: first.checkpoint)
        #expect(orders(first) + orders(rest) == expected)
    }

    @Test func theClientRateLimitKeepsUnderTheServersAndItsLimitIsWaitedOut() async throws {
        // The server answers 429 past 4 requests in a second; the client keeps to 3 per second.
        let server = try TestAPIServer.start(["--items", "40", "--rate", "4"])
        defer { server.stop() }
        let polite = try source(
            #"http_api: { url: "\#(server.url)/link/items?per_page=5", pagination: { link_header: next }, rate_limit: { requests_per_second: 3, burst: 1 } }"#)
        #expect(try await read(polite).ids == Array(1...40))
        var stats = try await offPool { try server.stats() }
        #expect(stats["rate_limited"] == 0 && (stats["max_in_window"] ?? 99) <= 4, "\(stats)")
        // 429s are waited out (Retry-After) and are not failures, even with no retries allowed.
        // Every third request is refused whatever the machine's speed (a rate window is not:
        // under load the client never went fast enough to meet it).
        let strict = try TestAPIServer.start(["--items", "40", "--throttle-every", "3"])
        defer { strict.stop() }
        let eager = try source(#"http_api: { url: "\#(strict.url)/link/items?per_page=5", pagination: { link_header: next }, max_retries: 0 }"#)
        #expect(try await read(eager).ids == Array(1...40))
        stats = try await offPool { try strict.stats() }
        #expect(stats["rate_limited"] == 3 && stats["item_requests"] == 11, "8 pages, every third request refused: \(stats)")
    }

    @Test func serverErrorsAreRetriedAndNothingIsLostOrRepeated() async throws {
        let server = try TestAPIServer.start(["--items", "60", "--fail-every", "3"])
        defer { server.stop() }
        let s = try source(#"http_api: { url: "\#(server.url)/offset/items", records: data.items, pagination: { offset: { limit_param: limit, limit: 10 } } }"#)
        #expect(try await read(s).ids == Array(1...60))
        #expect((try await offPool { try server.stats() })["errors"] ?? 0 > 0)
    }

    @Test func aRefusedTokenStopsWithTheURLAndStatusAndNeverShowsTheToken() async throws {
        let server = try TestAPIServer.start(["--items", "5", "--bearer", "right-token-123"])
        defer { server.stop() }
        let wrong = try source(#"http_api: { url: "\#(server.url)/link/items", auth: { bearer: "wrong-token-456" } }"#)
        do {
            _ = try await read(wrong)
            Issue.record("a 401 must stop the pull")
        } catch let error as SluiceError {
            let text = "\(error)"
            #expect(text.contains("401") && text.contains("/link/items") && text.contains("Bad credentials"), "\(text)")
            #expect(!text.contains("wrong-token-456"))
            #expect(error.code == .authentication && !error.isRetryable)
        }
        let right = try source(#"http_api: { url: "\#(server.url)/link/items", auth: { bearer: "right-token-123" } }"#)
        #expect(try await read(right).ids == Array(1...5))
        // An API key in the query is masked in errors too.
        let key = try source(#"http_api: { url: "\#(server.url)/link/items", auth: { api_key: { query: key, value: "secret-key-789" } } }"#)
        do {
            _ = try await read(key)
            Issue.record("a 401 must stop the pull")
        } catch {
            #expect(!"\(error)".contains("secret-key-789") && "\(error)".contains("401"), "\(error)")
        }
    }

    @Test func oauth2TokensAreFetchedCachedAndFetchedAgainWhenRefused() async throws {
        // Tokens are refused after 5 requests (a revoked or expired token, whatever the clock).
        let server = try TestAPIServer.start(["--items", "60", "--client-id", "app", "--client-secret", "s3cret!", "--token-uses", "5"])
        defer { server.stop() }
        let s = try source(
            #"http_api: { url: "\#(server.url)/oauth/link/items?per_page=3", pagination: { link_header: next }, auth: { oauth2: { token_url: "\#(server.url)/oauth/token", client_id: app, client_secret: "s3cret!" } } }"#
        )
        #expect(try await read(s).ids == Array(1...60))
        let stats = try await offPool { try server.stats() }
        // 20 pages, 5 requests a token: cached (not one per request); each refusal (the 6th
        // request of a token) is answered by one new token.
        #expect(stats["tokens_issued"] == 4 && stats["unauthorized"] == 3, "\(stats)")
    }

    @Test func anOAuth2TokenIsRenewedAQuarterOfItsLifetimeBeforeItExpires() {
        let start = ContinuousClock.now
        let token = OAuth2Token(value: "t", lifetime: .seconds(8), refreshAt: start + .seconds(6))
        #expect(OAuth2Token.refreshTime(lifetime: 8, from: start) == token.refreshAt)
        #expect(OAuth2Token.refreshTime(lifetime: 3600, from: start) == start + .seconds(3540), "a minute before, for long-lived tokens")
    }

    @Test func anUnreadablePageIsDeadLetteredAndThePassGoesOnWhenTheNextPageIsKnown() async throws {
        let server = try TestAPIServer.start(["--items", "30", "--garbage-page", "2"])
        defer { server.stop() }
        let s = try source(#"http_api: { url: "\#(server.url)/link/items?per_page=10", pagination: { link_header: next } }"#)
        let r = try await read(s)
        #expect(r.ids == Array(1...10) + Array(21...30))
        #expect(r.rejects.count == 1 && r.rejects.first?.errorKind == "malformed_response")
        #expect(r.rejects.first?.location.contains("page=2") == true && r.rejects.first?.location.contains("(page 2)") == true)
    }

    @Test func badConfigurationIsRefusedWithTheKey() throws {
        let cases: [(String, String)] = [
            (#"http_api: { url: "ftp://x/y" }"#, "http:// or https://"),
            (#"http_api: { url: "http://x/y", body: "{}" }"#, "POST"),
            (#"http_api: { url: "http://x/y", pagination: { link_header: next, page: {} } }"#, "one pagination style"),
            (#"http_api: { url: "http://x/y", pagination: { cursor: { param: after } } }"#, "from_record"),
            (#"http_api: { url: "http://x/y", incremental: { field: t, param: since, lookback: 5m } }"#, "key"),
            (#"http_api: { url: "http://x/y", auth: { api_key: { value: k } } }"#, "header"),
            (#"http_api: { url: "http://x/y", format: csv, records: data }"#, "records"),
            (#"http_api: { url: "http://x/y", pagination: { next_url: "links..next" } }"#, "path of keys"),
            (#"http_api: { url: "http://x/y", pagination: { cursor: { param: c, path: ".next" } } }"#, "path of keys"),
        ]
        for (config, expected) in cases {
            #expect(throws: (any Error).self, "\(config)") { _ = try source(config) }
            do { _ = try source(config) } catch { #expect("\(error)".contains(expected), "\(config): \(error)") }
        }
    }
}
