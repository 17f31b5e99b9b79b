import SluiceCore
@testable import SluiceFormats
import Testing

/// A JSON number is never altered: int64 when it is an integer in range, float64 when float64
/// holds it as written, an exact decimal beyond both, and refused (with its field named) when no
/// exact type holds it.
@Suite struct ExactNumberTests {
    func decimal(_ text: String) -> Value? {
        Array(text.utf8).withUnsafeBufferPointer { text -> Value? in
            guard case let .decimal(p, s)? = ExactNumber.decimalType(text) else { return nil }
            return ExactNumber.decimal(text, precision: p, scale: s).map { .decimal($0, scale: s) }
        }
    }

    @Test func numbersBeyondInt64AndFloat64BecomeExactDecimals() throws {
        let text = """
            {"big": 18446744073709551617, "neg": -9223372036854775809, "pi": 3.14159265358979323846264338327950288, "ok": 0.30000000000000004, "small": 1.5, "e": 1e22}

            """
        let (decoder, out) = try ndjson(text)
        #expect(out.rejects.isEmpty, "\(out.rejects)")
        #expect(
            decoder.schema.fields.map(\.type) == [
                .decimal(precision: 38, scale: 0), .decimal(precision: 38, scale: 0), .decimal(precision: 38, scale: 35), .float64, .float64,
                .float64,
            ])
        let row = try #require(out.table.first)
        #expect(row[0] == .decimal(18_446_744_073_709_551_617, scale: 0))
        #expect(row[1] == .decimal(-9_223_372_036_854_775_809, scale: 0))
        #expect(row[2].description == "3.14159265358979323846264338327950288")
        #expect(row[3] == f(0.30000000000000004) && row[4] == f(1.5) && row[5] == f(1e22))
    }

    @Test func aNumberNoExactTypeHoldsIsRefusedWithItsField() throws {
        let fourHundredDigits = String(repeating: "1", count: 400)
        for number in ["1e400", "-1e400", "1e-400", fourHundredDigits, "4.9e-324"] {
            let (_, out) = try ndjson("{\"id\": 1, \"amount\": \(number)}\n")
            #expect(out.table.isEmpty, "\(number) was stored as \(out.table)")
            let reject = try #require(out.rejects.first, "\(number) was neither stored nor refused")
            #expect(reject.message.contains("amount"), "\(reject.message)")
        }
    }

    @Test func integersAreNeverRoundedIntoFloat64() throws {
        // Seen together in the sample, 2^53 + 1 and a fraction make an exact decimal column.
        var (decoder, out) = try ndjson("{\"n\": 9007199254740993}\n{\"n\": 0.5}\n")
        #expect(decoder.schema.fields.map(\.type) == [.decimal(precision: 38, scale: 1)])
        #expect(out.table == [[.decimal(90_071_992_547_409_930, scale: 1)], [.decimal(5, scale: 1)]])
        // After the sample: an int64 column is not widened to float64 while a value would round.
        var options = NDJSONOptions()
        options.inferRows = 1
        (_, out) = try ndjson("{\"n\": 9007199254740993}\n{\"n\": 0.5}\n", options)
        #expect(out.table == [[i(9_007_199_254_740_993)]])
        #expect(out.rejects.count == 1)
        // An integer float64 would round, in a float64 column.
        (_, out) = try ndjson("{\"n\": 0.5}\n{\"n\": 9007199254740993}\n{\"n\": 9007199254740992}\n", options)
        #expect(out.table == [[f(0.5)], [f(9_007_199_254_740_992)]])
        #expect(out.rejects.count == 1 && out.rejects[0].message.contains("n"))
    }

    @Test func floatTextIsComparedWithItsShortestFloat64() {
        for (text, exact) in [
            ("0.1", true), ("0.30000000000000004", true), ("1.7976931348623157e308", true), ("5e-324", true),
            ("0.1000000000000000000001", false), ("1.7976931348623159e308", false), ("4.9e-324", false),
        ] {
            let d = Double(text)!
            let same = Array(text.utf8).withUnsafeBufferPointer { ExactNumber.sameNumber($0, d) }
            #expect(same == exact, "\(text)")
        }
        #expect(decimal("1.50") == .decimal(15, scale: 1) && decimal("1.5e30") == .decimal(1_500_000_000_000_000_000_000_000_000_000, scale: 0))
        #expect(decimal("1e-39") == nil && decimal("1e38") == nil && decimal("9e37") != nil)
    }

    @Test func thePushDoorRefusesWhatNoTypeHoldsAndChecksDeclaredFloats() {
        let splitter = { (text: String, fields: [Field]) -> JSONRecordSplit in
            Array(text.utf8).withUnsafeBytes { JSONRecordSplitter(fields: fields).split($0, format: .ndjson) }
        }
        var s = splitter("{\"a\": 1e400}\n{\"a\": 18446744073709551617}\n", [])
        #expect(s.recordIssues.map(\.kind) == [.numberOutOfRange])
        #expect(s.recordIssues.first?.record == 0 && s.recordIssues.first?.field == "a")
        #expect(s.recordIssues.first?.isSchemaViolation == true, "answered 422, before the 202")
        s = splitter("{\"x\": 9007199254740993}\n{\"x\": 2}\n", [Field("x", .float64)])
        #expect(s.recordIssues.map(\.kind) == [.typeMismatch])
        s = splitter("{\"x\": 18446744073709551617}\n", [Field("x", .decimal(precision: 38, scale: 0))])
        #expect(s.recordIssues.isEmpty)
    }
}

