import Foundation
import SluiceCore
import SluiceFormats
import Testing

/// The inputs of a fuzz target: its seed corpus (`Fuzz/Corpus/<target>/`) and the reproducers of
/// what fuzzing found (`Fuzz/Regressions/<target>/`), by file name.
func fuzzInputs(_ target: String, filePath: String = #filePath) -> [(name: String, bytes: [UInt8])] {
    let root = URL(fileURLWithPath: filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    var inputs: [(String, [UInt8])] = []
    for folder in ["Fuzz/Corpus", "Fuzz/Regressions"] {
        let dir = root.appendingPathComponent(folder).appendingPathComponent(target)
        let names = (try? FileManager.default.contentsOfDirectory(atPath: dir.path)) ?? []
        for name in names.sorted() where !name.hasPrefix(".") {
            if let data = FileManager.default.contents(atPath: dir.appendingPathComponent(name).path) {
                inputs.append(("\(folder)/\(target)/\(name)", Array(data)))
            }
        }
    }
    return inputs
}

/// Replays the fuzz corpus and every input fuzzing found a crash or hang with through the same
/// entry points as the harnesses (Fuzz/Sources/<target>/): each must decode, or be refused with
/// a clear error, never crash; decoding in chunks must give what decoding at once gives.
@Suite struct FormatsFuzzRegressionTests {
    /// Mirrors Fuzz/Sources/FuzzCSV.
    static let csvDeclared = CSVOptions(
        delimiter: UInt8(ascii: ";"), header: false,
        columns: [
            Field("i", .int64), Field("f", .float64), Field("d", .decimal(precision: 38, scale: 2)), Field("b", .bool),
            Field("t", .timestamp), Field("day", .date), Field("s", .string), Field("bin", .binary),
        ],
        batchRows: 7)

    static let ndjsonDeclared = NDJSONOptions(
        columns: [
            Field("i", .int64), Field("f", .float64), Field("d", .decimal(precision: 38, scale: 2)), Field("b", .bool),
            Field("t", .timestamp), Field("day", .date), Field("s", .string), Field("bin", .binary), Field("j", .json),
        ],
        batchRows: 7)

    /// Rows and reject kinds of a prepared decoder fed `data` in chunks (as the file source does).
    static func decodeAll(_ decoder: some RecordDecoder, _ data: [UInt8], chunk: Int) -> (rows: Int, rejects: [String]) {
        var rows = 0
        var rejects: [String] = []
        var pending: [UInt8] = []
        var pos = 0
        while true {
            let take = min(chunk, data.count - pos)
            pending.append(contentsOf: data[pos..<(pos + take)])
            pos += take
            let isFinal = pos == data.count
            while true {
                let out = pending.withUnsafeBytes { decoder.decode($0, isFinal: isFinal) }
                rows += out.batch.count
                rejects += out.rejects.map(\.kind)
                pending.removeFirst(out.consumed)
                if out.consumed == 0 || pending.isEmpty { break }
            }
            if isFinal { break }
        }
        #expect(pending.isEmpty, "bytes left undecoded after the final call")
        return (rows, rejects)
    }

    static func csv(_ input: [UInt8], _ options: CSVOptions, chunk: Int) throws -> (rows: Int, rejects: [String]) {
        let decoder = CSVDecoder(options: options)
        let start = try input.withUnsafeBytes { try decoder.prepare(sample: $0, isWholeInput: true) }
        return decodeAll(decoder, Array(input[start...]), chunk: chunk)
    }

    static func ndjson(_ input: [UInt8], _ options: NDJSONOptions, chunk: Int) throws -> (rows: Int, rejects: [String]) {
        let decoder = NDJSONDecoder(options: options)
        let start = try input.withUnsafeBytes { try decoder.prepare(sample: $0, isWholeInput: true) }
        return decodeAll(decoder, Array(input[start...]), chunk: chunk)
    }

    @Test func csvCorpus() {
        let inputs = fuzzInputs("FuzzCSV")
        #expect(!inputs.isEmpty)
        for (name, bytes) in inputs {
            for options in [CSVOptions(batchRows: 5), Self.csvDeclared] {
                do {
                    let whole = try Self.csv(bytes, options, chunk: max(1, bytes.count))
                    let chunked = try Self.csv(bytes, options, chunk: max(1, bytes.count / 3))
                    #expect(whole.rows == chunked.rows && whole.rejects == chunked.rejects, "\(name)")
                } catch {
                    #expect(error is SluiceError, "\(name): \(error)")
                }
            }
        }
    }

    @Test func ndjsonCorpus() throws {
        let inputs = fuzzInputs("FuzzNDJSON")
        #expect(!inputs.isEmpty)
        for (name, bytes) in inputs {
            for options in [NDJSONOptions(batchRows: 5), Self.ndjsonDeclared] {
                let whole = try Self.ndjson(bytes, options, chunk: max(1, bytes.count))
                let chunked = try Self.ndjson(bytes, options, chunk: max(1, bytes.count / 3))
                #expect(whole.rows == chunked.rows && whole.rejects.count == chunked.rejects.count, "\(name)")
            }
        }
    }

    @Test func pushSplitterCorpus() {
        let inputs = fuzzInputs("FuzzPushSplitter")
        #expect(!inputs.isEmpty)
        let fields = [
            Field("id", .int64, nullable: false), Field("f", .float64), Field("d", .decimal(precision: 38, scale: 2)), Field("b", .bool),
            Field("t", .timestamp), Field("day", .date), Field("s", .string), Field("bin", .binary), Field("j", .json),
        ]
        let splitters = [
            JSONRecordSplitter(limits: JSONRecordLimits(maxRecords: 100, maxDepth: 16, maxFields: 50), collectFieldNames: true),
            JSONRecordSplitter(fields: fields, reserved: ["received_at"], collectFieldNames: true),
        ]
        let prefix = Array(#""received_at":"2026-01-02T03:04:05.000006Z""#.utf8)
        for (name, bytes) in inputs {
            for splitter in splitters {
                for format in [JSONBodyFormat.json, .ndjson] {
                    bytes.withUnsafeBytes { body in
                        let split = splitter.split(body, format: format)
                        #expect(split.records.allSatisfy { $0.lowerBound >= 0 && $0.upperBound <= bytes.count }, "\(name)")
                        #expect(split.recordIssues.allSatisfy { ($0.record ?? -1) >= 0 && $0.record! < split.records.count }, "\(name)")
                        guard split.bodyIssue == nil else { return }
                        let bad = Set(split.recordIssues.compactMap(\.record))
                        var payload: [UInt8] = []
                        for (index, range) in split.records.enumerated() where !bad.contains(index) {
                            JSONRecordSplitter.appendLine(body, range, prefix: prefix, to: &payload)
                        }
                        let decoder = NDJSONDecoder()
                        _ = try? payload.withUnsafeBytes { try decoder.prepare(sample: $0, isWholeInput: true) }
                        let out = payload.withUnsafeBytes { decoder.decode($0, isFinal: true) }
                        #expect(out.consumed == payload.count, "\(name)")
                    }
                }
            }
        }
    }

    @Test func parquetCorpus() {
        let inputs = fuzzInputs("FuzzParquet")
        #expect(!inputs.isEmpty)
        for (name, bytes) in inputs {
            do {
                let reader = try ParquetReader(bytes: bytes, name: name)
                for g in 0..<reader.rowGroupCount {
                    #expect(try reader.readRowGroup(g).count == reader.metadata.rowGroups[g].rows, "\(name)")
                }
            } catch {
                #expect(error is ParquetError, "\(name): \(error)")
            }
            do {
                _ = try ParquetReader.metadata(name: name, size: bytes.count, tail: bytes)
            } catch {
                #expect(error is ParquetError, "\(name): \(error)")
            }
        }
    }

    /// Found by FuzzNDJSON: a number of 39 or more integer digits in a decimal(38, s) column
    /// overflowed Int128 (a trap) before its digit count was checked.
    @Test func decimalTextBeyondItsPrecisionIsRefusedNotAnOverflow() {
        for text in ["212345678901234567890123456789012345678901", "999999999999999999999999999999999999999", "-99999999999999999999999999999999999999999.5"] {
            var t = text
            #expect(t.withUTF8 { DecimalText.parse($0, precision: 38, scale: 0) } == nil, "\(text)")
            #expect(t.withUTF8 { DecimalText.parse($0, precision: 38, scale: 1) } == nil, "\(text)")
        }
        var largest = String(repeating: "9", count: 38)
        #expect(largest.withUTF8 { DecimalText.parse($0, precision: 38, scale: 0) } == Int128(String(repeating: "9", count: 38)))
    }

    /// The seeds are meant to be valid: they decode without a refusal.
    @Test func parquetSeedsAreReadable() throws {
        for (name, bytes) in fuzzInputs("FuzzParquet") where name.hasPrefix("Fuzz/Corpus") {
            let reader = try ParquetReader(bytes: bytes, name: name)
            #expect(try reader.readAll().reduce(0) { $0 + $1.count } == reader.metadata.rows, "\(name)")
        }
    }
}
