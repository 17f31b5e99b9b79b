import SluiceCore
import Testing
@testable import SluiceFormats

@Suite struct NDJSONEncoderTests {
    func batch(_ fields: [Field], _ rows: [[Value]]) -> RecordBatch {
        var builders = fields.map { ColumnBuilder(type: $0.type) }
        for row in rows {
            for (c, value) in row.enumerated() {
                let ok = builders[c].append(value: value)
                precondition(ok, "\(value) does not fit \(fields[c].type)")
            }
        }
        return RecordBatch(schema: Schema(fields), columns: builders.indices.map { builders[$0].finish() })
    }

    func encode(_ batch: RecordBatch) -> String {
        var out: [UInt8] = []
        NDJSONEncoder().encode(batch, into: &out)
        return String(decoding: out, as: UTF8.self)
    }

    @Test func integersAndBooleans() {
        let b = batch(
            [Field("i", .int64), Field("b", .bool)],
            [
                [i(.min), b(true)], [i(.max), b(false)], [i(0), .null], [i(-7), b(true)], [.null, .null],
            ])
        #expect(
            encode(b) == """
                {"i":-9223372036854775808,"b":true}
                {"i":9223372036854775807,"b":false}
                {"i":0,"b":null}
                {"i":-7,"b":true}
                {"i":null,"b":null}

                """)
    }

    @Test func floats() {
        let values: [Double] = [1, -0.0, 0.1, 1e300, .leastNonzeroMagnitude, 1e16, 123456.789, .nan, .infinity, -.infinity, -2.5]
        let b = batch([Field("f", .float64)], values.map { [f($0)] } + [[.null]])
        #expect(
            encode(b) == """
                {"f":1.0}
                {"f":-0.0}
                {"f":0.1}
                {"f":1e+300}
                {"f":5e-324}
                {"f":1e+16}
                {"f":123456.789}
                {"f":"NaN"}
                {"f":"Infinity"}
                {"f":"-Infinity"}
                {"f":-2.5}
                {"f":null}

                """)
    }

    @Test func stringsAreEscaped() {
        let b = batch(
            [Field("s", .string)],
            [
                [s("plain")], [s("quote \" backslash \\ slash /")], [s("\u{0}\u{1}\u{8}\u{9}\u{a}\u{c}\u{d}\u{1f}\u{7f}")],
                [s("é 中 😀")], [s("")],
            ])
        #expect(
            encode(b) == #"""
                {"s":"plain"}
                {"s":"quote \" backslash \\ slash /"}
                {"s":"\u0000\u0001\b\t\n\f\r\u001f\#u{7f}"}
                {"s":"é 中 😀"}
                {"s":""}

                """#)
    }

    @Test func invalidUTF8IsReplaced() {
        var builder = ColumnBuilder(type: .string)
        builder.appendBytes([0x61, 0xFF, 0x62])
        let b = RecordBatch(schema: Schema([Field("s", .string)]), columns: [builder.finish()])
        #expect(encode(b) == "{\"s\":\"a\u{FFFD}b\"}\n")
    }

    @Test func keysAreEscaped() {
        let b = batch([Field("a\"b", .int64), Field("line\nbreak", .int64), Field("é", .int64)], [[i(1), i(2), i(3)]])
        #expect(encode(b) == "{\"a\\\"b\":1,\"line\\nbreak\":2,\"é\":3}\n")
    }

    @Test func temporalDecimalJSONAndBinary() {
        let b = batch(
            [
                Field("t", .timestamp), Field("d", .date), Field("dec", .decimal(precision: 38, scale: 2)),
                Field("dec0", .decimal(precision: 10, scale: 0)), Field("j", .json), Field("bin", .binary),
            ],
            [
                [
                    ts("1969-12-31T23:59:59.999999Z"), date("1900-02-28"), .decimal(-5, scale: 2), .decimal(0, scale: 0), .json("{\"a\":[1,null]}"),
                    .binary([0, 1, 2, 255]),
                ],
                [ts("2150-06-30T12:34:56Z"), date("2400-02-29"), .decimal(123_456, scale: 2), .decimal(-42, scale: 0), .json("\"s\""), .binary([])],
                [
                    ts("1900-01-01T00:00:00.5Z"), date("1970-01-01"),
                    .decimal(Int128(-99_999_999_999_999_999) * 1_000_000_000_000_000_000_000 - 1, scale: 2), .null, .null, .null,
                ],
            ])
        #expect(
            encode(b) == """
                {"t":"1969-12-31T23:59:59.999999Z","d":"1900-02-28","dec":-0.05,"dec0":0,"j":{"a":[1,null]},"bin":"AAEC/w=="}
                {"t":"2150-06-30T12:34:56Z","d":"2400-02-29","dec":1234.56,"dec0":-42,"j":"s","bin":""}
                {"t":"1900-01-01T00:00:00.500000Z","d":"1970-01-01","dec":-999999999999999990000000000000000000.01,"dec0":null,"j":null,"bin":null}

                """)
    }

    @Test func emptyBatchesAndNoColumns() {
        #expect(encode(RecordBatch.empty(Schema([Field("a", .int64)]))) == "")
        var out = Array("prefix\n".utf8)
        NDJSONEncoder().encode(batch([Field("a", .int64)], [[i(1)]]), into: &out)
        #expect(String(decoding: out, as: UTF8.self) == "prefix\n{\"a\":1}\n")
    }

    @Test func roundTripThroughTheDecoderWithDeclaredColumns() throws {
        let fields = [
            Field("b", .bool), Field("i", .int64), Field("f", .float64), Field("dec", .decimal(precision: 20, scale: 4)),
            Field("s", .string), Field("bin", .binary), Field("d", .date), Field("t", .timestamp), Field("j", .json),
        ]
        var rows: [[Value]] = [
            [
                b(true), i(.min), f(-0.0), .decimal(-12_345, scale: 4), s("tab\tquote\"é😀\u{1}"), .binary([0, 255, 10]),
                date("0001-01-01"), ts("1969-07-20T20:17:40.000001Z"), .json("{\"nested\":[1,2.5,\"x\"]}"),
            ],
            [b(false), i(.max), f(.nan), .decimal(1, scale: 4), s(""), .binary([]), date("9999-12-31"), ts("2262-04-11T23:47:16.854775Z"), .json("[]")],
            [.null, .null, f(.infinity), .null, .null, .null, .null, .null, .null],
            [.null, i(0), f(-.infinity), .decimal(0, scale: 4), s("\\"), .binary(Array(0...255)), .null, .null, .json("null")],
        ]
        var rng = SystemRandomNumberGenerator()
        for k in 0..<200 {
            let d = Double(bitPattern: rng.next() & 0x7FEF_FFFF_FFFF_FFFF) * (k % 2 == 0 ? 1 : -1)
            rows.append([
                b(k % 3 == 0), i(Int64.random(in: .min ... .max)), f(k % 5 == 0 ? Double(k) : d), .null, s("row \(k)"),
                .null, .date(Int32(k * 97 - 10_000)), .timestamp(Int64.random(in: -4_000_000_000_000_000...4_000_000_000_000_000)), .null,
            ])
        }
        let original = batch(fields, rows)
        var text: [UInt8] = []
        NDJSONEncoder().encode(original, into: &text)
        let decoder = NDJSONDecoder(options: NDJSONOptions(columns: fields))
        let out = decodeAll(decoder, text, from: try prepare(decoder, text))
        #expect(out.rejects.isEmpty, "\(out.rejects.first?.message ?? "")")
        #expect(decoder.schema == original.schema)
        #expect(out.rows.count == rows.count)
        for (r, row) in out.table.enumerated() {
            for (c, value) in row.enumerated() {
                let expected = original.columns[c].value(at: r)
                if case let .float64(x) = expected, case let .float64(y) = value {
                    #expect(x.bitPattern == y.bitPattern || (x.isNaN && y.isNaN), "row \(r) column \(fields[c].name)")
                } else if fields[c].type == .json, case let .json(j) = expected {
                    #expect(value == (j == "null" ? .null : .json(j)), "row \(r)")
                } else {
                    #expect(value == expected, "row \(r) column \(fields[c].name)")
                }
            }
        }
    }

    @Test func integralFloatsStayFloatsWhenInferred() throws {
        let original = batch([Field("f", .float64), Field("i", .int64)], [[f(1), i(1)], [f(2), i(2)], [f(1e20), i(3)]])
        var text: [UInt8] = []
        NDJSONEncoder().encode(original, into: &text)
        let decoder = NDJSONDecoder()
        let out = decodeAll(decoder, text, from: try prepare(decoder, text))
        #expect(decoder.schema == original.schema)
        #expect(out.table == [[f(1), i(1)], [f(2), i(2)], [f(1e20), i(3)]])
    }

    @Test func omittedNullsLeaveOnlyTheFieldsWithValues() {
        let wide = [Field("id", .int64)] + (0..<1000).map { Field("f\($0)", .string) }
        let rows: [[Value]] = [
            [i(777)] + Array(repeating: .null, count: 1000),
            [.null] + (0..<1000).map { $0 == 999 ? s("last") : .null },
            Array(repeating: .null, count: 1001),
            [i(1)] + (0..<1000).map { s("v\($0)") },
        ]
        var out: [UInt8] = []
        NDJSONEncoder(nulls: .omit).encode(batch(wide, rows), into: &out)
        let lines = String(decoding: out, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false)
        #expect(lines[0] == #"{"id":777}"#)
        #expect(lines[1] == #"{"f999":"last"}"#)
        #expect(lines[2] == "{}")
        #expect(lines[3].hasPrefix(#"{"id":1,"f0":"v0","f1":"v1","#) && lines[3].hasSuffix(#""f999":"v999"}"#))
        #expect(lines[4] == "" && lines.count == 5)
        // Written: every key, null included.
        var full: [UInt8] = []
        NDJSONEncoder(nulls: .write).encode(batch(wide, [rows[0]]), into: &full)
        #expect(full.count > 8_000)
    }

    @Test func omittedNullsReadBackAsTheSameBatch() throws {
        let fields = [Field("a", .int64), Field("b", .string), Field("c", .json)]
        let original = batch(fields, [[i(1), .null, .json("{}")], [.null, s("x"), .null], [.null, .null, .null], [i(3), s(""), .json("[null]")]])
        var text: [UInt8] = []
        NDJSONEncoder(nulls: .omit).encode(original, into: &text)
        let decoder = NDJSONDecoder(options: NDJSONOptions(columns: fields))
        let out = decodeAll(decoder, text, from: try prepare(decoder, text))
        #expect(out.rejects.isEmpty)
        #expect(out.table == (0..<4).map { r in (0..<3).map { original.columns[$0].value(at: r) } })
    }
}
