import Foundation
import SluiceCore
import SluiceFormats

/// A child endpoint read for every parent record (`/customers` then `/customers/{id}/orders`):
/// the records emitted are the children's.
public struct HTTPAPIFanOut: Sendable {
    /// The child URL, absolute or relative to the parent page's URL, with `{field}` placeholders
    /// filled from each parent record.
    public var url: String
    /// The parent fields the URL names, in order of appearance.
    public var placeholders: [String]
    public var records: [String] = []
    public var pagination: HTTPAPIPagination = .none
    public var maxPages: Int?
    /// Parents whose children are fetched at once.
    public var parallel = 4
    /// Child field name ← parent field: copied into every child record.
    public var parentFields: [(String, String)] = []
}

extension HTTPAPIFanOut: Decodable {
    enum CodingKeys: String, CodingKey {
        case url, records, pagination, parallel
        case parentFields = "parent_fields"
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        url = try c.decode(String.self, forKey: .url)
        placeholders = Self.placeholders(in: url)
        records = try c.decodeKeyPath(forKey: .records) ?? []
        if c.contains(.pagination) {
            let p = try HTTPAPIPaginationConfig(from: try c.superDecoder(forKey: .pagination))
            pagination = p.style
            maxPages = p.maxPages
        }
        parallel = try c.decodeIfPresent(Int.self, forKey: .parallel, in: 1...64) ?? parallel
        parentFields = try c.decodeIfPresent(OrderedMapping<String>.self, forKey: .parentFields)?.entries ?? []
        if let bad = parentFields.first(where: { $0.0.range(of: #"^[A-Za-z_][A-Za-z0-9_]*$"#, options: .regularExpression) == nil }) {
            throw try c.superDecoder(forKey: .parentFields).configError("'\(bad.0)': a child field name is letters, digits and '_'")
        }
        if placeholders.isEmpty {
            throw try c.superDecoder(forKey: .url).configError("name the parent field the child URL takes, e.g. /customers/{id}/orders")
        }
    }

    /// `{name}` placeholders of a URL template.
    static func placeholders(in template: String) -> [String] {
        var names: [String] = []
        var rest = Substring(template)
        while let open = rest.firstIndex(of: "{"), let close = rest[open...].firstIndex(of: "}") {
            let name = String(rest[rest.index(after: open)..<close])
            if !name.isEmpty, !names.contains(name) { names.append(name) }
            rest = rest[rest.index(after: close)...]
        }
        return names
    }

    /// The child URL for one parent's values (percent-encoded as path or query text).
    func url(for values: [String: String], parent: URL) throws -> String {
        var text = url
        for name in placeholders {
            guard let value = values[name] else {
                throw SluiceError(.malformedInput, "a parent record has no '\(name)' for the child URL \(url)")
            }
            let encoded = value.addingPercentEncoding(withAllowedCharacters: .urlPathAllowed.subtracting(CharacterSet(charactersIn: "/?#"))) ?? value
            text = text.replacingOccurrences(of: "{\(name)}", with: encoded)
        }
        guard let resolved = URL(string: text, relativeTo: parent)?.absoluteURL else {
            throw SluiceError(.malformedInput, "the child URL '\(text)' does not parse")
        }
        return resolved.absoluteString
    }

    /// The options a child page is read with: the parent's auth, headers and limits, this URL,
    /// records and pagination.
    func childOptions(_ parent: HTTPAPISourceOptions, url: String) -> HTTPAPISourceOptions {
        var o = parent
        o.url = url
        o.params = []
        o.records = records
        o.pagination = pagination
        o.maxPages = maxPages
        o.incremental = nil
        o.backfill = nil
        o.fanOut = nil
        o.method = .get
        o.body = nil
        return o
    }
}

/// One parent record: the values its child URL and `parent_fields` take.
struct ParentRecord: Sendable {
    /// Placeholder values as text.
    var values: [String: String]
    /// `"child_field":<raw JSON>` pairs, comma-separated, for the child records.
    var prefix: [UInt8]
}

/// What a page's response says about the next page, without decoding its records (for pages
/// fetched in parallel).
enum PageOutline {
    /// The record count, the last record's `from_record` field and a body lookup.
    static func of(_ body: [UInt8], options: HTTPAPISourceOptions) -> (records: Int, lastRecordCursor: String?) {
        body.withUnsafeBytes { raw in
            guard let range = try? JSONLookup.range(of: options.records, in: raw) else { return (0, nil) }
            let slice = UnsafeRawBufferPointer(rebasing: raw[range])
            let split = JSONRecordSplitter(limits: PageDecoder.limits).split(slice, format: .json)
            var last: String?
            if case let .cursor(c) = options.pagination, let field = c.fromRecord, let r = split.records.last {
                last = try? JSONLookup.value(at: [field], in: UnsafeRawBufferPointer(rebasing: slice[r]))?.text
            }
            return (split.records.count, last)
        }
    }

    /// The parent records of a page: their placeholder values and parent-field prefixes.
    static func parents(_ body: [UInt8], options: HTTPAPISourceOptions, fan: HTTPAPIFanOut, location: String) throws -> [ParentRecord] {
        try body.withUnsafeBytes { raw in
            let range: Range<Int>
            do {
                guard let r = try JSONLookup.range(of: options.records, in: raw) else { return [] }
                range = r
            } catch {
                throw SluiceError(.malformedInput, "the parent page is not valid JSON: \(error)", location: location)
            }
            let slice = UnsafeRawBufferPointer(rebasing: raw[range])
            let split = JSONRecordSplitter(limits: PageDecoder.limits).split(slice, format: .json)
            if let issue = split.bodyIssue, issue.kind != .emptyBody {
                throw SluiceError(.malformedInput, "the parent page's records cannot be read: \(issue)", location: location)
            }
            return try split.records.enumerated().map { index, r in
                let record = UnsafeRawBufferPointer(rebasing: slice[r])
                var values: [String: String] = [:]
                for name in fan.placeholders {
                    guard let value = try? JSONLookup.value(at: [name], in: record)?.text else {
                        throw SluiceError(.malformedInput, "parent record \(index) has no '\(name)' for the child URL", location: location)
                    }
                    values[name] = value
                }
                var prefix: [UInt8] = []
                for (child, parent) in fan.parentFields {
                    guard let r = try? JSONLookup.range(of: [parent], in: record) else { continue }
                    if !prefix.isEmpty { prefix.append(UInt8(ascii: ",")) }
                    prefix += Array(#""\#(child)":"#.utf8) + Array(record[r])
                }
                return ParentRecord(values: values, prefix: prefix)
            }
        }
    }
}
