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
        let lines = letters.map { l -> StoredDeadLetter in
            guard l.letter.stage == "ingest", l.letter.raw.first(where: { !Self.isSpace($0) }) == UInt8(ascii: "{") else { return l }
            var prefix: [UInt8] = []
            if let field = options.receivedAt {
                var stamp: [UInt8] = []
                TemporalText.appendTimestamp(micros: Int64((l.firstSeen.timeIntervalSince1970 * 1_000_000).rounded()), to: &stamp)
                prefix = Array("\"\(field)\":\"".utf8) + stamp + Array("\"".utf8)
            }
            // One line, as the endpoint queues it (line breaks inside the record become spaces).
            let raw = l.letter.raw
            let start = raw.firstIndex(of: UInt8(ascii: "{"))!
            let end = (raw.lastIndex(of: UInt8(ascii: "}")) ?? raw.count - 1) + 1
            var line: [UInt8] = []
            raw.withUnsafeBytes { JSONRecordSplitter.appendLine($0, start..<end, prefix: prefix, to: &line) }
            var copy = l
            copy.letter.raw = line
            return copy
        }
        let out = try await NDJSONLineDecoder(columns: options.decodeFields).decode(lines)
        // What fails again keeps the bytes it was sent with.
        let original = Dictionary(uniqueKeysWithValues: letters.map { ($0.id, $0.letter.raw) })
        return (
            out.batches,
            out.failures.map { f in
                var letter = f.letter
                letter.raw = original[f.id] ?? letter.raw
                return (f.id, letter)
            }
        )
    }

    static func isSpace(_ b: UInt8) -> Bool { b == 0x20 || b == 0x09 || b == 0x0A || b == 0x0D }
}
