import SluiceCore

/// Decodes dead letters whose raw bytes are one row each (a CSV row, an NDJSON line, a JSON
/// object a later stage rendered) with a prepared ``RecordDecoder``: the shared half of every
/// ``DeadLetterDecoder``.
public enum DeadLetterRows {
    /// The decoded rows as batches (each with the ids of the letters its rows came from, row for
    /// row) and a new dead letter of `stage` for each letter that still does not decode (its
    /// original location, the new reason). `decoder` must be prepared (header, schema).
    public static func decode(
        _ letters: [StoredDeadLetter], with decoder: any RecordDecoder, stage: String = "decode"
    ) -> (batches: [(records: RecordBatch, ids: [Int64])], failures: [(id: Int64, letter: DeadLetter)]) {
        var batches: [(RecordBatch, [Int64])] = []
        var failures: [(Int64, DeadLetter)] = []
        // A row spanning lines (a quoted CSV field) would shift the others: decoded alone.
        let oneByOne = letters.indices.contains { i in letters[i].letter.raw.withUnsafeBufferPointer { $0.contains(10) || $0.contains(13) } }
        let chunks: [ArraySlice<StoredDeadLetter>] = oneByOne ? letters.map { [$0][...] } : [letters[...]]
        for chunk in chunks {
            var bytes: [UInt8] = []
            var size = 0
            for i in chunk.indices { size += chunk[i].letter.raw.count + 1 }
            bytes.reserveCapacity(size)
            for i in chunk.indices {
                chunk[i].letter.raw.withUnsafeBufferPointer { bytes.append(contentsOf: $0) }
                bytes.append(10)
            }
            decoder.seek(offset: 0, line: 1)
            // The decoder hands over at most its batch size per call: call until all is read.
            var outputs: [RecordBatch] = []
            var rejected: [Int: DecodeReject] = [:]
            var offset = 0
            while offset < bytes.count {
                let output = bytes.withUnsafeBytes { decoder.decode(UnsafeRawBufferPointer(rebasing: $0[offset...]), isFinal: true) }
                outputs.append(output.batch)
                for r in output.rejects { rejected[r.line - 1] = r }
                guard output.consumed > 0 else { break }
                offset += output.consumed
            }
            var ids: [Int64] = []
            ids.reserveCapacity(chunk.count)
            if chunk.count == 1, let r = rejected.values.min(by: { $0.line < $1.line }) {
                // A letter of several lines fails whole when any of them does.
                failures.append((chunk[chunk.startIndex].id, again(chunk[chunk.startIndex], stage: stage, kind: r.kind, message: r.message)))
                continue
            }
            if rejected.isEmpty {
                for i in chunk.indices { ids.append(chunk[i].id) }
            } else {
                for (i, l) in chunk.enumerated() {
                    if let r = rejected[i] {
                        failures.append((l.id, again(l, stage: stage, kind: r.kind, message: r.message)))
                    } else {
                        ids.append(l.id)
                    }
                }
            }
            let rows = outputs.reduce(0) { $0 + $1.count }
            if ids.count == rows {
                var next = 0
                for batch in outputs where batch.count > 0 {
                    batches.append((batch, Array(ids[next..<next + batch.count])))
                    next += batch.count
                }
            } else {
                // The decoder did not give one row per letter: replay none of them.
                for (i, l) in chunk.enumerated() where rejected[i] == nil {
                    let whole = chunk.count == 1 && rows > 1
                    let message =
                        whole
                        ? "this dead letter holds \(rows) records (a whole message); a replay takes one record per dead letter: export it (`sluice dlq export`) and send its records again"
                        : "decoding again gave \(rows) rows for \(ids.count) letters"
                    failures.append((l.id, again(l, stage: stage, kind: whole ? "unsupported" : "internal_error", message: message)))
                }
            }
        }
        return (batches, failures)
    }

    /// The rows of `lines` (one per line) decoded with a prepared `decoder`, in batches with the
    /// ids of their rows; nil when a row does not decode or the decoder does not give one row per
    /// line (the letters are then decoded one by one).
    public static func decode(lines: DeadLetterBlock.Lines, with decoder: any RecordDecoder) -> [(records: RecordBatch, ids: [Int64])]? {
        var batches: [(records: RecordBatch, ids: [Int64])] = []
        var next = 0
        let whole = lines.withTexts { text in
            decoder.seek(offset: 0, line: 1)
            var offset = 0
            while offset < text.count {
                let output = decoder.decode(UnsafeRawBufferPointer(rebasing: text[offset...]), isFinal: true)
                guard output.rejects.isEmpty, next + output.batch.count <= lines.ids.count else { return false }
                if output.batch.count > 0 {
                    batches.append((output.batch, Array(lines.ids[next..<next + output.batch.count])))
                    next += output.batch.count
                }
                guard output.consumed > 0 else { break }
                offset += output.consumed
            }
            return true
        }
        return whole && next == lines.ids.count ? batches : nil
    }

    /// The letter `l` failing again: same location, bytes and schema; the new reason.
    public static func again(_ l: StoredDeadLetter, stage: String? = nil, kind: String, message: String) -> DeadLetter {
        l.failedAgain(kind: kind, message: message, stage: stage)
    }
}

