import SluiceCore
import Testing
@testable import SluiceFormats

@Suite struct NDJSONDecoderTests {
    // MARK: Schema inference

    @Test func inferenceTakesTheUnionOfKeysTypedByTheFirstNonNullValue() throws {
        let text = """
            {"id": 1, "name": "a", "ok": true, "tags": ["x"], "score": 1}
            {"id": 2, "extra": null, "score": 2.5, "meta": {"k": [1, {"z": null}]}, "when": "2024-01-01T00:00:00Z"}
            {"name": null, "id": 3, "score": -3}

            """
        let (decoder, out) = try ndjson(text)
        #expect(
            decoder.schema
                == Schema([
                    Field("id", .int64), Field("name", .string), Field("ok", .bool), Field("tags", .json), Field("score", .float64),
                    // Strings that are all timestamps in the sample make a timestamp column, as in CSV.
                    Field("extra", .string), Field("meta", .json), Field("when", .timestamp),
                ]))
        #expect(decoder.inferredLines == 3)
        #expect(out.rejects.isEmpty)
        #expect(
            out.table == [
                [i(1), s("a"), b(true), .json("[\"x\"]"), f(1), .null, .null, .null],
                [i(2), .null, .null, .null, f(2.5), .null, .json("{\"k\": [1, {\"z\": null}]}"), ts("2024-01-01T00:00:00Z")],
                [i(3), .null, .null, .null, f(-3), .null, .null, .null],
            ])
    }

    @Test func numbers() throws {
        let text = """
            {"a": 9223372036854775807, "b": -9223372036854775808, "c": 9223372036854775808, "d": 1e2, "e": -0.0, "f": 0, "g": 1.5E-3}

            """
        let (decoder, out) = try ndjson(text)
        // Beyond int64, an integer is an exact decimal (never a float64, which would round most of them).
        #expect(decoder.schema.fields.map(\.type) == [.int64, .int64, .decimal(precision: 38, scale: 0), .float64, .float64, .int64, .float64])
        #expect(out.table == [[i(.max), i(.min), .decimal(9_223_372_036_854_775_808, scale: 0), f(100), f(-0.0), i(0), f(0.0015)]])
        if case let .float64(z) = out.table[0][4] { #expect(z.sign == .minus) }
        for bad in ["01", "1.", ".5", "-", "1e", "+1", "0x1", "1.e5", "--1", "NaN", "Infinity"] {
            let (_, o) = try ndjson("{\"a\": 1}\n{\"a\": \(bad)}\n")
            #expect(o.rejects.map(\.kind) == ["malformed_row"], "\(bad)")
        }
    }

    @Test func stringEscapesAndSurrogatePairs() throws {
        let line = #"{"s": "q\" b\\ s\/ \b\f\n\r\t \u00e9 \u4e2d \ud83d\ude00 é😀", "k\u0065y": "v"}"#
        let (decoder, out) = try ndjson(line + "\n")
        #expect(decoder.schema.fields.map(\.name) == ["s", "key"])
        #expect(out.table == [[s("q\" b\\ s/ \u{8}\u{c}\n\r\t é 中 😀 é😀"), s("v")]])
    }

    @Test func invalidStringsAreRejected() throws {
        let cases: [(String, String)] = [
            (#"{"s": "\ud83d"}"#, "malformed_row"),  // lone high surrogate
            (#"{"s": "\ude00x"}"#, "malformed_row"),  // lone low surrogate
            (#"{"s": "\ud83d\u0041"}"#, "malformed_row"),  // high surrogate + non-surrogate
            (#"{"s": "\x"}"#, "malformed_row"),  // unknown escape
            (#"{"s": "\u12g4"}"#, "malformed_row"),  // bad hex
            ("{\"s\": \"tab\there\"}", "malformed_row"),  // raw control character
            (#"{"s": "unterminated}"#, "malformed_row"),
        ]
        for (line, kind) in cases {
            let (_, out) = try ndjson("{\"s\": \"ok\"}\n" + line + "\n")
            #expect(out.rows.count == 1, "\(line)")
            #expect(out.rejects.map(\.kind) == [kind], "\(line)")
            #expect(out.rejects.first?.line == 2)
            #expect(out.rejects.first?.raw == Array(line.utf8))
        }
        let bad: [UInt8] = Array("{\"s\": \"ok\"}\n{\"s\": \"a".utf8) + [0xC3, 0x28] + Array("\"}\n".utf8)
        let decoder = NDJSONDecoder()
        let out = decodeAll(decoder, bad, from: try prepare(decoder, bad))
        #expect(out.rejects.map(\.kind) == ["invalid_utf8"])
        #expect(out.rejects[0].message.contains("column 9"))
    }

    @Test func invalidJSONGivesTheByteColumn() throws {
        let (_, out) = try ndjson("{\"a\": 1}\n{\"a\" 1}\n{\"a\": 1,}\n{\"a\": [1, 2}\n{\"a\": 1} x\n{\"a\": tru}\n")
        #expect(out.rows.count == 1)
        #expect(out.rejects.map(\.line) == [2, 3, 4, 5, 6])
        #expect(out.rejects.allSatisfy { $0.kind == "malformed_row" })
        #expect(out.rejects[0].message.contains("byte column 6"))
        #expect(out.rejects[0].message.contains("':'"))
        #expect(out.rejects[1].message.contains("byte column 9"))
        #expect(out.rejects[2].message.contains("byte column 12"))
        #expect(out.rejects[3].message.contains("byte column 10"))
        #expect(out.rejects[4].message.contains("byte column 7"))
    }

    @Test func nonObjectLinesAreRejected() throws {
        let (_, out) = try ndjson("{\"a\": 1}\n[1, 2]\n42\n\"text\"\nnot json\n")
        #expect(out.rows.count == 1)
        #expect(out.rejects.map(\.kind) == ["malformed_row", "malformed_row", "malformed_row", "malformed_row"])
        #expect(out.rejects[0].message.contains("not an object"))
        #expect(out.rejects.map(\.line) == [2, 3, 4, 5])
    }

    // MARK: Schema changes while decoding

    @Test func newKeysMidStreamAddColumns() throws {
        let sample = Array("{\"a\": 1}\n".utf8)
        let rest = Array("{\"a\": 2}\n{\"a\": 3, \"b\": \"x\"}\n{\"c\": null, \"a\": 4}\n{\"c\": 5}\n".utf8)
        let decoder = NDJSONDecoder()
        let start = try sample.withUnsafeBytes { try decoder.prepare(sample: $0, isWholeInput: false) }
        #expect(decoder.schema == Schema([Field("a", .int64)]))
        let first = (sample + rest).withUnsafeBytes { decoder.decode(UnsafeRawBufferPointer(rebasing: $0[start..<($0.count - 9)]), isFinal: false) }
        #expect(first.batch.schema == Schema([Field("a", .int64), Field("b", .string), Field("c", .string)]))
        #expect(first.batch.count == 4)
        #expect((0..<4).map { first.batch.row($0) } == [[i(1), .null, .null], [i(2), .null, .null], [i(3), s("x"), .null], [i(4), .null, .null]])
        // "c" was first seen as null: a string column that takes any value as its JSON text.
        let second = Array("{\"c\": 5}\n{\"c\": [true]}\n".utf8).withUnsafeBytes { decoder.decode($0, isFinal: true) }
        #expect(second.batch.schema == decoder.schema)
        #expect((0..<2).map { second.batch.row($0) } == [[.null, .null, s("5")], [.null, .null, s("[true]")]])
    }

    @Test func newKeyTypedByItsFirstValue() throws {
        let (decoder, out) = try ndjson("{\"a\": 1}\n", chunk: 1)
        #expect(out.rows.count == 1)
        let data = Array("{\"a\": 2, \"n\": 7}\n{\"n\": \"x\"}\n{\"n\": 8.5}\n".utf8)
        let second = data.withUnsafeBytes { decoder.decode($0, isFinal: true) }
        #expect(decoder.schema == Schema([Field("a", .int64), Field("n", .float64)]))
        #expect(second.batch.count == 2)
        #expect(second.rejects.count == 1)
        #expect(second.rejects[0].message.contains("'n'"))
        #expect(second.rejects[0].message.contains("first value, on line 2"))
    }

    @Test func intColumnWidensToFloat() throws {
        let sample = Array("{\"v\": 1}\n".utf8)
        let decoder = NDJSONDecoder()
        _ = try sample.withUnsafeBytes { try decoder.prepare(sample: $0, isWholeInput: false) }
        let out = Array("{\"v\": 1}\n{\"v\": 2}\n{\"v\": 2.5}\n{\"v\": 3}\n".utf8).withUnsafeBytes { decoder.decode($0, isFinal: true) }
        #expect(decoder.schema == Schema([Field("v", .float64)]))
        #expect(out.batch.schema == Schema([Field("v", .float64)]))
        #expect((0..<4).map { out.batch.row($0) } == [[f(1)], [f(2)], [f(2.5)], [f(3)]])
        #expect(out.rejects.isEmpty)
    }

    @Test func declaredIntColumnDoesNotWiden() throws {
        let options = NDJSONOptions(columns: [Field("v", .int64)])
        let (decoder, out) = try ndjson("{\"v\": 1}\n{\"v\": 2.5}\n{\"v\": \"3\"}\n", options)
        #expect(decoder.schema == Schema([Field("v", .int64)]))
        #expect(out.table == [[i(1)]])
        #expect(out.rejects.map(\.kind) == ["type_mismatch", "type_mismatch"])
        #expect(out.rejects[0].message.contains("'v'"))
        #expect(out.rejects[0].message.contains("declared"))
        #expect(out.rejects[1].message.contains("a string"))
    }

    @Test func mismatchesRejectTheWholeLine() throws {
        let text =
            "{\"a\": 1, \"b\": \"x\", \"c\": true}\n{\"a\": 2, \"b\": \"y\", \"c\": \"no\"}\n{\"a\": \"3\", \"b\": \"z\", \"c\": false}\n{\"b\": 4}\n{\"a\": 5, \"b\": {\"n\": 1}}\n{\"a\": 6}\n"
        let (_, out) = try ndjson(text)
        #expect(out.table == [[i(1), s("x"), b(true)], [i(6), .null, .null]])
        #expect(out.rejects.map(\.line) == [2, 3, 4, 5])
        #expect(out.rejects.allSatisfy { $0.kind == "type_mismatch" })
        #expect(out.rejects[0].message.contains("field 'c': expected bool, found a string \"no\""))
        #expect(out.rejects[1].message.contains("field 'a': expected int64, found a string"))
        #expect(out.rejects[1].message.contains("first 6 lines"))
        #expect(out.rejects[3].message.contains("an object"))
        let bytes = Array(text.utf8)
        for reject in out.rejects {
            #expect(Array(bytes[reject.offset..<(reject.offset + reject.raw.count)]) == reject.raw)
        }
    }

    @Test func duplicateKeysLastWins() throws {
        let (decoder, out) = try ndjson("{\"a\": 1, \"a\": 2}\n{\"a\": \"x\", \"a\": 3}\n")
        #expect(decoder.schema == Schema([Field("a", .int64)]))
        #expect(out.table == [[i(2)], [i(3)]])
    }

    @Test func declaredColumnsComeFirstAndParseStrings() throws {
        let options = NDJSONOptions(columns: [
            Field("at", .timestamp), Field("day", .date), Field("price", .decimal(precision: 8, scale: 2)),
            Field("blob", .binary), Field("doc", .json), Field("text", .string), Field("never", .bool),
        ])
        let text = """
            {"x": 1, "at": "2024-03-01T10:00:00+01:00", "day": "2024-03-01", "price": "12.30", "blob": "AAEC", "doc": "s", "text": 5}
            {"at": null, "price": 7, "doc": {"a": 1}, "text": "plain", "blob": "-_8="}
            {"price": 1.25, "doc": [1], "text": [1, "two"]}
            {"at": "yesterday"}
            {"day": "2024-02-30"}
            {"price": "1.234"}
            {"price": 1e3}
            {"blob": "!!"}
            {"blob": 12}

            """
        let (decoder, out) = try ndjson(text, options)
        #expect(decoder.schema.fields.map(\.name) == ["at", "day", "price", "blob", "doc", "text", "never", "x"])
        #expect(
            out.table == [
                [ts("2024-03-01T09:00:00Z"), date("2024-03-01"), .decimal(1230, scale: 2), .binary([0, 1, 2]), .json("\"s\""), s("5"), .null, i(1)],
                [.null, .null, .decimal(700, scale: 2), .binary([0xFB, 0xFF]), .json("{\"a\": 1}"), s("plain"), .null, .null],
                [.null, .null, .decimal(125, scale: 2), .null, .json("[1]"), s("[1, \"two\"]"), .null, .null],
                // A JSON number with an exponent is exact in a decimal column (1e3 is 1000.00).
                [.null, .null, .decimal(100_000, scale: 2), .null, .null, .null, .null, .null],
            ])
        #expect(out.rejects.map(\.line) == [4, 5, 6, 8, 9])
        #expect(out.rejects.allSatisfy { $0.kind == "type_mismatch" })
    }

    @Test func nonFiniteStringsInFloatColumns() throws {
        let (_, out) = try ndjson("{\"v\": 1.5}\n{\"v\": \"NaN\"}\n{\"v\": \"-Infinity\"}\n{\"v\": \"1.5\"}\n")
        #expect(out.rows.count == 3)
        #expect(out.table[2] == [f(-.infinity)])
        if case let .float64(v) = out.table[1][0] { #expect(v.isNaN) } else { Issue.record("not a float") }
        #expect(out.rejects.map(\.line) == [4])
    }

    // MARK: Lines

    @Test func blankLinesCRLFAndBOM() throws {
        let data: [UInt8] = [0xEF, 0xBB, 0xBF] + Array("{\"a\": 1}\r\n\r\n   \n\t\r\n{\"a\": 2}\r\n[]\r\n{\"a\": 3}".utf8)
        let decoder = NDJSONDecoder()
        let start = try prepare(decoder, data)
        #expect(start == 3)
        let out = decodeAll(decoder, data, from: start)
        #expect(out.table == [[i(1)], [i(2)], [i(3)]])
        #expect(out.rejects.map(\.line) == [6])
        #expect(out.rejects.map(\.offset) == [3 + 29])
        #expect(out.rejects[0].raw == Array("[]".utf8))
    }

    @Test func truncatedFinalLine() throws {
        let data = Array("{\"a\": 1}\n{\"a\": 2".utf8)
        let decoder = NDJSONDecoder()
        _ = try prepare(decoder, data, isWholeInput: false)
        let first = data.withUnsafeBytes { decoder.decode($0, isFinal: false) }
        #expect(first.batch.count == 1)
        #expect(first.consumed == 9)
        let last = data[9...].withUnsafeBytes { decoder.decode($0, isFinal: true) }
        #expect(last.rejects.count == 1)
        #expect(last.rejects[0].kind == "malformed_row")
        #expect(last.rejects[0].line == 2)
        #expect(last.rejects[0].offset == 9)
        #expect(last.consumed == 7)
        let (_, complete) = try ndjson("{\"a\": 1}\n{\"a\": 2}")
        #expect(complete.table == [[i(1)], [i(2)]])
    }

    @Test func batchRowsLimit() throws {
        let text = (1...10).map { "{\"n\": \($0)}\n" }.joined()
        let (_, out) = try ndjson(text, NDJSONOptions(batchRows: 4))
        #expect(out.table == (1...10).map { [i(Int64($0))] })
        #expect(out.calls >= 3)
    }

    @Test(arguments: [
        // The whole input is the sample: no schema changes while decoding.
        (
            "{\"id\": 1, \"s\": \"a\\\"b\", \"n\": {\"x\": [1, 2]}}\r\n\n{\"id\": 2, \"s\": \"\\u00e9\\ud83d\\ude00\", \"f\": 1}\n"
                + "{\"id\": \"bad\"}\n{\"id\": 3, \"f\": 2.5, \"new\": true}\n{broken\n{\"id\": 4, \"new\": false, \"s\": null}\n{\"id\": 5", 1000
        ),
        // Only the first line is the sample: columns are added while decoding.
        (
            "{\"id\": 1}\n{\"id\": 2, \"s\": \"x\\ny\"}\r\n\r\n{\"id\": 3, \"f\": 0.5, \"s\": \"\\u00e9\"}\n{\"id\": 4, \"f\": \"no\"}\n"
                + "{\"f\": 1.5, \"deep\": {\"a\": [{}]}}\n{\"id\": 6}", 1
        ),
    ])
    func chunkBoundariesAtEveryBytePosition(text: String, inferRows: Int) throws {
        let data = Array(text.utf8)
        let options = NDJSONOptions(inferRows: inferRows)
        let reference = try ndjson(text, options).1
        #expect(reference.rows.count == 4 || reference.rows.count == 5)
        #expect(reference.rejects.count >= 1)
        for split in 0...data.count {
            let decoder = NDJSONDecoder(options: options)
            let start = try prepare(decoder, data)
            var result = Decoded()
            var pending = Array(data[start..<split])
            let first = pending.withUnsafeBytes { decoder.decode($0, isFinal: false) }
            collect(first, into: &result)
            pending.removeFirst(first.consumed)
            pending += data[split...]
            let second = pending.withUnsafeBytes { decoder.decode($0, isFinal: true) }
            collect(second, into: &result)
            #expect(second.consumed == pending.count)
            #expect(result.rows == reference.rows, "split at \(split)")
            #expect(result.rejects == reference.rejects, "split at \(split)")
        }
        for chunk in 1...7 {
            let decoder = NDJSONDecoder(options: options)
            let out = decodeAll(decoder, data, from: try prepare(decoder, data), chunk: chunk)
            #expect(out.rows == reference.rows, "chunk \(chunk)")
            #expect(out.rejects == reference.rejects, "chunk \(chunk)")
        }
    }

    @Test func chunkReferenceRejects() throws {
        let text = "{\"id\": 1}\n\n{\"id\": \"bad\"}\n{broken\n{\"id\": 5"
        let (_, out) = try ndjson(text)
        #expect(out.rejects.map(\.line) == [3, 4, 5])
        #expect(out.rejects.map(\.kind) == ["type_mismatch", "malformed_row", "malformed_row"])
    }

    @Test func deeplyNestedValues() throws {
        let deep = String(repeating: "[", count: 400) + String(repeating: "]", count: 400)
        let tooDeep = String(repeating: "[", count: 600) + String(repeating: "]", count: 600)
        let (_, out) = try ndjson("{\"v\": \(deep)}\n{\"v\": \(tooDeep)}\n")
        #expect(out.rows.count == 1)
        #expect(out.rejects.count == 1)
        #expect(out.rejects[0].message.contains("nesting"))
    }

    @Test func manyKeysAndKeysInAnyOrder() throws {
        let keys = (0..<100).map { "k\($0)" }
        let line1 = "{" + keys.enumerated().map { "\"\($1)\": \($0)" }.joined(separator: ", ") + "}"
        let line2 = "{" + keys.enumerated().reversed().map { "\"\($1)\": \($0 * 2)" }.joined(separator: ", ") + "}"
        let (decoder, out) = try ndjson(line1 + "\n" + line2 + "\n")
        #expect(decoder.schema.fields.map(\.name) == keys)
        let first: [Value] = (0..<100).map { i(Int64($0)) }
        let second: [Value] = (0..<100).map { i(Int64($0 * 2)) }
        #expect(out.table == [first, second])
    }
}

@Suite struct NDJSONLimitTests {
    @Test func keysBeyondTheColumnLimitRejectTheLine() throws {
        let limit = NDJSONRowBuilder.maxColumns
        let wide = "{" + (0..<(limit + 1)).map { "\"k\($0)\": \($0)" }.joined(separator: ",") + "}"
        let (decoder, out) = try ndjson("{\"a\": 1}\n" + wide + "\n{\"a\": 2}\n", NDJSONOptions(inferRows: 1))
        #expect(decoder.schema.count == 1)
        #expect(out.rows.count == 2)
        #expect(out.rejects.map(\.kind) == ["too_many_columns"])
        #expect(out.rejects.map(\.line) == [2])
    }
}
