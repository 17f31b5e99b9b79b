import SluiceCore

/// Limits a request body must respect (the push endpoint's defence against hostile input).
public struct JSONRecordLimits: Sendable, Hashable {
    /// Records in one body.
    public var maxRecords: Int
    /// Nesting depth inside a record (the record object itself is level 1).
    public var maxDepth: Int
    /// Top-level fields of one record.
    public var maxFields: Int

    public init(maxRecords: Int = 10_000, maxDepth: Int = 32, maxFields: Int = 1_000) {
        self.maxRecords = maxRecords
        self.maxDepth = maxDepth
        self.maxFields = maxFields
    }
}

/// How records are laid out in a body.
public enum JSONBodyFormat: String, Sendable {
    /// One JSON object, or a JSON array of objects.
    case json
    /// One JSON object per line.
    case ndjson
}

/// Something wrong with a body, or with one record of it.
public struct JSONRecordIssue: Sendable, Hashable, CustomStringConvertible {
    public enum Kind: String, Sendable {
        case emptyBody = "empty_body"
        case malformedJSON = "malformed_json"
        case invalidUTF8 = "invalid_utf8"
        case notAnObject = "not_an_object"
        case tooDeep = "too_deep"
        case tooManyFields = "too_many_fields"
        case tooManyRecords = "too_many_records"
        case typeMismatch = "type_mismatch"
        case missingField = "missing_field"
        case nullValue = "null_value"
        case reservedField = "reserved_field"
        /// A number no exact type holds (beyond float64's range and 38 decimal digits), e.g. 1e400.
        case numberOutOfRange = "number_out_of_range"
        /// An object with the same key twice: which value is meant is ambiguous (parsers differ).
        case duplicateKey = "duplicate_key"
    }

    public var kind: Kind
    /// 0-based index of the record, when the issue is one record's.
    public var record: Int?
    /// The field at fault, when there is one.
    public var field: String?
    /// Byte offset in the body where the problem was found.
    public var offset: Int
    public var message: String

    /// True for a well-formed record that does not match the declared schema (HTTP 422);
    /// false for malformed input (HTTP 400).
    public var isSchemaViolation: Bool {
        kind == .typeMismatch || kind == .missingField || kind == .nullValue || kind == .reservedField || kind == .numberOutOfRange
    }

    public var description: String {
        var s = ""
        if let record { s += "record \(record): " }
        if let field { s += "field '\(field)': " }
        return s + message
    }
}

/// The records found in a body and what is wrong with them.
public struct JSONRecordSplit: Sendable {
    /// Byte range of every record's text (valid or not), indexed by record.
    public var records: [Range<Int>] = []
    /// At most one issue per record, in record order.
    public var recordIssues: [JSONRecordIssue] = []
    /// Set when the body as a whole cannot be used (no record boundaries, too many records).
    public var bodyIssue: JSONRecordIssue?
    /// The distinct top-level field names of the records without an issue, in first-seen order
    /// (only when the splitter was made with `collectFieldNames`).
    public var fieldNames: [String] = []

    /// `fieldNames` as a set, to keep it distinct.
    var seenFieldNames: Set<String> = []

    public init() {}
}

/// Finds the records of a JSON or NDJSON request body and validates them, byte by byte:
/// syntax and UTF-8, nesting depth, field count, and (when fields are declared) the type,
/// presence and nullability of each declared field. Undeclared fields are allowed.
///
/// Values of declared fields are checked as the NDJSON decoder will read them: `int64` takes an
/// integral number, `float64` any number, `bool` true/false, `string`/`binary` a string,
/// `date`/`timestamp` a string in ISO 8601 form, `decimal` a number or a string, `json` anything.
public struct JSONRecordSplitter {
    public var limits: JSONRecordLimits
    let declared: [String: (index: Int, field: Field)]
    let required: [Field]
    /// Field names a record may not carry (set by the server, e.g. `received_at`).
    let reserved: Set<String>
    /// Keys must be decoded (to check declared or reserved names, or to collect them).
    let needsKeys: Bool
    /// Gather the field names of valid records in ``JSONRecordSplit/fieldNames``.
    let collectFieldNames: Bool

