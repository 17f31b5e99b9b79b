import SluiceCore
import SluiceFormats

// The input is a push request body. It is split as the push endpoint splits it (as JSON and as
// NDJSON, against a declared schema and without one); the valid records are then rewritten into
// NDJSON lines with a `received_at` prefix and decoded, as the pipeline behind the endpoint does.
// Mirrored by Tests/SluiceFormatsTests/FuzzRegressionTests.swift.

let fields = [
    Field("id", .int64, nullable: false), Field("f", .float64), Field("d", .decimal(precision: 38, scale: 2)), Field("b", .bool),
    Field("t", .timestamp), Field("day", .date), Field("s", .string), Field("bin", .binary), Field("j", .json),
]
let splitters = [
    JSONRecordSplitter(limits: JSONRecordLimits(maxRecords: 100, maxDepth: 16, maxFields: 50), collectFieldNames: true),
    JSONRecordSplitter(fields: fields, reserved: ["received_at"], collectFieldNames: true),
]
let prefix = Array(#""received_at":"2026-01-02T03:04:05.000006Z""#.utf8)

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzPushSplitter(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let body = UnsafeRawBufferPointer(start: data, count: size)
    for splitter in splitters {
        for format in [JSONBodyFormat.json, .ndjson] {
            let split = splitter.split(body, format: format)
            check(split, size: size)
            guard split.bodyIssue == nil else { continue }
            var bad = Set<Int>()
            for issue in split.recordIssues { bad.insert(issue.record ?? -1) }
            var payload: [UInt8] = []
            for (index, range) in split.records.enumerated() where !bad.contains(index) {
                JSONRecordSplitter.appendLine(body, range, prefix: prefix, to: &payload)
            }
            let decoder = NDJSONDecoder()
            _ = try? payload.withUnsafeBytes { try decoder.prepare(sample: $0, isWholeInput: true) }
            let out = payload.withUnsafeBytes { decoder.decode($0, isFinal: true) }
            precondition(out.consumed == payload.count, "the decoder left \(payload.count - out.consumed) bytes of the rewritten lines")
        }
    }
    return 0
}

/// What the endpoint relies on: ranges inside the body, issues naming existing records.
func check(_ split: JSONRecordSplit, size: Int) {
    for r in split.records { precondition(r.lowerBound >= 0 && r.upperBound <= size && !r.isEmpty, "record range \(r) outside 0..<\(size)") }
    for issue in split.recordIssues {
        precondition(issue.record.map { $0 >= 0 && $0 < split.records.count } ?? false, "issue for a record that does not exist: \(issue)")
        precondition(issue.offset >= 0 && issue.offset <= size, "issue offset \(issue.offset) outside the body")
    }
    if let issue = split.bodyIssue { precondition(issue.offset >= 0 && issue.offset <= size, "body issue offset \(issue.offset) outside the body") }
}