/// Decodes dead letters of the stages after decoding (`schema`, `dedupe`, `sink`): their raw
/// bytes are the row rendered as a JSON object, and ``DeadLetter/schema`` holds the types the
/// row had, so it is decoded back into exactly those types.
public struct RenderedRowDecoder: DeadLetterDecoder {
    public init() {}

    public func decode(_ letters: [StoredDeadLetter]) async throws -> (
        batches: [(records: RecordBatch, ids: [Int64])], failures: [(id: Int64, letter: DeadLetter)]
    ) {
        var groups: [String: [StoredDeadLetter]] = [:]
        var order: [String] = []
        var failures: [(id: Int64, letter: DeadLetter)] = []
        for l in letters {
            guard let schema = l.letter.schema else {
                failures.append(
                    (
                        l.id,
                        DeadLetterRows.again(
                            l, kind: "unsupported",
                            message:
                                "this dead letter was written before Sluice kept the row's types with it; it cannot be replayed (export it with `sluice dlq export`)"
                        )
                    ))
                continue
            }
            if groups[schema] == nil { order.append(schema) }
            groups[schema, default: []].append(l)
        }
        var batches: [(records: RecordBatch, ids: [Int64])] = []
        for text in order {
            let group = groups[text]!
            let fields: [Field]
            do {
                fields = try SluiceSchemaText.parse(text: text).fields
            } catch {
                for l in group { failures.append((l.id, DeadLetterRows.again(l, kind: "unsupported", message: "the stored schema does not parse: \(error)"))) }
                continue
            }
            let decoder = NDJSONDecoder(options: NDJSONOptions(columns: fields))
            var sample: [UInt8] = []
            for l in group.prefix(1000) { sample += l.letter.raw + [10] }
            do {
                try sample.withUnsafeBytes { _ = try decoder.prepare(sample: $0, isWholeInput: true) }
            } catch {
                for l in group { failures.append((l.id, DeadLetterRows.again(l, kind: "malformed_row", message: "\(error)"))) }
                continue
            }
            let out = DeadLetterRows.decode(group, with: decoder, stage: group[0].letter.stage)
            batches += out.batches
            failures += out.failures
        }
        return (batches, failures)
    }
}

/// Decodes dead letters whose raw bytes are NDJSON lines (records pushed over HTTP, JetStream
/// messages) with a source's current declared columns.
public struct NDJSONLineDecoder: DeadLetterDecoder {
    public let options: NDJSONOptions

    public init(columns: [Field]?) {
        var options = NDJSONOptions(columns: columns)
        options.batchRows = 16_384
        self.options = options
    }

    public func decode(_ letters: [StoredDeadLetter]) async throws -> (
        batches: [(records: RecordBatch, ids: [Int64])], failures: [(id: Int64, letter: DeadLetter)]
    ) {
        let rows = letters.filter { !$0.letter.raw.isEmpty }
        guard !rows.isEmpty else { return ([], []) }
        let decoder = NDJSONDecoder(options: options)
        var sample: [UInt8] = []
        for l in rows.prefix(1000) {
            sample += l.letter.raw
            sample.append(10)
        }
        do {
            try sample.withUnsafeBytes { _ = try decoder.prepare(sample: $0, isWholeInput: true) }
        } catch {
            return ([], rows.map { ($0.id, DeadLetterRows.again($0, kind: "malformed_row", message: "\(error)")) })
        }
        return DeadLetterRows.decode(rows, with: decoder)
    }
}

extension NDJSONLineDecoder {
    /// Decodes letters whose raw bytes are one JSON record each, as an API or a client sent it
    /// (possibly over several lines): each becomes one NDJSON line, `prefix(letter)` inserted
    /// first in the object (a field the source adds, such as an arrival stamp). Letters that fail
    /// again keep the bytes they were sent with.
    public func decodeRecords(
        _ letters: [StoredDeadLetter], prefix: (StoredDeadLetter) -> [UInt8] = { _ in [] }
    ) async throws -> (batches: [(records: RecordBatch, ids: [Int64])], failures: [(id: Int64, letter: DeadLetter)]) {
        let lines = letters.map { l -> StoredDeadLetter in
            let raw = l.letter.raw
            guard let start = raw.firstIndex(where: { !DeadLetterRows.isSpace($0) }), raw[start] == UInt8(ascii: "{") else { return l }
            let end = (raw.lastIndex(of: UInt8(ascii: "}")) ?? raw.count - 1) + 1
            var line: [UInt8] = []
            raw.withUnsafeBytes { JSONRecordSplitter.appendLine($0, start..<end, prefix: prefix(l), to: &line) }
            var copy = l
            copy.letter.raw = line
            return copy
        }
        let out = try await decode(lines)
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
}

extension DeadLetterRows {
    /// JSON whitespace.
    public static func isSpace(_ b: UInt8) -> Bool { b == 0x20 || b == 0x09 || b == 0x0A || b == 0x0D }

    /// True when `raw` is a JSON object (its first non-space byte is `{`).
    public static func isObject(_ raw: [UInt8]) -> Bool { raw.first(where: { !isSpace($0) }) == UInt8(ascii: "{") }
}
