import Foundation

/// A JSON value found in a document, as its exact text.
public enum JSONScalar: Sendable, Hashable {
    case null
    case bool(Bool)
    /// A number, exactly as written (never rounded through a float).
    case number(String)
    case string(String)
    /// An object or an array, as its raw text.
    case nested(String)

    /// The value as a query parameter or cursor would carry it: strings unquoted, numbers and
    /// literals as written, nested values as their JSON text; nil for null.
    public var text: String? {
        switch self {
        case .null: nil
        case let .bool(b): b ? "true" : "false"
        case let .number(t), let .string(t), let .nested(t): t
        }
    }
}

/// Finds values in a JSON document by a path of object keys (`data.items` is `["data", "items"]`),
/// without parsing the rest of the document into objects: one validating pass over the bytes up
/// to the value. Numbers keep their text, so a cursor or an id of any size stays exact.
public enum JSONLookup {
    /// The byte range of the value at `path` in `document` (the whole document for an empty path),
    /// or nil when a key is absent or a value on the way is not an object. Throws when the
    /// document is not valid JSON up to the value.
    public static func range(of path: [String], in document: UnsafeRawBufferPointer) throws -> Range<Int>? {
        guard let base = document.baseAddress, document.count > 0 else { throw JSONLookupError(offset: 0, message: "the body is empty") }
        let p = base.assumingMemoryBound(to: UInt8.self)
        var s = JSONScanner(p, from: 0, end: document.count)
        if document.count >= 3, p[0] == 0xEF, p[1] == 0xBB, p[2] == 0xBF { s.i = 3 }
        s.skipWhitespace()
        var found: Range<Int>?
        guard try find(path[...], &s, depth: 0, found: &found) else { return nil }
        return found
    }

    /// The value at `path` as a scalar (nested values as text), or nil when absent.
    public static func value(at path: [String], in document: UnsafeRawBufferPointer) throws -> JSONScalar? {
        guard let r = try range(of: path, in: document) else { return nil }
        return scalar(UnsafeRawBufferPointer(rebasing: document[r]))
    }

    /// Reads one JSON value's text as a scalar.
    public static func scalar(_ text: UnsafeRawBufferPointer) -> JSONScalar {
        let bytes = Array(text)
        guard let first = bytes.first else { return .null }
        switch first {
        case UInt8(ascii: "n"): return .null
        case UInt8(ascii: "t"): return .bool(true)
        case UInt8(ascii: "f"): return .bool(false)
        case UInt8(ascii: "\""):
            if !bytes.contains(UInt8(ascii: "\\")) { return .string(String(decoding: bytes[1..<bytes.count - 1], as: UTF8.self)) }
            let decoded = try? JSONSerialization.jsonObject(with: Data(bytes), options: [.fragmentsAllowed]) as? String
            return .string(decoded ?? String(decoding: bytes[1..<bytes.count - 1], as: UTF8.self))
        case UInt8(ascii: "{"), UInt8(ascii: "["): return .nested(String(decoding: bytes, as: UTF8.self))
        default: return .number(String(decoding: bytes, as: UTF8.self))
        }
    }

    /// Scans the value at `s.i`; when `path` is empty it is the one wanted. Returns false when
    /// the path leads nowhere (absent key, or not an object on the way).
    private static func find(_ path: ArraySlice<String>, _ s: inout JSONScanner, depth: Int, found: inout Range<Int>?) throws -> Bool {
        let start = s.i
        guard let key = path.first else {
            guard s.skipValue(depth: depth) else { throw error(s) }
            found = start..<s.i
            return true
        }
        guard s.i < s.end, s.p[s.i] == UInt8(ascii: "{") else { return false }
        s.i += 1
        s.skipWhitespace()
        if s.i < s.end, s.p[s.i] == UInt8(ascii: "}") { return false }
        while true {
            guard s.i < s.end, s.p[s.i] == UInt8(ascii: "\"") else { throw JSONLookupError(offset: s.i, message: "object key (a string) expected") }
            let keyStart = s.i
            guard s.skipString() else { throw error(s) }
            let matches = keyMatches(key, s.p, keyStart, s.i)
            s.skipWhitespace()
            guard s.i < s.end, s.p[s.i] == UInt8(ascii: ":") else { throw JSONLookupError(offset: s.i, message: "':' expected after an object key") }
            s.i += 1
            s.skipWhitespace()
            if matches { return try find(path.dropFirst(), &s, depth: depth + 1, found: &found) }
            guard s.skipValue(depth: depth + 1) else { throw error(s) }
            s.skipWhitespace()
            guard s.i < s.end else { throw JSONLookupError(offset: s.i, message: "unterminated object") }
            if s.p[s.i] == UInt8(ascii: ",") {
                s.i += 1
                s.skipWhitespace()
                continue
            }
            if s.p[s.i] == UInt8(ascii: "}") { return false }
            throw JSONLookupError(offset: s.i, message: "',' or '}' expected in an object")
        }
    }

    private static func keyMatches(_ key: String, _ p: UnsafePointer<UInt8>, _ start: Int, _ end: Int) -> Bool {
        let raw = UnsafeBufferPointer(start: p + start + 1, count: end - start - 2)
        if !raw.contains(UInt8(ascii: "\\")) { return raw.elementsEqual(key.utf8) }
        return scalar(UnsafeRawBufferPointer(start: p + start, count: end - start)) == .string(key)
    }

    private static func error(_ s: JSONScanner) -> JSONLookupError {
        JSONLookupError(offset: max(s.errorPosition, 0), message: "\(s.errorMessage)")
    }
}

/// A document that is not valid JSON where a lookup had to read it.
public struct JSONLookupError: Error, Sendable, CustomStringConvertible {
    public var offset: Int
    public var message: String
    public var description: String { "invalid JSON at byte \(offset): \(message)" }
}
