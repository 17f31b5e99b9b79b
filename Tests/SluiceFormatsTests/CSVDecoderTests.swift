import SluiceCore
import Testing
@testable import SluiceFormats

@Suite struct CSVDecoderTests {
    // MARK: Quoting and line endings

    @Test func quotedFieldsWithDelimitersQuotesAndLineBreaks() throws {
        let text = "id,text\n1,\"a,b\"\n2,\"say \"\"hi\"\"\"\n3,\"line1\nline2\"\n4,\"cr\rinside\"\n5,\"crlf\r\ninside\"\n6,\"\"\"\"\n"
        let (decoder, out) = try csv(text)
        #expect(decoder.schema == Schema([Field("id", .int64), Field("text", .string)]))
        #expect(out.rejects.isEmpty)
        #expect(
            out.table == [
                [i(1), s("a,b")],
                [i(2), s("say \"hi\"")],
                [i(3), s("line1\nline2")],
                [i(4), s("cr\rinside")],
                [i(5), s("crlf\r\ninside")],
                [i(6), s("\"")],
            ])
    }

    @Test func crlfLineEndingsAndLastLineWithoutTerminator() throws {
        let (decoder, out) = try csv("a,b\r\n1,x\r\n2,\"y\"\r\n3,z")
        #expect(decoder.schema.fields.map(\.name) == ["a", "b"])
        #expect(out.table == [[i(1), s("x")], [i(2), s("y")], [i(3), s("z")]])
        let (_, mixed) = try csv("a,b\n1,x\r\n2,y\n3,\"z\"\r")
        #expect(mixed.table == [[i(1), s("x")], [i(2), s("y")], [i(3), s("z")]])
    }

    @Test func loneCarriageReturnOutsideQuotesIsData() throws {
        let (_, out) = try csv("a,b\n1,x\ry\n")
        #expect(out.table == [[i(1), s("x\ry")]])
    }

    @Test func utf8ByteOrderMarkIsSkipped() throws {
        let data: [UInt8] = [0xEF, 0xBB, 0xBF] + Array("id,name\n1,é\n".utf8)
        let decoder = CSVDecoder()
        let start = try prepare(decoder, data)
        #expect(start == 11)  // BOM (3) + "id,name\n" (8)
        #expect(decoder.schema.fields.map(\.name) == ["id", "name"])
        let out = decodeAll(decoder, data, from: start)
        #expect(out.table == [[i(1), s("é")]])

        let headless = CSVDecoder(options: CSVOptions(header: false))
        #expect(try prepare(headless, data) == 3)
        #expect(headless.schema.fields.map(\.name) == ["column_1", "column_2"])
    }

    @Test func blankLinesAreSkippedButCounted() throws {
        let (_, out) = try csv("a,b\n\n1,x\r\n\r\n\n2,y,extra\n\n")
        #expect(out.table == [[i(1), s("x")]])
        #expect(out.rejects.map(\.line) == [6])
        #expect(out.rejects.map(\.kind) == ["field_count"])
    }

    @Test func textAfterClosingQuoteIsMalformed() throws {
        let (_, out) = try csv("a,b\n1,\"x\"y\n2,z\n")
        #expect(out.table == [[i(2), s("z")]])
        #expect(out.rejects.count == 1)
        #expect(out.rejects[0].kind == "malformed_row")
        #expect(out.rejects[0].line == 2)
        #expect(out.rejects[0].raw == Array("1,\"x\"y".utf8))
        #expect(out.rejects[0].message.contains("'b'"))
    }

    @Test func otherDelimiterAndQuote() throws {
        let options = CSVOptions(delimiter: UInt8(ascii: ";"), quote: UInt8(ascii: "'"))
        let (_, out) = try csv("a;b\n1;'x;''y'''\n", options)
        #expect(out.table == [[i(1), s("x;'y'")]])
        let tabs = CSVOptions(delimiter: UInt8(ascii: "\t"))
        let (_, tsv) = try csv("a\tb\n1\t\"q\"\n", tabs)
        #expect(tsv.table == [[i(1), s("q")]])
    }

    @Test func invalidOptionsAreRejected() {
        let decoder = CSVDecoder(options: CSVOptions(delimiter: UInt8(ascii: "\"")))
        #expect(throws: SluiceError.self) { try prepare(decoder, Array("a\n".utf8)) }
    }

    // MARK: NULL and empty

    @Test func unquotedEmptyIsNullQuotedEmptyIsEmptyString() throws {
        let (decoder, out) = try csv("s,n,f,b\nx,1,1.5,true\n,,,\n\"\",\"\",\"\",\"\"\n")
        #expect(decoder.schema == Schema([Field("s", .string), Field("n", .int64), Field("f", .float64), Field("b", .bool)]))
        #expect(
            out.table == [
                [s("x"), i(1), f(1.5), b(true)],
                [.null, .null, .null, .null],
                [s(""), .null, .null, .null],
            ])
        #expect(out.rejects.isEmpty)
    }

    @Test func quotedEmptyInDeclaredBinaryIsEmptyBytes() throws {
        let options = CSVOptions(columns: [Field("raw", .binary)])
        let (_, out) = try csv("raw,x\n\"\",1\n,2\nab,3\n", options)
        #expect(out.table == [[.binary([]), i(1)], [.null, i(2)], [.binary(Array("ab".utf8)), i(3)]])
    }

    // MARK: Type inference

    @Test func inferenceChoosesTheNarrowestType() throws {
        let text = """
            b,i,f,ts,d,s,nulls,mixed,zip,big,quoted
            true,1,1,2024-01-02T03:04:05Z,2024-01-02,x,,1,02134,9223372036854775807,"7"
            FALSE,-2,2.5,2024-01-02 03:04:05.123456+02:00,1999-12-31,1.5,,true,10001,9223372036854775808,"8"
            ,,,,,,,,,,

            """
        let (decoder, out) = try csv(text)
        #expect(
            decoder.schema
                == Schema([
                    Field("b", .bool), Field("i", .int64), Field("f", .float64), Field("ts", .timestamp),
                    Field("d", .date), Field("s", .string), Field("nulls", .string), Field("mixed", .string),
                    // Beyond int64, float64 would round: an exact decimal instead.
                    Field("zip", .string), Field("big", .decimal(precision: 38, scale: 0)), Field("quoted", .int64),
                ]))
        #expect(decoder.inferredRows == 3)
        #expect(out.rejects.isEmpty)
        #expect(
            out.table[0] == [
                b(true), i(1), f(1), ts("2024-01-02T03:04:05Z"), date("2024-01-02"), s("x"), .null,
                s("1"), s("02134"), .decimal(9_223_372_036_854_775_807, scale: 0), i(7),
            ])
        #expect(
            out.table[1] == [
                b(false), i(-2), f(2.5), ts("2024-01-02T01:04:05.123456Z"), date("1999-12-31"), s("1.5"),
                .null, s("true"), s("10001"), .decimal(9_223_372_036_854_775_808, scale: 0), i(8),
            ])
        #expect(out.table[2].allSatisfy { $0 == .null })
    }

    @Test func inferenceLooksAtInferRowsOnly() throws {
        let options = CSVOptions(inferRows: 2)
        let (decoder, out) = try csv("n\n1\n2\nthree\n4\n", options)
        #expect(decoder.schema == Schema([Field("n", .int64)]))
        #expect(out.table == [[i(1)], [i(2)], [i(4)]])
        #expect(out.rejects.count == 1)
        let reject = out.rejects[0]
        #expect(reject.kind == "type_mismatch")
        #expect(reject.line == 4)
        #expect(reject.offset == 6)
        #expect(reject.raw == Array("three".utf8))
        #expect(reject.message.contains("'n'"))
        #expect(reject.message.contains("'three'"))
        #expect(reject.message.contains("int64"))
        #expect(reject.message.contains("first 2 data rows"))
        #expect(reject.message.contains("columns:"))
    }

    @Test func inferenceIgnoresRowsWithTheWrongFieldCountAndAnIncompleteLastLine() throws {
        let data = Array("a,b\n1,2\nx\n3,4\n5.5,".utf8)
        let decoder = CSVDecoder()
        _ = try prepare(decoder, data, isWholeInput: false)
        #expect(decoder.schema == Schema([Field("a", .int64), Field("b", .int64)]))
        #expect(decoder.inferredRows == 2)
    }

    // MARK: Declared columns

    @Test func declaredTypesApplyByNameAndOthersAreInferred() throws {
        let options = CSVOptions(columns: [
            Field("price", .decimal(precision: 10, scale: 2)),
            Field("code", .string),
            Field("absent", .int64),
        ])
        let (decoder, out) = try csv("code,price,qty\n007,12.5,3\n010,-0.01,4\n011,1.234,5\n012,abc,6\n", options)
        #expect(
            decoder.schema
                == Schema([
                    Field("code", .string), Field("price", .decimal(precision: 10, scale: 2)), Field("qty", .int64), Field("absent", .int64),
                ]))
        #expect(decoder.missingDeclaredColumns == ["absent"])
        #expect(
            out.table == [
                [s("007"), .decimal(1250, scale: 2), i(3), .null],
                [s("010"), .decimal(-1, scale: 2), i(4), .null],
            ])
        #expect(out.rejects.map(\.line) == [4, 5])
        #expect(out.rejects.allSatisfy { $0.kind == "type_mismatch" })
        #expect(out.rejects[0].message.contains("decimal(10,2)"))
        #expect(out.rejects[0].message.contains("declared"))
    }

    @Test func declaredJSONAndTimestampColumns() throws {
        let options = CSVOptions(columns: [Field("doc", .json), Field("at", .timestamp), Field("day", .date)])
        let (_, out) = try csv(
            "doc,at,day\n\"{\"\"a\"\": [1, 2]}\",2024-02-29T12:00:00Z,2024-02-29\n\"{bad\",2024-01-01T00:00:00Z,2024-01-01\n1,2023-02-29T00:00:00Z,2024-01-01\n",
            options)
        #expect(out.table == [[.json("{\"a\": [1, 2]}"), ts("2024-02-29T12:00:00Z"), date("2024-02-29")]])
        #expect(out.rejects.map(\.line) == [3, 4])
        #expect(out.rejects[0].message.contains("'doc'"))
        #expect(out.rejects[1].message.contains("'at'"))
    }

    @Test func headerlessColumnsAreNumberedOrDeclaredByPosition() throws {
        let (decoder, out) = try csv("1,x,true\n2,y,false\n", CSVOptions(header: false))
        #expect(decoder.schema == Schema([Field("column_1", .int64), Field("column_2", .string), Field("column_3", .bool)]))
        #expect(out.rows.count == 2)
        let declared = CSVOptions(header: false, columns: [Field("id", .string)])
        let (decoder2, out2) = try csv("1,x\n2,y\n", declared)
        #expect(decoder2.schema == Schema([Field("id", .string), Field("column_2", .string)]))
        #expect(out2.table == [[s("1"), s("x")], [s("2"), s("y")]])
    }

    @Test func headerNamesAreTrimmedAndMadeUnique() throws {
        let (decoder, _) = try csv(" a ,a,,\"b\"\"c\"\n1,2,3,4\n")
        #expect(decoder.schema.fields.map(\.name) == ["a", "a_2", "column_3", "b\"c"])
    }

    @Test func headerOnlyAndEmptyInputs() throws {
        let (decoder, out) = try csv("a,b\n")
        #expect(decoder.schema == Schema([Field("a", .string), Field("b", .string)]))
        #expect(out.rows.isEmpty)
        let (empty, emptyOut) = try csv("")
        #expect(empty.schema.count == 0)
        #expect(emptyOut.rows.isEmpty && emptyOut.rejects.isEmpty)
    }

    @Test func headerLongerThanTheSampleThrows() {
        let decoder = CSVDecoder()
        #expect(throws: SluiceError.self) { try prepare(decoder, Array("a,b,c".utf8), isWholeInput: false) }
    }

    // MARK: Rejects

    @Test func fieldCountMismatchesAreRejectedWithLocation() throws {
        let text = "a,b\n1,2\n3\n4,5,6\n\"multi\nline\",7\n8,\"x\ny\",9\n10,11\n"
        let (_, out) = try csv(text)
        #expect(out.table == [[s("1"), i(2)], [s("multi\nline"), i(7)], [s("10"), i(11)]])
        #expect(out.rejects.map(\.kind) == ["field_count", "field_count", "field_count"])
        #expect(out.rejects.map(\.line) == [3, 4, 7])
        let bytes = Array(text.utf8)
        for reject in out.rejects {
            #expect(Array(bytes[reject.offset..<(reject.offset + reject.raw.count)]) == reject.raw)
        }
        #expect(out.rejects[0].raw == Array("3".utf8))
        #expect(out.rejects[0].message == "expected 2 fields, found 1")
        #expect(out.rejects[2].raw == Array("8,\"x\ny\",9".utf8))
        #expect(out.rejects[2].offset == 31)
    }

    @Test func rejectedRowsLeaveNoPartialValues() throws {
        let options = CSVOptions(columns: [Field("b", .int64), Field("c", .float64), Field("d", .bool)])
        let (_, strict) = try csv("a,b,c,d\nx,1,2.5,true\ny,2,oops,false\nz,3,4,maybe\nw,4,5,true\n", options)
        #expect(strict.table == [[s("x"), i(1), f(2.5), b(true)], [s("w"), i(4), f(5), b(true)]])
        #expect(strict.rejects.map(\.line) == [3, 4])
    }

    @Test func invalidUTF8InAStringColumnIsRejected() throws {
        let data: [UInt8] = Array("name,n\nok,1\n".utf8) + [0x61, 0xC3, 0x28] + Array(",2\n\"b\u{e9}\",3\n".utf8)
        let decoder = CSVDecoder(options: CSVOptions(columns: [Field("name", .string)]))
        let start = try prepare(decoder, data)
        let out = decodeAll(decoder, data, from: start)
        #expect(out.table == [[s("ok"), i(1)], [s("bé"), i(3)]])
        #expect(out.rejects.count == 1)
        #expect(out.rejects[0].kind == "invalid_utf8")
        #expect(out.rejects[0].line == 3)
        #expect(out.rejects[0].offset == 12)
        #expect(out.rejects[0].raw == [0x61, 0xC3, 0x28] + Array(",2".utf8))
        #expect(out.rejects[0].message.contains("'name'"))

        let binary = CSVDecoder(options: CSVOptions(columns: [Field("name", .binary)]))
        let out2 = decodeAll(binary, data, from: try prepare(binary, data))
        #expect(out2.rejects.isEmpty)
        #expect(out2.table[1] == [.binary([0x61, 0xC3, 0x28]), i(2)])
    }

    @Test func overlongAndSurrogateUTF8AreInvalid() throws {
        for bad: [UInt8] in [[0xC0, 0xAF], [0xED, 0xA0, 0x80], [0xF4, 0x90, 0x80, 0x80], [0xE2, 0x82], [0xFF]] {
            let data = Array("s\n".utf8) + bad + [0x0A]
            let decoder = CSVDecoder(options: CSVOptions(columns: [Field("s", .string)]))
            let out = decodeAll(decoder, data, from: try prepare(decoder, data))
            #expect(out.rejects.map(\.kind) == ["invalid_utf8"], "\(bad)")
        }
    }

    // MARK: Truncated input and chunking

    @Test func truncatedFinalLine() throws {
        let data = Array("a,b\n1,x\n2,\"y".utf8)
        let decoder = CSVDecoder()
        let start = try prepare(decoder, data)
        let notFinal = data[start...].withUnsafeBytes { decoder.decode($0, isFinal: false) }
        #expect(notFinal.batch.count == 1)
        #expect(notFinal.consumed == 4)
        #expect(notFinal.rejects.isEmpty)
        #expect(decoder.nextOffset == 8 && decoder.nextLine == 3)
        let final = data[(start + notFinal.consumed)...].withUnsafeBytes { decoder.decode($0, isFinal: true) }
        #expect(final.batch.count == 0)
        #expect(final.consumed == 4)
        #expect(final.rejects.count == 1)
        #expect(final.rejects[0].kind == "malformed_row")
        #expect(final.rejects[0].line == 3)
        #expect(final.rejects[0].offset == 8)
        #expect(final.rejects[0].raw == Array("2,\"y".utf8))
        #expect(final.rejects[0].message.contains("unterminated"))

        let (_, ok) = try csv("a,b\n1,x\n2,\"y\"")
        #expect(ok.table == [[i(1), s("x")], [i(2), s("y")]])
    }

    @Test func unterminatedQuoteSpanningLinesAtTheEnd() throws {
        let (_, out) = try csv("a,b\n1,x\n2,\"y\n3,z\n")
        #expect(out.rows.count == 1)
        #expect(out.rejects.count == 1)
        #expect(out.rejects[0].line == 3)
        #expect(out.rejects[0].raw == Array("2,\"y\n3,z".utf8))
    }

    @Test func veryLongFieldAcrossChunks() throws {
        let long = String(repeating: "abcdefghij", count: 500_000)  // 5 MB
        let text = "id,text,n\n1,\"\(long)\",2\n2,\(long),3\n3,\"a\"\"b\",4\n"
        let (_, out) = try csv(text, chunk: 4 << 20)
        #expect(out.rejects.isEmpty)
        #expect(out.table.count == 3)
        #expect(out.table[0] == [i(1), s(long), i(2)])
        #expect(out.table[1] == [i(2), s(long), i(3)])
        #expect(out.table[2] == [i(3), s("a\"b"), i(4)])
        #expect(out.calls > 2)
    }

    @Test func batchRowsLimitStopsEarly() throws {
        let text = "n\n" + (1...10).map { "\($0)\n" }.joined()
        let data = Array(text.utf8)
        let decoder = CSVDecoder(options: CSVOptions(batchRows: 3))
        let start = try prepare(decoder, data)
        let first = data[start...].withUnsafeBytes { decoder.decode($0, isFinal: true) }
        #expect(first.batch.count == 3)
        #expect(first.consumed == 6)
        let prepared = CSVDecoder(options: CSVOptions(batchRows: 3))
        let all = decodeAll(prepared, data, from: try prepare(prepared, data))
        #expect(all.table == (1...10).map { [i(Int64($0))] })
    }

    @Test func seekLocatesRejectsWhenResuming() throws {
        let data = Array("a,b\n1,2\n3,4\n5\n".utf8)
        let decoder = CSVDecoder()
        _ = try prepare(decoder, data)
        // As if the file had 100 more bytes before, resuming at "3,4" (offset 8, line 3).
        decoder.seek(offset: 108, line: 3)
        let out = data[8...].withUnsafeBytes { decoder.decode($0, isFinal: true) }
        #expect(out.batch.count == 1)
        #expect(out.rejects.map(\.line) == [4])
        #expect(out.rejects.map(\.offset) == [112])
        #expect(decoder.nextOffset == 114 && decoder.nextLine == 5)
    }

    /// Every way of splitting a small tricky input into chunks decodes like one call.
    @Test func chunkBoundariesAtEveryBytePosition() throws {
        let text =
            "id,name,amount,when\r\n1,\"a,b\",1.5,2024-01-01T00:00:00Z\r\n\r\n2,\"q\"\"uote\",,2024-01-02\n"
            + "3,\"multi\r\nline\",x,2024-01-03\n4,plain\r,2,\n5,\"\",3e2,\n6,short\n7,\"unterminated"
        let data = Array(text.utf8)
        let options = CSVOptions(columns: [Field("amount", .float64), Field("when", .string)])
        let reference = try csv(text, options).1
        #expect(reference.rows.count == 4)
        #expect(reference.rejects.map(\.line) == [5, 9, 10])
        for chunk in 1...9 {
            let decoder = CSVDecoder(options: options)
            let out = decodeAll(decoder, data, from: try prepare(decoder, data), chunk: chunk)
            #expect(out.rows == reference.rows, "chunk \(chunk)")
            #expect(out.rejects == reference.rejects, "chunk \(chunk)")
        }
        for split in 0...data.count {
            let decoder = CSVDecoder(options: options)
            let start = try prepare(decoder, data)
            guard split >= start else { continue }
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
    }
}