    /// - Parameter collectFieldNames: list the distinct top-level field names of the records
    ///   without an issue (the push endpoint counts the fields a request adds to its stream).
    public init(
        limits: JSONRecordLimits = JSONRecordLimits(), fields: [Field] = [], reserved: Set<String> = [], collectFieldNames: Bool = false
    ) {
        self.limits = limits
        self.reserved = reserved
        self.collectFieldNames = collectFieldNames
        needsKeys = !fields.isEmpty || !reserved.isEmpty || collectFieldNames
        var map: [String: (index: Int, field: Field)] = [:]
        for (i, f) in fields.enumerated() where map[f.name] == nil { map[f.name] = (i, f) }
        declared = map
        required = fields.filter { !$0.nullable }
    }

    /// Splits and validates `body`.
    public func split(_ body: UnsafeRawBufferPointer, format: JSONBodyFormat) -> JSONRecordSplit {
        var out = JSONRecordSplit()
        guard let base = body.baseAddress, body.count > 0 else {
            out.bodyIssue = JSONRecordIssue(kind: .emptyBody, offset: 0, message: "the body is empty; send at least one record")
            return out
        }
        let p = base.assumingMemoryBound(to: UInt8.self)
        var n = body.count
        var start = 0
        if n >= 3, p[0] == 0xEF, p[1] == 0xBB, p[2] == 0xBF { start = 3 }
        while n > start, Self.isSpace(p[n - 1]) { n -= 1 }
        switch format {
        case .json: splitJSON(p, start, n, into: &out)
        case .ndjson: splitNDJSON(p, start, n, into: &out)
        }
        if out.bodyIssue == nil, out.records.isEmpty {
            out.bodyIssue = JSONRecordIssue(kind: .emptyBody, offset: 0, message: "the body holds no records; send at least one JSON object")
        }
        return out
    }

    @inline(__always) static func isSpace(_ c: UInt8) -> Bool { c == 0x20 || c == 0x0A || c == 0x0D || c == 0x09 }

    private func tooMany(_ offset: Int) -> JSONRecordIssue {
        JSONRecordIssue(
            kind: .tooManyRecords, offset: offset,
            message: "more than \(limits.maxRecords) records in one request; split the batch")
    }

    private func splitJSON(_ p: UnsafePointer<UInt8>, _ start: Int, _ n: Int, into out: inout JSONRecordSplit) {
        var s = scanner(p, start, n)
        s.skipWhitespace()
        guard s.i < n else { return }
        if p[s.i] == UInt8(ascii: "{") {
            let recordStart = s.i
            if let syntax = record(&s, index: 0, into: &out) {
                out.bodyIssue = syntax
                return
            }
            out.records.append(recordStart..<s.i)
        } else if p[s.i] == UInt8(ascii: "[") {
            s.i += 1
            s.skipWhitespace()
            if s.i < n, p[s.i] == UInt8(ascii: "]") {
                s.i += 1
            } else {
                while true {
                    s.skipWhitespace()
                    guard s.i < n else { out.bodyIssue = syntaxIssue(s, nil, fallback: "unterminated array"); return }
                    let index = out.records.count
                    guard index < limits.maxRecords else { out.bodyIssue = tooMany(s.i); return }
                    let recordStart = s.i
                    if p[s.i] == UInt8(ascii: "{") {
                        if let syntax = record(&s, index: index, into: &out) {
                            out.bodyIssue = syntax
                            return
                        }
                    } else {
                        guard s.skipValue(depth: 1) else { out.bodyIssue = syntaxIssue(s, index, fallback: "invalid value"); return }
                        out.recordIssues.append(
                            JSONRecordIssue(
                                kind: .notAnObject, record: index, offset: recordStart,
                                message: "a record must be a JSON object"))
                    }
                    out.records.append(recordStart..<s.i)
                    s.skipWhitespace()
                    guard s.i < n else { out.bodyIssue = syntaxIssue(s, nil, fallback: "unterminated array"); return }
                    if p[s.i] == UInt8(ascii: ",") { s.i += 1; continue }
                    if p[s.i] == UInt8(ascii: "]") { s.i += 1; break }
                    out.bodyIssue = JSONRecordIssue(kind: .malformedJSON, offset: s.i, message: "',' or ']' expected after record \(index)")
                    return
                }
            }
        } else {
            let valueStart = s.i
            if s.skipValue(depth: 1) {
                out.bodyIssue = JSONRecordIssue(
                    kind: .notAnObject, offset: valueStart,
                    message: "the body must be a JSON object or an array of objects")
            } else {
                out.bodyIssue = syntaxIssue(s, nil, fallback: "invalid JSON")
            }
            return
        }
        s.skipWhitespace()
        if s.i < n {
            out.bodyIssue = JSONRecordIssue(
                kind: .malformedJSON, offset: s.i,
                message: "unexpected data after the JSON value at byte \(s.i) (several objects? send NDJSON with Content-Type: application/x-ndjson)")
        }
    }

