import Foundation
import SluiceCore
import SluiceFormats

/// What one page's response says about the next page.
struct PageOutcome {
    /// Records the page held (decoded or not).
    var records: Int
    /// Values of the response's `Link` headers.
    var linkHeaders: [String]
    /// Looks a value up in the body by a path of keys (nil: absent, or the body is not JSON).
    var lookup: ([String]) -> JSONScalar?
    /// The pagination field (`from_record`) of the page's last record, as written.
    var lastRecordCursor: String?
}

/// Builds each page's URL and finds the next page: the pagination rules, without I/O.
struct PagePlan: Sendable {
    let options: HTTPAPISourceOptions

    /// The URL of `request` in a pass that sends `since`.
    func url(for request: PageRequest, since: String?) throws -> URL {
        if case let .url(text) = request {
            guard let url = URL(string: text) else { throw SluiceError(.malformedInput, "the API gave a next-page URL that does not parse: \(text)") }
            return url
        }
        guard var components = URLComponents(string: options.url) else {
            throw SluiceError(.configuration, "the URL does not parse", location: "source.http_api.url")
        }
        var items = components.queryItems ?? []
        for (name, value) in options.params { items.append(URLQueryItem(name: name, value: value)) }
        if let since, let incremental = options.incremental { items.append(URLQueryItem(name: incremental.param, value: since)) }
        if case let (_, to)? = options.backfill, let until = options.incremental?.untilParam { items.append(URLQueryItem(name: until, value: to)) }
        switch (options.pagination, request) {
        case let (.cursor(c), .cursor(value)): items.append(URLQueryItem(name: c.param, value: value))
        case let (.offset(param, limitParam, limit), _):
            var offset = 0
            if case let .offset(n) = request { offset = n }
            items.append(URLQueryItem(name: param, value: String(offset)))
            if let limitParam, let limit { items.append(URLQueryItem(name: limitParam, value: String(limit))) }
        case let (.page(param, start, sizeParam, size), _):
            var page = start
            if case let .page(n) = request { page = n }
            items.append(URLQueryItem(name: param, value: String(page)))
            if let sizeParam, let size { items.append(URLQueryItem(name: sizeParam, value: String(size))) }
        default: break
        }
        components.queryItems = items.isEmpty ? nil : items
        // `+` is a space to many servers: encode it (URLComponents leaves it as is).
        components.percentEncodedQuery = components.percentEncodedQuery?.replacingOccurrences(of: "+", with: "%2B")
        guard let url = components.url else { throw SluiceError(.configuration, "the URL does not parse", location: "source.http_api.url") }
        return url
    }

    /// The request after `current`, whose response was `outcome`; nil when it was the last page.
    func next(after current: PageRequest, at url: URL, outcome: PageOutcome) throws -> PageRequest? {
        switch options.pagination {
        case .none:
            return nil
        case let .linkHeader(relation):
            guard let target = LinkHeader.target(relation: relation, in: outcome.linkHeaders) else { return nil }
            return try resolved(target, against: url)
        case let .nextURL(path):
            guard let value = outcome.lookup(path)?.text, !value.isEmpty else { return nil }
            return try resolved(value, against: url)
        case let .cursor(c):
            if let hasMore = c.hasMore {
                switch outcome.lookup(hasMore) {
                case .bool(true)?: break
                case .bool(false)?, .null?, nil: return nil
                case let other?:
                    throw SluiceError(.malformedInput, "`has_more` (\(hasMore.joined(separator: "."))) is \(other.text ?? "null"), not true or false")
                }
            }
            guard outcome.records > 0 else { return nil }
            let value = c.path.map { outcome.lookup($0)?.text } ?? outcome.lastRecordCursor
            guard let value, !value.isEmpty else { return nil }
            if case let .cursor(previous) = current, previous == value {
                throw SluiceError(.malformedInput, "the API gave the same cursor twice ('\(value)'); stopping rather than reading one page forever")
            }
            return .cursor(value)
        case let .offset(_, _, limit):
            guard outcome.records > 0, limit.map({ outcome.records >= $0 }) ?? true else { return nil }
            var offset = 0
            if case let .offset(n) = current { offset = n }
            return .offset(offset + outcome.records)
        case let .page(_, start, _, size):
            guard outcome.records > 0, size.map({ outcome.records >= $0 }) ?? true else { return nil }
            var page = start
            if case let .page(n) = current { page = n }
            return .page(page + 1)
        }
    }

    /// The request after `current` when its response could not be read: known only from headers
    /// or counting (a `Link` header, an offset with a declared limit, a page number); nil otherwise.
    func nextAfterUnreadable(_ current: PageRequest, at url: URL, linkHeaders: [String]) throws -> PageRequest? {
        switch options.pagination {
        case let .linkHeader(relation):
            guard let target = LinkHeader.target(relation: relation, in: linkHeaders) else { return nil }
            return try resolved(target, against: url)
        case let .offset(_, _, limit?):
            var offset = 0
            if case let .offset(n) = current { offset = n }
            return .offset(offset + limit)
        case let .page(_, start, _, _):
            var page = start
            if case let .page(n) = current { page = n }
            return .page(page + 1)
        default:
            return nil
        }
    }

    private func resolved(_ target: String, against url: URL) throws -> PageRequest {
        guard let next = URL(string: target, relativeTo: url)?.absoluteURL else {
            throw SluiceError(.malformedInput, "the API gave a next-page link that does not parse: \(target)")
        }
        guard next != url else {
            throw SluiceError(.malformedInput, "the API gave the page it answered as the next page (\(next)); stopping rather than reading it forever")
        }
        return .url(next.absoluteString)
    }
}