@Suite struct OversizedRecordTests {
    @Test func csvRecordsLongerThanTheLimitAreRejectedWhateverTheChunking() throws {
        let text = "a,b\n1,short\n2,\"unbalanced quote\n3,next line is fine\n4,ok\n5,\(String(repeating: "x", count: 40))\n6,end\n"
        let data = Array(text.utf8)
        let options = CSVOptions(maxRecordBytes: 30)
        let reference = try csv(text, options).1
        #expect(reference.table.map { $0[0] } == [i(1), i(3), i(4), i(6)])
        #expect(reference.rejects.map(\.line) == [3, 6])
        #expect(reference.rejects.allSatisfy { $0.kind == "malformed_row" && $0.message.contains("longer than 30 bytes") })
        #expect(reference.rejects[0].raw == Array("2,\"unbalanced quote".utf8))
        for chunk in 1...12 {
            let decoder = CSVDecoder(options: options)
            let out = decodeAll(decoder, data, from: try prepare(decoder, data), chunk: chunk)
            #expect(out.rows == reference.rows, "chunk \(chunk)")
            #expect(out.rejects == reference.rejects, "chunk \(chunk)")
        }
    }

    @Test func aRecordWithoutLineBreaksIsDiscardedAcrossCalls() throws {
        let decoder = CSVDecoder(options: CSVOptions(header: false, maxRecordBytes: 10))
        _ = try prepare(decoder, Array("a,b\n".utf8))
        let first = Array(String(repeating: "y", count: 25).utf8).withUnsafeBytes { decoder.decode($0, isFinal: false) }
        #expect(first.consumed == 25)
        #expect(first.rejects.count == 1)
        #expect(first.rejects[0].line == 1 && first.rejects[0].raw.count == 10)
        let second = Array("yyyy\nc,d\n".utf8).withUnsafeBytes { decoder.decode($0, isFinal: true) }
        #expect(second.consumed == 9)
        #expect(second.rejects.isEmpty)
        #expect(second.batch.row(0) == [s("c"), s("d")])
        #expect(decoder.nextLine == 3)
    }