    private func splitNDJSON(_ p: UnsafePointer<UInt8>, _ start: Int, _ n: Int, into out: inout JSONRecordSplit) {
        var pos = start
        var line = 0
        while pos < n {
            line += 1
            var lineEnd = pos
            while lineEnd < n, p[lineEnd] != 0x0A { lineEnd += 1 }
            let next = lineEnd + 1
            var a = pos, b = lineEnd
            while a < b, Self.isSpace(p[a]) { a += 1 }
            while b > a, Self.isSpace(p[b - 1]) { b -= 1 }
            pos = next
            guard a < b else { continue }
            let index = out.records.count
            guard index < limits.maxRecords else { out.bodyIssue = tooMany(a); return }
            var s = scanner(p, a, b)
            if p[a] == UInt8(ascii: "{") {
                let issuesBefore = out.recordIssues.count
                if var syntax = record(&s, index: index, into: &out) {
                    syntax.message += " (line \(line))"
                    out.recordIssues.append(syntax)
                } else if s.i != b {
                    // At most one issue per record: trailing data replaces a schema issue.
                    out.recordIssues.removeSubrange(issuesBefore...)
                    out.recordIssues.append(
                        JSONRecordIssue(
                            kind: .malformedJSON, record: index, offset: s.i,
                            message: "unexpected data after the object (line \(line))"))
                }
            } else if s.skipValue(depth: 1), s.i == b {
                out.recordIssues.append(
                    JSONRecordIssue(
                        kind: .notAnObject, record: index, offset: a,
                        message: "a record must be a JSON object (line \(line))"))
            } else {
                var issue = syntaxIssue(s, index, fallback: "invalid JSON")
                issue.message += " (line \(line))"
                out.recordIssues.append(issue)
            }
            out.records.append(a..<b)
        }
    }

    private func scanner(_ p: UnsafePointer<UInt8>, _ start: Int, _ end: Int) -> JSONScanner {
        var s = JSONScanner(p, from: start, end: end)
        s.depthLimit = max(1, min(limits.maxDepth, JSONScanner.maxDepth))
        return s
    }

    private func syntaxIssue(_ s: JSONScanner, _ record: Int?, fallback: String) -> JSONRecordIssue {
        let message = s.errorPosition >= 0 ? "\(s.errorMessage)" : fallback
        let position = s.errorPosition >= 0 ? s.errorPosition : s.i
        let kind: JSONRecordIssue.Kind
        if s.errorIsUTF8 { kind = .invalidUTF8 } else if message == "nesting too deep" { kind = .tooDeep } else { kind = .malformedJSON }
        let text = kind == .tooDeep ? "nesting deeper than \(limits.maxDepth) levels" : message
        return JSONRecordIssue(kind: kind, record: record, offset: position, message: "\(text) at byte \(position)")
    }

