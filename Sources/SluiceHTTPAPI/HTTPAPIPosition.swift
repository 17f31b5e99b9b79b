import Foundation
import SluiceCore

/// The request that fetches a page: the first one of a pass, or what the previous page said.
enum PageRequest: Codable, Sendable, Equatable {
    case first
    /// A URL the API gave (a `Link` header, a next URL in the body), sent as is.
    case url(String)
    case cursor(String)
    case offset(Int)
    case page(Int)
}

/// Where a pass stands, kept in the checkpoint after each page: a crash resumes at the next
/// page, and a finished pass leaves the incremental cursor for the next one.
struct HTTPAPIPosition: Codable, Sendable, Equatable {
    /// Identifies the pass (a new one each time a pass starts from the first page).
    var run: String
    /// The incremental value this pass sends (nil on a first pass, which reads everything).
    var since: String?
    /// The greatest incremental value seen in this pass (and, once done, in every pass).
    var maxSeen: String?
    /// The next page to fetch; nil once the pass is done.
    var next: PageRequest?
    /// Pages read in this pass.
    var pages: Int
    /// With fan-out: `next` is the parent page being fanned out, and this is where its children stand.
    var fan: FanPosition?

    var done: Bool { next == nil }

    static let partition = "http_api"

    enum CodingKeys: String, CodingKey { case run, since, maxSeen, next, pages, done, fan }

    init(run: String, since: String?, maxSeen: String?, next: PageRequest?, pages: Int) {
        self.run = run
        self.since = since
        self.maxSeen = maxSeen
        self.next = next
        self.pages = pages
    }

    init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        run = try c.decode(String.self, forKey: .run)
        since = try c.decodeIfPresent(String.self, forKey: .since)
        maxSeen = try c.decodeIfPresent(String.self, forKey: .maxSeen)
        next = try c.decodeIfPresent(PageRequest.self, forKey: .next)
        pages = try c.decode(Int.self, forKey: .pages)
        fan = try c.decodeIfPresent(FanPosition.self, forKey: .fan)
    }

    /// `done` is written too: `sluice backfill` reads it to tell a finished backfill.
    func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(run, forKey: .run)
        try c.encodeIfPresent(since, forKey: .since)
        try c.encodeIfPresent(maxSeen, forKey: .maxSeen)
        try c.encodeIfPresent(next, forKey: .next)
        try c.encode(pages, forKey: .pages)
        try c.encode(done, forKey: .done)
        try c.encodeIfPresent(fan, forKey: .fan)
    }

    var encoded: String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        return String(decoding: (try? encoder.encode(self)) ?? Data(), as: UTF8.self)
    }

    static func decode(_ text: String) -> HTTPAPIPosition? {
        try? JSONDecoder().decode(HTTPAPIPosition.self, from: Data(text.utf8))
    }

    /// A new pass after `previous` (nil: the first ever): it sends the greatest value seen so
    /// far, moved back by `lookback`.
    static func newPass(after previous: HTTPAPIPosition?, lookback: Duration?, backfillFrom: String? = nil) throws -> HTTPAPIPosition {
        let since = try backfillFrom ?? previous?.maxSeen.map { try CursorValue.moveBack($0, by: lookback) }
        return HTTPAPIPosition(
            run: String(UUID().uuidString.lowercased().prefix(8)), since: since, maxSeen: previous?.maxSeen, next: .first, pages: 0)
    }
}

/// Where the children of a parent page stand: the parent at `index`, its child page `child`.
struct FanPosition: Codable, Sendable, Equatable {
    var index: Int
    var child: PageRequest
}

/// Incremental cursor values as the API writes them: compared as timestamps when both are
/// ISO 8601, as numbers when both are numbers, else as text; never rounded.
enum CursorValue {
    enum Parsed: Equatable {
        case timestamp(Int64)
        case integer(negative: Bool, digits: Substring)
        case number(Double)
        case text(String)
    }

    static func parse(_ text: String) -> Parsed {
        if let micros = Array(text.utf8).withUnsafeBufferPointer({ TemporalText.parseTimestamp($0) }) { return .timestamp(micros) }
        let negative = text.hasPrefix("-")
        let digits = text.dropFirst(negative ? 1 : 0)
        if !digits.isEmpty, digits.allSatisfy(\.isASCII), digits.allSatisfy(\.isNumber) {
            let trimmed = digits.drop { $0 == "0" }
            return .integer(negative: negative && !trimmed.isEmpty, digits: trimmed)
        }
        if let d = Double(text), d.isFinite { return .number(d) }
        return .text(text)
    }

    /// True when `a` comes after `b`.
    static func isGreater(_ a: String, than b: String) -> Bool {
        switch (parse(a), parse(b)) {
        case let (.timestamp(x), .timestamp(y)): return x > y
        case let (.integer(na, da), .integer(nb, db)):
            if na != nb { return nb }
            let magnitudeGreater = da.count != db.count ? da.count > db.count : da > db
            let equal = da == db
            return na ? (!magnitudeGreater && !equal) : magnitudeGreater
        case let (.number(x), .number(y)): return x > y
        case let (.integer(n, d), .number(y)): return (Double(String(d)) ?? 0) * (n ? -1 : 1) > y
        case let (.number(x), .integer(n, d)): return x > (Double(String(d)) ?? 0) * (n ? -1 : 1)
        default: return a > b
        }
    }

    /// `value` moved back by `lookback` (a timestamp only); the value itself without one.
    static func moveBack(_ value: String, by lookback: Duration?) throws -> String {
        guard let lookback else { return value }
        guard case let .timestamp(micros) = parse(value) else {
            throw SluiceError(
                .configuration, "`lookback` needs a timestamp cursor, and '\(value)' is not an ISO 8601 timestamp",
                location: "source.http_api.incremental.lookback")
        }
        let back = lookback.components.seconds * 1_000_000 + lookback.components.attoseconds / 1_000_000_000_000
        return TemporalText.formatTimestamp(micros: micros - back)
    }
}
