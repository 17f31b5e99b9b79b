import Foundation
import SluiceCore
import SluiceFormats

extension HTTPAPISource {
    /// Records of a JSON or NDJSON response that did not decode are decoded again with the
    /// current `columns`.
    public func deadLetterDecoder() -> (any DeadLetterDecoder)? { HTTPAPIDeadLetterDecoder(options: options) }
}

/// Decodes the dead letters of an `http_api` source again (`sluice dlq replay`): a JSON record
/// (one of a response's records, as the API sent it) with the source's current `columns`. What
/// a replay cannot rebuild fails again, saying what to do: a whole response that was not valid
/// JSON, a CSV row (its header is not kept), a record of a `fan_out` request (its parent's
/// fields are not kept). Those are pulled again instead (`sluice backfill` or a reset).
struct HTTPAPIDeadLetterDecoder: DeadLetterDecoder {
    let options: HTTPAPISourceOptions

    func decode(_ letters: [StoredDeadLetter]) async throws -> (batches: [(records: RecordBatch, ids: [Int64])], failures: [(id: Int64, letter: DeadLetter)]) {
        var records: [StoredDeadLetter] = []
        var failures: [(id: Int64, letter: DeadLetter)] = []
        for l in letters {
            let raw = l.letter.raw
            let problem: String? =
                if options.fanOut != nil {
                    "a record of a `fan_out` request cannot be replayed (its parent's fields are not kept); pull it again"
                } else if options.format == .csv {
                    "a CSV row cannot be replayed without its response's header; pull it again"
                } else if l.letter.errorKind == "malformed_response" || !DeadLetterRows.isObject(raw) {
                    "this dead letter is a whole response, not a record; pull it again once the API answers well"
                } else {
                    nil
                }
            if let problem {
                failures.append((l.id, DeadLetterRows.again(l, kind: "unsupported", message: problem)))
                continue
            }
            records.append(l)
        }
        let out = try await NDJSONLineDecoder(columns: options.declared.isEmpty ? nil : options.declared).decodeRecords(records)
        return (out.batches, failures + out.failures)
    }
}