    /// Scans the object at `s.i` (a `{`). Returns an issue when its syntax is broken (its end is
    /// then unknown); a schema or limit problem is appended to `out.recordIssues` instead.
    private func record(_ s: inout JSONScanner, index: Int, into out: inout JSONRecordSplit) -> JSONRecordIssue? {
        let p = s.p, n = s.end
        let objectStart = s.i
        s.i += 1
        s.skipWhitespace()
        var issue: JSONRecordIssue?
        var fields = 0
        var seenRequired = 0
        var seen = declared.isEmpty ? [] : [Bool](repeating: false, count: declared.count)
        /// Hashes of the decoded keys so far, with where each key is, to refuse a repeated key.
        var keys: [(hash: Int, start: Int, end: Int)] = []
        /// This record's keys, kept when `collectFieldNames` (added to the split's if the record is valid).
        var names: [String] = []
        if s.i < n, p[s.i] == UInt8(ascii: "}") {
            s.i += 1
        } else {
            while true {
                guard s.i < n, p[s.i] == UInt8(ascii: "\"") else {
                    _ = s.fail("object key (a string) expected")
                    return syntaxIssue(s, index, fallback: "object key expected")
                }
                let keyStart = s.i + 1
                guard s.skipString() else { return syntaxIssue(s, index, fallback: "invalid key") }
                let keyEnd = s.i - 1
                fields += 1
                if fields > limits.maxFields, issue == nil {
                    issue = JSONRecordIssue(
                        kind: .tooManyFields, record: index, offset: keyStart - 1,
                        message: "more than \(limits.maxFields) fields in one record")
                }
                if issue == nil, let repeated = Self.repeatedKey(p, keyStart, keyEnd, among: &keys) {
                    issue = JSONRecordIssue(
                        kind: .duplicateKey, record: index, field: repeated, offset: keyStart - 1,
                        message: "the key appears twice in one object; send each field once")
                }
                var target: (index: Int, field: Field)?
                var name = ""
                if needsKeys {
                    name = Self.keyString(p, keyStart, keyEnd)
                    target = declared[name]
                    if collectFieldNames { names.append(name) }
                    if issue == nil, reserved.contains(name) {
                        issue = JSONRecordIssue(
                            kind: .reservedField, record: index, field: name, offset: keyStart - 1,
                            message: "this field is set by the server; rename it in the record")
                    }
                }
                s.skipWhitespace()
                guard s.i < n, p[s.i] == UInt8(ascii: ":") else {
                    _ = s.fail("':' expected after an object key")
                    return syntaxIssue(s, index, fallback: "':' expected")
                }
                s.i += 1
                s.skipWhitespace()
                let valueStart = s.i
                guard s.i < n else { _ = s.fail("value expected"); return syntaxIssue(s, index, fallback: "value expected") }
                let c = p[s.i]
                var kind: JSONValueKind
                switch c {
                case UInt8(ascii: "\""):
                    guard s.skipString() else { return syntaxIssue(s, index, fallback: "invalid string") }
                    kind = .string
                case UInt8(ascii: "{"), UInt8(ascii: "["):
                    guard s.skipValue(depth: 1) else { return syntaxIssue(s, index, fallback: "invalid value") }
                    kind = .nested
                case UInt8(ascii: "t"):
                    guard s.literal("true") else { return syntaxIssue(s, index, fallback: "invalid value") }
                    kind = .bool
                case UInt8(ascii: "f"):
                    guard s.literal("false") else { return syntaxIssue(s, index, fallback: "invalid value") }
                    kind = .bool
                case UInt8(ascii: "n"):
                    guard s.literal("null") else { return syntaxIssue(s, index, fallback: "invalid value") }
                    kind = .null
                default:
                    var bits: UInt64 = 0
                    kind = .int
                    guard s.scanNumber(kind: &kind, bits: &bits) else { return syntaxIssue(s, index, fallback: "invalid number") }
                }
                if issue == nil, kind == .bigNumber, target == nil,
                    ExactNumber.decimalType(UnsafeBufferPointer(start: p + valueStart, count: s.i - valueStart)) == nil
                {
                    // No column type could hold it: refused here, not dead-lettered after a 202.
                    let text = String(decoding: UnsafeBufferPointer(start: p + valueStart, count: min(64, s.i - valueStart)), as: UTF8.self)
                    issue = JSONRecordIssue(
                        kind: .numberOutOfRange, record: index, field: needsKeys ? name : Self.keyString(p, keyStart, keyEnd), offset: valueStart,
                        message:
                            "\(text)\(s.i - valueStart > 64 ? "…" : "") is beyond every exact numeric type (float64, decimal of 38 digits); send it as a string to keep it"
                    )
                }
                if let target {
                    if !seen[target.index] {
                        seen[target.index] = true
                        if !target.field.nullable { seenRequired += 1 }
                    }
                    if issue == nil, let problem = Self.check(kind, p, valueStart, s.i, against: target.field) {
                        issue = JSONRecordIssue(
                            kind: kind == .null ? .nullValue : .typeMismatch, record: index, field: name,
                            offset: valueStart, message: problem)
                    }
                }
                s.skipWhitespace()
                guard s.i < n else { _ = s.fail("unterminated object"); return syntaxIssue(s, index, fallback: "unterminated object") }
                if p[s.i] == UInt8(ascii: ",") {
                    s.i += 1
                    s.skipWhitespace()
                    continue
                }
                if p[s.i] == UInt8(ascii: "}") {
                    s.i += 1
                    break
                }
                _ = s.fail("',' or '}' expected in an object")
                return syntaxIssue(s, index, fallback: "',' or '}' expected")
            }
        }
        if issue == nil, seenRequired < required.count {
            let missing = required.first { !seen[declared[$0.name]!.index] }!
            issue = JSONRecordIssue(
                kind: .missingField, record: index, field: missing.name, offset: objectStart,
                message: "required field is missing (declared \(missing.type), not nullable)")
        }
        if let issue {
            out.recordIssues.append(issue)
        } else {
            for name in names where out.seenFieldNames.insert(name).inserted { out.fieldNames.append(name) }
        }
        return nil
    }

