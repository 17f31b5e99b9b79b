import SluiceCore
import Testing
@testable import SluiceFormats

/// What decoding a whole input produced.
struct Decoded {
    var schemas: [Schema] = []
    /// Rows as name → value, without NULLs (so rows from batches of different schemas compare).
    var rows: [[String: Value]] = []
    /// Rows as positional values under the last schema (NULL for columns a batch lacked).
    var table: [[Value]] {
        guard let schema = schemas.last else { return [] }
        return rows.map { row in schema.fields.map { row[$0.name] ?? .null } }
    }
    var rejects: [DecodeReject] = []
    var calls = 0
}

/// Feeds `data` to a prepared decoder the way the file source does: chunks of `chunk` bytes,
/// passing unconsumed bytes again with the next chunk.
func decodeAll(_ decoder: some RecordDecoder, _ data: [UInt8], from start: Int, chunk: Int = 4 << 20) -> Decoded {
    var result = Decoded()
    var pending: [UInt8] = []
    var pos = start
    while true {
        let take = min(chunk, data.count - pos)
        pending.append(contentsOf: data[pos..<(pos + take)])
        pos += take
        let isFinal = pos == data.count
        while true {
            let out = pending.withUnsafeBytes { decoder.decode($0, isFinal: isFinal) }
            result.calls += 1
            collect(out, into: &result)
            pending.removeFirst(out.consumed)
            if out.consumed == 0 || pending.isEmpty { break }
        }
        if isFinal { break }
    }
    return result
}

func collect(_ out: DecodeOutput, into result: inout Decoded) {
    let batch = out.batch
    if result.schemas.last != batch.schema { result.schemas.append(batch.schema) }
    for r in 0..<batch.count {
        var row: [String: Value] = [:]
        for (c, field) in batch.schema.fields.enumerated() {
            let v = batch.columns[c].value(at: r)
            if v != .null { row[field.name] = v }
        }
        result.rows.append(row)
    }
    result.rejects.append(contentsOf: out.rejects)
}

func prepare(_ decoder: some RecordDecoder, _ data: [UInt8], isWholeInput: Bool = true) throws -> Int {
    try data.withUnsafeBytes { try decoder.prepare(sample: $0, isWholeInput: isWholeInput) }
}

/// Prepares on the whole input and decodes it in chunks.
func csv(_ text: String, _ options: CSVOptions = CSVOptions(), chunk: Int = 4 << 20) throws -> (CSVDecoder, Decoded) {
    let data = Array(text.utf8)
    let decoder = CSVDecoder(options: options)
    let start = try prepare(decoder, data)
    return (decoder, decodeAll(decoder, data, from: start, chunk: chunk))
}

func ndjson(_ text: String, _ options: NDJSONOptions = NDJSONOptions(), chunk: Int = 4 << 20) throws -> (NDJSONDecoder, Decoded) {
    let data = Array(text.utf8)
    let decoder = NDJSONDecoder(options: options)
    let start = try prepare(decoder, data)
    return (decoder, decodeAll(decoder, data, from: start, chunk: chunk))
}

func s(_ v: String) -> Value { .string(v) }
func i(_ v: Int64) -> Value { .int64(v) }
func f(_ v: Double) -> Value { .float64(v) }
func b(_ v: Bool) -> Value { .bool(v) }
func ts(_ text: String) -> Value {
    var t = text
    return .timestamp(t.withUTF8 { TemporalText.parseTimestamp($0)! })
}
func date(_ text: String) -> Value {
    var t = text
    return .date(t.withUTF8 { TemporalText.parseDate($0)! })
}
