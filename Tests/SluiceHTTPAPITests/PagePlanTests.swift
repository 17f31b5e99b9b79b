import Foundation
import SluiceConnectors
import SluiceCore
import SluiceFormats
import SluiceTesting
import Testing

@testable import SluiceHTTPAPI

/// The pagination rules, without a server.
@Suite(.offCooperativePool) struct PagePlanTests {
    func plan(_ options: String) throws -> PagePlan {
        let plan = try ConformanceSupport.plan(
            registry: BuiltinComponents.registry, source: #"http_api: { url: "http://api.test/items?q=a+b", \#(options) }"#, sink: "blackhole: {}")
        return PagePlan(options: (plan.source as! HTTPAPISource).options)
    }

    func outcome(_ records: Int, body: String = "{}", links: [String] = [], last: String? = nil) -> PageOutcome {
        let bytes = Array(body.utf8)
        return PageOutcome(
            records: records, linkHeaders: links, lookup: { path in bytes.withUnsafeBytes { try? JSONLookup.value(at: path, in: $0) } },
            lastRecordCursor: last)
    }

    let url = URL(string: "http://api.test/items?page=1")!

    @Test func urlsCarryTheParametersOfThePageAndTheCursor() throws {
        let p = try plan(#"params: { state: all }, pagination: { offset: { limit_param: limit, limit: 10 } }, incremental: { field: t, param: since }"#)
        let u = try p.url(for: .offset(20), since: "2026-01-01T00:00:00+01:00").absoluteString
        #expect(u == "http://api.test/items?q=a%2Bb&state=all&since=2026-01-01T00:00:00%2B01:00&offset=20&limit=10", "\(u)")
    }

    @Test func eachStyleEndsWhereItsAPISaysSo() throws {
        let offset = try plan("pagination: { offset: { limit_param: limit, limit: 10 } }")
        #expect(try offset.next(after: .offset(20), at: url, outcome: outcome(10)) == .offset(30))
        #expect(try offset.next(after: .offset(20), at: url, outcome: outcome(7)) == nil, "a short page is the last")
        let page = try plan("pagination: { page: { start: 0 } }")
        #expect(try page.next(after: .first, at: url, outcome: outcome(3)) == .page(1))
        #expect(try page.next(after: .page(4), at: url, outcome: outcome(0)) == nil, "an empty page is the last")
        let stripe = try plan("pagination: { cursor: { param: starting_after, from_record: id, has_more: has_more } }")
        #expect(try stripe.next(after: .first, at: url, outcome: outcome(2, body: #"{"has_more": true}"#, last: "cus_9")) == .cursor("cus_9"))
        #expect(try stripe.next(after: .first, at: url, outcome: outcome(2, body: #"{"has_more": false}"#, last: "cus_9")) == nil)
        #expect(throws: SluiceError.self) { try stripe.next(after: .first, at: url, outcome: outcome(2, body: #"{"has_more": "yes"}"#, last: "x")) }
        let link = try plan("pagination: { link_header: next }")
        #expect(try link.next(after: .first, at: url, outcome: outcome(5, links: [#"</items?page=2>; rel="next""#])) == .url("http://api.test/items?page=2"))
        #expect(try link.next(after: .first, at: url, outcome: outcome(5, links: [#"</items?page=9>; rel="last""#])) == nil)
        let next = try plan("pagination: { next_url: links.next }")
        #expect(try next.next(after: .first, at: url, outcome: outcome(5, body: #"{"links": {"next": null}}"#)) == nil)
    }

    @Test func paginationThatLoopsStopsThePull() throws {
        let cursor = try plan("pagination: { cursor: { param: c, path: meta.next } }")
        #expect(throws: SluiceError.self) { try cursor.next(after: .cursor("abc"), at: url, outcome: outcome(5, body: #"{"meta": {"next": "abc"}}"#)) }
        let link = try plan("pagination: { link_header: next }")
        #expect(throws: SluiceError.self) { try link.next(after: .first, at: url, outcome: outcome(5, links: [#"</items?page=1>; rel="next""#])) }
    }

    @Test func cursorsCompareAsTheAPIMeantThem() throws {
        #expect(CursorValue.isGreater("2026-01-01T00:00:00.5Z", than: "2026-01-01T00:00:00Z"))
        #expect(CursorValue.isGreater("2026-01-01T01:00:00+00:00", than: "2026-01-01T01:30:00+01:00"), "timestamps by instant, not text")
        #expect(CursorValue.isGreater("100000000000000000000001", than: "99999999999999999999999"), "integers of any size")
        #expect(!CursorValue.isGreater("-5", than: "3") && CursorValue.isGreater("-3", than: "-5"))
        #expect(CursorValue.isGreater("b", than: "a"))
        #expect(throws: SluiceError.self) { try CursorValue.moveBack("42", by: .seconds(5)) }
        #expect(try CursorValue.moveBack("2026-01-01T00:00:10.250000Z", by: .seconds(5)) == "2026-01-01T00:00:05.250000Z")
    }
}