    /// Why a value of `kind` does not fit `field`, or nil when it does.
    static func check(_ kind: JSONValueKind, _ p: UnsafePointer<UInt8>, _ start: Int, _ end: Int, against field: Field) -> String? {
        if kind == .null { return field.nullable ? nil : "must not be null (declared \(field.type), not nullable)" }
        let ok: Bool
        switch field.type {
        case .bool: ok = kind == .bool
        case .int64: ok = kind == .int
        case .float64:
            if kind == .int {
                // An integer beyond 2^53 that float64 would round.
                let text = UnsafeBufferPointer(start: p + start, count: end - start)
                guard let v = Int64(String(decoding: text, as: UTF8.self)), Int64(exactly: Double(v)) == v else {
                    return "\(String(decoding: text, as: UTF8.self)) does not fit float64 exactly (declare decimal or int64 to keep it)"
                }
            }
            ok = kind == .int || kind == .float
        case let .decimal(precision, scale):
            guard kind == .int || kind == .float || kind == .bigNumber || kind == .string else { ok = false; break }
            let text =
                kind == .string
                ? UnsafeBufferPointer(start: p + start + 1, count: max(0, end - start - 2))
                : UnsafeBufferPointer(start: p + start, count: end - start)
            if DecimalText.parse(text, precision: precision, scale: scale) == nil,
                kind == .string || ExactNumber.decimal(text, precision: precision, scale: scale) == nil
            {
                return "'\(String(decoding: text.prefix(64), as: UTF8.self))' does not fit decimal(\(precision),\(scale))"
            }
            ok = true
        case .string: ok = kind == .string
        case .binary:
            guard kind == .string else { ok = false; break }
            let n = max(0, end - start - 2)
            let valid = withUnsafeTemporaryAllocation(of: UInt8.self, capacity: max(n, 1)) { out in
                Base64.decode(p + start + 1, n, into: out.baseAddress!) != nil
            }
            if !valid { return "expected base64 text for a binary field" }
            ok = true
        case .json: ok = true
        case .date, .timestamp:
            guard kind == .string else { ok = false; break }
            let text = UnsafeBufferPointer(start: p + start + 1, count: max(0, end - start - 2))
            let parsed = field.type == .date ? TemporalText.parseDate(text) != nil : TemporalText.parseTimestamp(text) != nil
            if !parsed { return "'\(String(decoding: text.prefix(64), as: UTF8.self))' is not a valid \(field.type) (use ISO 8601, e.g. 2026-11-26T12:00:00Z)" }
            ok = true
        }
        return ok ? nil : "expected \(field.type), found \(kind.jsonName)"
    }

