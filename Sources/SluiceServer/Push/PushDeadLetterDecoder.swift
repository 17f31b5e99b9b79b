import Foundation
import SluiceCore
import SluiceFormats

/// Decodes the dead letters of an HTTP push stream again (`sluice dlq replay`) with its current
/// `columns`: records refused at the door (stage `ingest`, `on_invalid: dead_letter`; the raw
/// record as sent) and lines of queued requests that did not decode (stage `decode`). A record
/// from the door gets the arrival stamp it would have had (`received_at`): the time its letter
/// was filed, when the request arrived.
struct PushDeadLetterDecoder: DeadLetterDecoder {
    let options: HTTPStreamOptions

    var stages: [String] { ["ingest", "decode"] }

    func decode(_ letters: [StoredDeadLetter]) async throws -> (batches: [(records: RecordBatch, ids: [Int64])], failures: [(id: Int64, letter: DeadLetter)]) {
        let decoder = NDJSONLineDecoder(columns: options.decodeFields)
        // Lines of queued requests are NDJSON as they are; records from the door are made lines.
        let door = letters.filter { $0.letter.stage == "ingest" }
        let queued = letters.filter { $0.letter.stage != "ingest" }
        let fromDoor = try await decoder.decodeRecords(door) { l in
            guard let field = options.receivedAt else { return [] }
            var stamp: [UInt8] = []
            TemporalText.appendTimestamp(micros: Int64((l.firstSeen.timeIntervalSince1970 * 1_000_000).rounded()), to: &stamp)
            return Array("\"\(field)\":\"".utf8) + stamp + Array("\"".utf8)
        }
        let fromQueue = try await decoder.decode(queued)
        return (fromDoor.batches + fromQueue.batches, fromDoor.failures + fromQueue.failures)
    }
}
