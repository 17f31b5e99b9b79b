import SluiceCore
@testable import SluiceFormats
import Testing

@Suite struct JSONRecordSplitterTests {
    func split(
        _ text: String, _ format: JSONBodyFormat = .json, limits: JSONRecordLimits = JSONRecordLimits(),
        fields: [Field] = []
    ) -> JSONRecordSplit {
        split(Array(text.utf8), format, limits: limits, fields: fields)
    }

    func split(
        _ bytes: [UInt8], _ format: JSONBodyFormat = .json, limits: JSONRecordLimits = JSONRecordLimits(),
        fields: [Field] = []
    ) -> JSONRecordSplit {
        bytes.withUnsafeBytes { JSONRecordSplitter(limits: limits, fields: fields).split($0, format: format) }
    }

    func texts(_ text: String, _ s: JSONRecordSplit) -> [String] {
        let b = Array(text.utf8)
        return s.records.map { String(decoding: b[$0], as: UTF8.self) }
    }

    @Test func objectArrayAndNDJSONBodies() {
        let one = #" {"a": 1} "#
        #expect(texts(one, split(one)) == [#"{"a": 1}"#])
        let array = "[{\"a\":1},\n {\"b\": [1,2]} , {}]"
        let s = split(array)
        #expect(s.bodyIssue == nil && s.recordIssues.isEmpty)
        #expect(texts(array, s) == [#"{"a":1}"#, #"{"b": [1,2]}"#, "{}"])
        let nd = "{\"a\":1}\r\n\n  \n{\"a\":2}"
        let n = split(nd, .ndjson)
        #expect(texts(nd, n) == [#"{"a":1}"#, #"{"a":2}"#])
        #expect(split("[]").bodyIssue?.kind == .emptyBody)
        #expect(split("", .ndjson).bodyIssue?.kind == .emptyBody)
        #expect(split("\u{FEFF}{\"a\":1}").records.count == 1, "a BOM is skipped")
    }