    @Test func ndjsonLinesLongerThanTheLimitAreRejectedWhateverTheChunking() throws {
        let text =
            "{\"a\": 1}\n{\"a\": \"\(String(repeating: "z", count: 40))\"}\n{\"a\": 3}\n{\"a\": 4, \"b\": \"\(String(repeating: "9", count: 30))\"}\n{\"a\": 5}"
        let data = Array(text.utf8)
        let options = NDJSONOptions(maxRecordBytes: 20)
        let reference = try ndjson(text, options).1
        #expect(reference.table == [[i(1), .null], [i(3), .null], [i(5), .null]])
        #expect(reference.rejects.map(\.line) == [2, 4])
        for chunk in 1...12 {
            let decoder = NDJSONDecoder(options: options)
            let out = decodeAll(decoder, data, from: try prepare(decoder, data), chunk: chunk)
            #expect(out.rows == reference.rows, "chunk \(chunk)")
            #expect(out.rejects == reference.rejects, "chunk \(chunk)")
        }
    }
}

@Suite struct CSVWideTests {
    @Test func manyColumnsAndRowsWithFarTooManyFields() throws {
        let header = (1...200).map { "c\($0)" }.joined(separator: ",")
        let row = (1...200).map { String($0) }.joined(separator: ",")
        let tooMany = (1...300).map { _ in "\"x\"" }.joined(separator: ",")
        let (decoder, out) = try csv(header + "\n" + row + "\n" + tooMany + "\n" + row + "\n")
        #expect(decoder.schema.count == 200)
        #expect(decoder.schema.fields.allSatisfy { $0.type == .int64 })
        let expected: [Value] = (1...200).map { i(Int64($0)) }
        #expect(out.table == [expected, expected])
        #expect(out.rejects.map(\.message) == ["expected 200 fields, found 300"])
        #expect(out.rejects.map(\.line) == [3])
    }
}