/// Inference never loses information, and infers the same way in CSV and NDJSON.
@Suite struct ExactInferenceTests {
    @Test func csvNumbersFloat64WouldRoundAreInferredAsDecimals() throws {
        let (decoder, out) = try csv("id,amount,price\n1,99999999999999999999999999999.999999999,1.25\n2,0.5,2.5\n")
        #expect(decoder.schema.fields.map(\.type) == [.int64, .decimal(precision: 38, scale: 9), .float64])
        #expect(out.rejects.isEmpty)
        #expect(out.table[0][1].description == "99999999999999999999999999999.999999999")
        #expect(out.table[1][1] == .decimal(500_000_000, scale: 9))
    }

    @Test func aCSVFloatThatWouldRoundAfterTheSampleIsRefused() throws {
        var options = CSVOptions()
        options.inferRows = 1
        let (_, out) = try csv("v\n1.5\n0.1000000000000000000001\n2.5\n", options)
        #expect(out.table == [[f(1.5)], [f(2.5)]])
        #expect(out.rejects.count == 1)
    }

    @Test func ndjsonStringsAreInferredAsTimestampsAndDatesAsInCSV() throws {
        let text = """
            {"at": "2024-03-01T10:00:00+01:00", "day": "2024-03-01", "name": "2024-03-01 or so"}
            {"at": "2024-03-02T00:00:00Z", "day": "2024-03-02", "name": "x"}

            """
        let (decoder, _) = try ndjson(text)
        let (csvDecoder, _) = try csv("at,day,name\n2024-03-01T10:00:00+01:00,2024-03-01,2024-03-01 or so\n2024-03-02T00:00:00Z,2024-03-02,x\n")
        #expect(decoder.schema.fields.map(\.type) == [.timestamp, .date, .string])
        #expect(decoder.schema.fields.map(\.type) == csvDecoder.schema.fields.map(\.type))
    }
}

/// A timestamp finer than microseconds is refused everywhere (text and Parquet), never truncated.
@Suite struct TimestampPrecisionTests {
    @Test func textFinerThanMicrosecondsIsRefused() throws {
        for text in ["2024-01-01T00:00:00.123456789Z", "2024-01-01 00:00:00.0000001+02:00"] {
            #expect(ValueParsing.parseTimestamp(text, text.utf8.count) == nil, "\(text)")
            #expect(TemporalText.parseTimestamp(Array(text.utf8).withUnsafeBufferPointer { $0 }) == nil, "\(text)")
        }
        let whole = "2024-01-01T00:00:00.123456000Z"
        #expect(ValueParsing.parseTimestamp(whole, whole.utf8.count) == 1_704_067_200_123_456)
        // In a timestamp column the line goes to the dead-letter queue with its column named.
        let lines = ["2024-01-01T00:00:00.123456Z", "2024-01-01T00:00:00.123456789Z"]
        let (_, out) = try csv("at\n" + lines.joined(separator: "\n") + "\n", CSVOptions(columns: [Field("at", .timestamp)]))
        #expect(out.table == [[ts("2024-01-01T00:00:00.123456Z")]])
        #expect(out.rejects.count == 1 && out.rejects[0].message.contains("at"), "\(out.rejects)")
        let (_, json) = try ndjson(lines.map { "{\"at\": \"\($0)\"}\n" }.joined(), NDJSONOptions(columns: [Field("at", .timestamp)]))
        #expect(json.table == [[ts("2024-01-01T00:00:00.123456Z")]])
        #expect(json.rejects.count == 1, "\(json.table)")
        // Inferred, such text is not a microsecond timestamp: the column stays string, digit for digit.
        let (decoder, kept) = try ndjson(lines.map { "{\"at\": \"\($0)\"}\n" }.joined())
        #expect(decoder.schema.fields.map(\.type) == [.string] && kept.rejects.isEmpty)
    }
}

/// The push door refuses an object with a repeated key, however it is spelled.
@Suite struct DuplicateKeyTests {
    func issues(_ text: String) -> [JSONRecordIssue] {
        Array(text.utf8).withUnsafeBytes { JSONRecordSplitter().split($0, format: .ndjson) }.recordIssues
    }

    @Test func aRepeatedKeyIsRefusedWithItsName() {
        #expect(issues("{\"a\": 1, \"b\": 2}\n{\"a\": 1, \"a\": 2}\n").map(\.kind) == [.duplicateKey])
        #expect(issues("{\"a\": 1, \"a\": 2}\n").first?.field == "a")
        #expect(issues("{\"a\": 1, \"\\u0061\": 2}\n").map(\.kind) == [.duplicateKey], "an escaped spelling is the same key")
        #expect(issues("{\"a\": {\"a\": 1}, \"b\": [{\"a\": 1}, {\"a\": 2}]}\n").isEmpty, "nested objects have keys of their own")
        #expect(issues("{\"a\": 1, \"a\": 2}\n").first?.isSchemaViolation == false, "400, not 422")
    }
}
