import Foundation
import SluiceCore
import SluiceFormats

/// One page turned into records: the rows, the records that could not be read (located by URL,
/// page and record), and what pagination and the incremental cursor need from the page.
struct DecodedPage {
    var batch: RecordBatch
    var rejects: [DeadLetter]
    /// Records on the page, read or not.
    var records: Int
    /// The incremental field's greatest value on the page, as written.
    var maxCursor: String?
    /// The `from_record` pagination field of the page's last record.
    var lastRecordCursor: String?
}

/// Decodes pages of one pass with one schema: JSON (the array at `records`), NDJSON or CSV.
/// JSON records are validated and re-laid as NDJSON lines for the NDJSON decoder, so numbers stay
/// exact and types are inferred as for files.
final class PageDecoder {
    let options: HTTPAPISourceOptions
    private var ndjson: NDJSONDecoder?
    /// Pages from an API the user chose: limits far above the push endpoint's, still bounded.
    static let limits = JSONRecordLimits(maxRecords: 10_000_000, maxDepth: 64, maxFields: 10_000)
    private let splitter = JSONRecordSplitter(limits: PageDecoder.limits)

    init(options: HTTPAPISourceOptions) {
        self.options = options
    }

    var schema: Schema? { ndjson?.schema }

    /// Decodes one response body. Throws when the body as a whole cannot be read (the caller
    /// dead-letters the page).
    func decode(_ body: [UInt8], location: String, prefix: [UInt8] = []) throws -> DecodedPage {
        if options.format == .csv { return try decodeCSV(body, location: location) }
        return try body.withUnsafeBytes { raw -> DecodedPage in
            var region = 0..<raw.count
            if options.format == .json {
                do {
                    guard let r = try JSONLookup.range(of: options.records, in: raw) else {
                        return DecodedPage(batch: RecordBatch.empty(Schema([])), rejects: [], records: 0)
                    }
                    region = r
                } catch let e as JSONLookupError {
                    throw SluiceError(.malformedInput, "the response is not valid JSON: \(e)", location: location)
                }
                let first = raw[region.lowerBound]
                if first == UInt8(ascii: "n") { return DecodedPage(batch: RecordBatch.empty(Schema([])), rejects: [], records: 0) }
                guard first == UInt8(ascii: "[") || first == UInt8(ascii: "{") else {
                    throw SluiceError(
                        .malformedInput, "`records: \(options.records.joined(separator: "."))` is not an array of records in the response",
                        location: location)
                }
            }
            let slice = UnsafeRawBufferPointer(rebasing: raw[region])
            let split = splitter.split(slice, format: options.format == .json ? .json : .ndjson)
            if let issue = split.bodyIssue, issue.kind != .emptyBody {
                throw SluiceError(.malformedInput, "the response's records cannot be read: \(issue)", location: location)
            }
            var rejects: [DeadLetter] = []
            var payload: [UInt8] = []
            payload.reserveCapacity(slice.count + split.records.count)
            /// Record index of each payload line.
            var lineRecord: [Int] = []
            lineRecord.reserveCapacity(split.records.count)
            var issues = split.recordIssues.makeIterator()
            var nextIssue = issues.next()
            var maxCursor: String?
            for (index, range) in split.records.enumerated() {
                if let field = options.incremental?.field {
                    let value = try? JSONLookup.value(at: [field], in: UnsafeRawBufferPointer(rebasing: slice[range]))?.text
                    if let value, maxCursor.map({ CursorValue.isGreater(value, than: $0) }) ?? true { maxCursor = value }
                    // A backfill keeps [from, to): the API may not bound the range itself.
                    if case let (from, to)? = options.backfill {
                        guard let value, !CursorValue.isGreater(from, than: value), CursorValue.isGreater(to, than: value) else { continue }
                    }
                }
                if let issue = nextIssue, issue.record == index {
                    rejects.append(
                        DeadLetter(
                            stage: "decode", errorKind: issue.kind.rawValue, message: issue.description, location: "\(location) record \(index)",
                            raw: Array(slice[range])))
                    nextIssue = issues.next()
                    continue
                }
                JSONRecordSplitter.appendLine(slice, range, prefix: prefix, to: &payload)
                lineRecord.append(index)
            }
            var lastRecordCursor: String?
            if case let .cursor(c) = options.pagination, let field = c.fromRecord, let last = split.records.last {
                lastRecordCursor = try? JSONLookup.value(at: [field], in: UnsafeRawBufferPointer(rebasing: slice[last]))?.text
            }
            let batch = try decodeLines(payload, lineRecord: lineRecord, location: location, rejects: &rejects)
            return DecodedPage(
                batch: batch, rejects: rejects, records: split.records.count, maxCursor: maxCursor, lastRecordCursor: lastRecordCursor)
        }
    }

    private func decodeLines(_ payload: [UInt8], lineRecord: [Int], location: String, rejects: inout [DeadLetter]) throws -> RecordBatch {
        guard !payload.isEmpty else { return RecordBatch.empty(ndjson?.schema ?? Schema([])) }
        let decoder: NDJSONDecoder
        if let existing = ndjson {
            decoder = existing
        } else {
            decoder = NDJSONDecoder(
                options: NDJSONOptions(columns: options.declared.isEmpty ? nil : options.declared, batchRows: 10_000_000))
            _ = try payload.withUnsafeBytes { try decoder.prepare(sample: $0, isWholeInput: true) }
            ndjson = decoder
        }
        decoder.seek(offset: 0, line: 1)
        let output = payload.withUnsafeBytes { decoder.decode($0, isFinal: true) }
        for r in output.rejects {
            let index = r.line - 1 < lineRecord.count ? lineRecord[r.line - 1] : r.line - 1
            rejects.append(DeadLetter(stage: "decode", errorKind: r.kind, message: r.message, location: "\(location) record \(index)", raw: r.raw))
        }
        return output.batch
    }

    private func decodeCSV(_ body: [UInt8], location: String) throws -> DecodedPage {
        let decoder = CSVDecoder(options: CSVOptions(columns: options.declared.isEmpty ? nil : options.declared, batchRows: 10_000_000))
        let start = try body.withUnsafeBytes { try decoder.prepare(sample: $0, isWholeInput: true) }
        decoder.seek(offset: start, line: 2)
        let output = body.withUnsafeBytes { decoder.decode(UnsafeRawBufferPointer(rebasing: $0[start...]), isFinal: true) }
        let rejects = output.rejects.map {
            DeadLetter(stage: "decode", errorKind: $0.kind, message: $0.message, location: "\(location) line \($0.line)", raw: $0.raw)
        }
        return DecodedPage(batch: output.batch, rejects: rejects, records: output.batch.count + rejects.count)
    }
}