    @Test func malformedBodiesAreBodyIssuesWithOffsets() {
        #expect(split(#"{"a": 1"#).bodyIssue?.kind == .malformedJSON)
        #expect(split(#"[{"a": 1}, {"b": }]"#).bodyIssue?.kind == .malformedJSON)
        #expect(split(#"[{"a": 1} {"b": 2}]"#).bodyIssue?.kind == .malformedJSON)
        #expect(split(#"{"a":1}{"b":2}"#).bodyIssue?.message.contains("NDJSON") == true)
        #expect(split("42").bodyIssue?.kind == .notAnObject)
        #expect(split("nul").bodyIssue?.kind == .malformedJSON)
        var bad = Array(#"{"a": "x"#.utf8)
        bad += [0xC3, 0x28]
        bad += Array(#""}"#.utf8)
        let u = split(bad)
        #expect(u.bodyIssue?.kind == .invalidUTF8)
        #expect(u.bodyIssue?.offset == 8, "the offset of the bad byte")
    }

    @Test func recordLevelIssuesKeepTheirIndex() {
        let s = split("[{\"a\":1}, 7, {\"a\":2}]")
        #expect(s.bodyIssue == nil)
        #expect(s.records.count == 3)
        #expect(s.recordIssues.map(\.record) == [1])
        #expect(s.recordIssues[0].kind == .notAnObject)
        let nd = split("{\"a\":1}\n{\"a\":\n[1]\n{\"a\":3}", .ndjson)
        #expect(nd.records.count == 4)
        #expect(nd.recordIssues.map(\.record) == [1, 2])
        #expect(nd.recordIssues[0].message.contains("line 2"))
    }

    @Test func limitsOnDepthFieldsAndRecords() {
        let deep = "{\"a\":" + String(repeating: "[", count: 40) + String(repeating: "]", count: 40) + "}"
        #expect(split(deep, limits: JSONRecordLimits(maxDepth: 32)).bodyIssue?.kind == .tooDeep)
        #expect(split(deep, limits: JSONRecordLimits(maxDepth: 64)).bodyIssue == nil)
        let hostile = String(repeating: "[", count: 100_000)
        #expect(split(hostile).bodyIssue != nil, "a very deep array is refused, not a stack overflow")
        let wide = "{" + (0..<20).map { "\"f\($0)\":\($0)" }.joined(separator: ",") + "}"
        #expect(split(wide, limits: JSONRecordLimits(maxFields: 10)).recordIssues.first?.kind == .tooManyFields)
        let many = "[" + Array(repeating: "{}", count: 11).joined(separator: ",") + "]"
        #expect(split(many, limits: JSONRecordLimits(maxRecords: 10)).bodyIssue?.kind == .tooManyRecords)
        #expect(split(many, limits: JSONRecordLimits(maxRecords: 11)).bodyIssue == nil)
    }

    @Test func declaredFieldsAreCheckedByTypePresenceAndNullability() {
        let fields = [
            Field("id", .int64, nullable: false), Field("price", .float64), Field("ts", .timestamp),
            Field("ok", .bool), Field("name", .string), Field("doc", .json), Field("d", .date),
        ]
        func kind(_ record: String) -> (JSONRecordIssue.Kind, String?)? {
            let s = split(record, fields: fields)
            return s.recordIssues.first.map { ($0.kind, $0.field) }
        }
        #expect(kind(#"{"id": 1, "price": 2, "ts": "2026-11-26T10:00:00Z", "ok": true, "name": "x", "doc": {"a":[1]}, "d": "2026-01-02", "extra": 5}"#) == nil)
        #expect(kind(#"{"id": 1.5}"#)! == (.typeMismatch, "id"))
        #expect(kind(#"{"id": "1"}"#)! == (.typeMismatch, "id"))
        #expect(kind(#"{"price": 1}"#)! == (.missingField, "id"))
        #expect(kind(#"{"id": null}"#)! == (.nullValue, "id"))
        #expect(kind(#"{"id": 1, "price": null, "name": null}"#) == nil)
        #expect(kind(#"{"id": 1, "ts": "yesterday"}"#)! == (.typeMismatch, "ts"))
        #expect(kind(#"{"id": 1, "ok": "true"}"#)! == (.typeMismatch, "ok"))
        #expect(kind(#"{"id": 1, "name": 5}"#)! == (.typeMismatch, "name"))
        #expect(kind(#"{"\u0069d": "x"}"#)! == (.typeMismatch, "id"), "escaped keys are decoded")
        let issue = split(#"[{"id":1},{"id":"x"}]"#, fields: fields).recordIssues[0]
        #expect(issue.record == 1)
        #expect(issue.isSchemaViolation)
        #expect(issue.description.contains("record 1") && issue.description.contains("'id'"))
    }

    @Test func appendLineMakesOneLineAndInsertsThePrefix() {
        let body = "[{\n  \"a\": 1,\r\n  \"b\": \"x\"\n}, { }]"
        let s = split(body)
        var out: [UInt8] = []
        let prefix = Array(#""received_at":"2026-11-26T00:00:00Z""#.utf8)
        Array(body.utf8).withUnsafeBytes { raw in
            for r in s.records { JSONRecordSplitter.appendLine(raw, r, prefix: prefix, to: &out) }
            JSONRecordSplitter.appendLine(raw, s.records[0], prefix: [], to: &out)
        }
        let lines = String(decoding: out, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false)
        #expect(lines.count == 4 && lines[3].isEmpty)
        #expect(lines[0] == #"{"received_at":"2026-11-26T00:00:00Z","a": 1,    "b": "x" }"#)
        #expect(lines[1] == #"{"received_at":"2026-11-26T00:00:00Z"}"#)
        #expect(lines[2] == #"{   "a": 1,    "b": "x" }"#)
    }

    @Test func fieldNamesOfValidRecordsAreCollectedOnceInFirstSeenOrder() {
        let body = Array(
            """
            {"a":1,"b":2}
            {"b":3,"c":{"nested":1},"\\u0064":4}
            {"x":1, broken
            {"a":1,"a":2,"y":3}
            {"e":null}

            """.utf8)
        let s = body.withUnsafeBytes { JSONRecordSplitter(collectFieldNames: true).split($0, format: .ndjson) }
        // Nested keys are not fields of the record; records with an issue add nothing.
        #expect(s.fieldNames == ["a", "b", "c", "d", "e"])
        #expect(s.recordIssues.count == 2)
        let plain = body.withUnsafeBytes { JSONRecordSplitter().split($0, format: .ndjson) }
        #expect(plain.fieldNames.isEmpty)
    }
}