    /// The key at `start..<end` when an earlier key of the same object (in `keys`) decodes to
    /// the same string (`"a"` and `"\u0061"` are one key); otherwise records it and returns nil.
    static func repeatedKey(_ p: UnsafePointer<UInt8>, _ start: Int, _ end: Int, among keys: inout [(hash: Int, start: Int, end: Int)]) -> String? {
        let raw = UnsafeBufferPointer(start: p + start, count: end - start)
        let escaped = raw.contains(UInt8(ascii: "\\"))
        var hasher = Hasher()
        // The decoded bytes either way, so an escaped key and its plain spelling hash alike.
        if escaped {
            Array(keyString(p, start, end).utf8).withUnsafeBytes { hasher.combine(bytes: $0) }
        } else {
            hasher.combine(bytes: UnsafeRawBufferPointer(raw))
        }
        let hash = hasher.finalize()
        for key in keys where key.hash == hash {
            let name = keyString(p, start, end)
            if keyString(p, key.start, key.end) == name { return name }
        }
        keys.append((hash, start, end))
        return nil
    }

    /// The decoded key between quotes at `start..<end` (raw bytes unless it has escapes).
    static func keyString(_ p: UnsafePointer<UInt8>, _ start: Int, _ end: Int) -> String {
        let raw = UnsafeBufferPointer(start: p + start, count: end - start)
        guard raw.contains(UInt8(ascii: "\\")) else { return String(decoding: raw, as: UTF8.self) }
        var scratch = [UInt8](repeating: 0, count: end - start + 2)
        return scratch.withUnsafeMutableBufferPointer { out -> String in
            var s = JSONScanner(p, from: start - 1, end: end + 1)
            var used = 0, begin = 0, length = 0, inScratch = false
            guard s.scanString(out: out.baseAddress!, used: &used, start: &begin, length: &length, inScratch: &inScratch) else {
                return String(decoding: raw, as: UTF8.self)
            }
            let bytes =
                inScratch
                ? UnsafeBufferPointer(start: out.baseAddress! + begin, count: length)
                : UnsafeBufferPointer(start: p + begin, count: length)
            return String(decoding: bytes, as: UTF8.self)
        }
    }

    /// Appends the record at `range` of `body` as one NDJSON line: line breaks between tokens
    /// become spaces, and `prefix` (e.g. `"received_at":"…"`) is inserted as the first member.
    public static func appendLine(_ body: UnsafeRawBufferPointer, _ range: Range<Int>, prefix: [UInt8], to out: inout [UInt8]) {
        let p = body.baseAddress!.assumingMemoryBound(to: UInt8.self)
        var i = range.lowerBound + 1
        out.append(UInt8(ascii: "{"))
        if !prefix.isEmpty {
            out.append(contentsOf: prefix)
            var k = i
            while k < range.upperBound, isSpace(p[k]) { k += 1 }
            if p[k] != UInt8(ascii: "}") { out.append(UInt8(ascii: ",")) }
            i = k
        }
        var chunkStart = i
        while i < range.upperBound {
            let c = p[i]
            if c == 0x0A || c == 0x0D {
                out.append(contentsOf: UnsafeBufferPointer(start: p + chunkStart, count: i - chunkStart))
                out.append(0x20)
                chunkStart = i + 1
            }
            i += 1
        }
        out.append(contentsOf: UnsafeBufferPointer(start: p + chunkStart, count: range.upperBound - chunkStart))
        out.append(0x0A)
    }
}

extension JSONValueKind {
    var jsonName: String {
        switch self {
        case .null: "null"
        case .bool: "a boolean"
        case .int: "an integer"
        case .float: "a number with a fraction"
        case .bigNumber: "a number beyond int64 and float64 (a decimal or string field holds it exactly)"
        case .string: "a string"
        case .nested: "an object or array"
        }
    }
}
