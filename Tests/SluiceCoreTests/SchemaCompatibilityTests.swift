import SluiceCore
import Testing

/// The compatibility matrix: for each mode and each kind of change, the verdict Confluent's
/// documentation gives for Avro and JSON Schema (and the same rules for Sluice's own schemas).
@Suite struct SchemaCompatibilityTests {
    typealias Verdicts = (backward: Bool, forward: Bool)

    static func avro(_ fields: String) -> ParsedSchema {
        try! ParsedSchema.parse(#"{"type":"record","name":"Event","fields":[\#(fields)]}"#, format: .avro)
    }

    static func json(_ properties: String, required: String = "", closed: Bool = false) -> ParsedSchema {
        try! ParsedSchema.parse(
            #"{"type":"object","properties":{\#(properties)},"required":[\#(required)]\#(closed ? #","additionalProperties":false"# : "")}"#, format: .json)
    }

    static func sluice(_ fields: String) -> ParsedSchema {
        try! ParsedSchema.parse(#"{"type":"sluice","fields":[\#(fields)]}"#, format: .sluice)
    }

    /// (name, old, new, backward-compatible?, forward-compatible?)
    static let avroCases: [(String, ParsedSchema, ParsedSchema, Bool, Bool)] = [
        (
            "add optional field", avro(#"{"name":"a","type":"int"}"#),
            avro(#"{"name":"a","type":"int"},{"name":"b","type":["null","string"],"default":null}"#), true, true
        ),
        (
            "add required field", avro(#"{"name":"a","type":"int"}"#),
            avro(#"{"name":"a","type":"int"},{"name":"b","type":"string"}"#), false, true
        ),
        (
            "remove optional field", avro(#"{"name":"a","type":"int"},{"name":"b","type":"string","default":""}"#),
            avro(#"{"name":"a","type":"int"}"#), true, true
        ),
        (
            "remove required field", avro(#"{"name":"a","type":"int"},{"name":"b","type":"string"}"#),
            avro(#"{"name":"a","type":"int"}"#), true, false
        ),
        ("change type", avro(#"{"name":"a","type":"int"}"#), avro(#"{"name":"a","type":"string"}"#), false, false),
        ("widen type", avro(#"{"name":"a","type":"int"}"#), avro(#"{"name":"a","type":"long"}"#), true, false),
        ("rename field", avro(#"{"name":"a","type":"int"}"#), avro(#"{"name":"b","type":"int"}"#), false, false),
        ("rename field with alias", avro(#"{"name":"a","type":"int"}"#), avro(#"{"name":"b","type":"int","aliases":["a"]}"#), true, false),
        ("make field nullable", avro(#"{"name":"a","type":"int"}"#), avro(#"{"name":"a","type":["null","int"]}"#), true, false),
    ]

    static let jsonCases: [(String, ParsedSchema, ParsedSchema, Bool, Bool)] = [
        (
            "add optional property, open model", json(#""a":{"type":"integer"}"#),
            json(#""a":{"type":"integer"},"b":{"type":"string"}"#), false, true
        ),
        (
            "add optional property, closed model", json(#""a":{"type":"integer"}"#, closed: true),
            json(#""a":{"type":"integer"},"b":{"type":"string"}"#, closed: true), true, false
        ),
        (
            "add required property", json(#""a":{"type":"integer"}"#),
            json(#""a":{"type":"integer"},"b":{"type":"string"}"#, required: #""b""#), false, true
        ),
        (
            "remove property, open model", json(#""a":{"type":"integer"},"b":{"type":"string"}"#),
            json(#""a":{"type":"integer"}"#), true, false
        ),
        (
            "remove property, closed model", json(#""a":{"type":"integer"},"b":{"type":"string"}"#, closed: true),
            json(#""a":{"type":"integer"}"#, closed: true), false, true
        ),
        ("change type", json(#""a":{"type":"integer"}"#), json(#""a":{"type":"string"}"#), false, false),
        ("widen type", json(#""a":{"type":"integer"}"#), json(#""a":{"type":"number"}"#), true, false),
        ("rename property", json(#""a":{"type":"integer"}"#), json(#""b":{"type":"integer"}"#), false, false),
        ("allow null", json(#""a":{"type":"integer"}"#), json(#""a":{"type":["integer","null"]}"#), true, false),
    ]

    static let sluiceCases: [(String, ParsedSchema, ParsedSchema, Bool, Bool)] = [
        (
            "add nullable field", sluice(#"{"name":"a","type":"int64"}"#),
            sluice(#"{"name":"a","type":"int64"},{"name":"b","type":"string"}"#), true, true
        ),
        (
            "add required field", sluice(#"{"name":"a","type":"int64"}"#),
            sluice(#"{"name":"a","type":"int64"},{"name":"b","type":"string","nullable":false}"#), false, true
        ),
        (
            "remove nullable field", sluice(#"{"name":"a","type":"int64"},{"name":"b","type":"string"}"#),
            sluice(#"{"name":"a","type":"int64"}"#), true, true
        ),
        (
            "remove required field", sluice(#"{"name":"a","type":"int64"},{"name":"b","type":"string","nullable":false}"#),
            sluice(#"{"name":"a","type":"int64"}"#), true, false
        ),
        ("change type", sluice(#"{"name":"a","type":"int64"}"#), sluice(#"{"name":"a","type":"string"}"#), false, false),
        ("widen type", sluice(#"{"name":"a","type":"int64"}"#), sluice(#"{"name":"a","type":"float64"}"#), true, false),
        ("widen decimal", sluice(#"{"name":"a","type":"decimal(10,2)"}"#), sluice(#"{"name":"a","type":"decimal(12,2)"}"#), true, false),
        (
            "rename required field", sluice(#"{"name":"a","type":"int64","nullable":false}"#),
            sluice(#"{"name":"b","type":"int64","nullable":false}"#), false, false
        ),
    ]

    static let modes: [(CompatibilityMode, @Sendable (Bool, Bool) -> Bool)] = [
        (.none, { _, _ in true }),
        (.backward, { b, _ in b }), (.backwardTransitive, { b, _ in b }),
        (.forward, { _, f in f }), (.forwardTransitive, { _, f in f }),
        (.full, { b, f in b && f }), (.fullTransitive, { b, f in b && f }),
    ]

    func checkMatrix(_ cases: [(String, ParsedSchema, ParsedSchema, Bool, Bool)], _ format: String) {
        for (mode, expected) in Self.modes {
            for (name, old, new, backward, forward) in cases {
                let problems = new.compatibilityProblems(with: [old], mode: mode)
                #expect(
                    problems.isEmpty == expected(backward, forward),
                    "\(format) \(mode.rawValue), \(name): expected \(expected(backward, forward) ? "compatible" : "incompatible"), got \(problems)")
            }
        }
    }

    @Test func avroMatrix() { checkMatrix(Self.avroCases, "AVRO") }
    @Test func jsonSchemaMatrix() { checkMatrix(Self.jsonCases, "JSON") }
    @Test func sluiceMatrix() { checkMatrix(Self.sluiceCases, "SLUICE") }

    @Test func transitiveModesCheckEveryEarlierVersion() {
        let v1 = Self.avro(#"{"name":"a","type":"int"}"#)
        let v2 = Self.avro(#"{"name":"a","type":"int"},{"name":"b","type":"string","default":"x"}"#)
        let v3 = Self.avro(#"{"name":"a","type":"int"},{"name":"b","type":"string"}"#)
        // v3 reads v2's data (b is written) but not v1's (b missing, no default).
        #expect(v3.compatibilityProblems(with: [v1, v2], mode: .backward).isEmpty)
        let transitive = v3.compatibilityProblems(with: [v1, v2], mode: .backwardTransitive)
        #expect(transitive.count == 1 && transitive[0].contains("version 1") && transitive[0].contains("b"))
        #expect(!v3.compatibilityProblems(with: [v1, v2], mode: .fullTransitive).isEmpty)
    }

    @Test func invalidSchemasAreRefusedWithAReason() {
        for (text, format) in [
            ("not json", SchemaFormat.avro), (#"{"type":"record","name":"X"}"#, .avro), (#""nope""#, .avro),
            (#"{"type":"strin"}"#, .json), (#"{"fields":[{"name":"a","type":"uint9"}]}"#, .sluice),
        ] {
            #expect(throws: InvalidSchema.self, "\(text)") { try ParsedSchema.parse(text, format: format) }
        }
        #expect(Self.avro(#"{"name":"a","type":"int"}"#).problemsReading(Self.json(#""a":{}"#)).first?.contains("type changed") == true)
    }

    @Test func jsonSchemaKeywordsOutsideTheSubsetAreRefusedNotIgnored() {
        for text in [
            #"{"type":"object","properties":{"a":{"enum":[1,2]}}}"#, ##"{"$ref":"#/definitions/x"}"##,
            #"{"type":"object","additionalProperties":{"type":"string"}}"#, #"{"type":"array","items":[{"type":"string"}]}"#,
            #"{"type":"string","format":"date-time"}"#,
        ] {
            #expect(throws: InvalidSchema.self, "\(text)") { try ParsedSchema.parse(text, format: .json) }
        }
        #expect((try? ParsedSchema.parse(#"{"$schema":"http://json-schema.org/draft-07/schema#","title":"T","type":"object"}"#, format: .json)) != nil)
    }

    @Test func avroNestedUnionsEnumsAndNamedTypes() {
        let v1 = Self.avro(
            #"{"name":"address","type":{"type":"record","name":"Address","fields":[{"name":"city","type":"string"}]}},{"name":"status","type":{"type":"enum","name":"Status","symbols":["A","B"]}},{"name":"home","type":"Address"}"#
        )
        let added = Self.avro(
            #"{"name":"address","type":{"type":"record","name":"Address","fields":[{"name":"city","type":"string"},{"name":"zip","type":"string"}]}},{"name":"status","type":{"type":"enum","name":"Status","symbols":["A","B","C"]}},{"name":"home","type":"Address"}"#
        )
        // A nested field without default: new readers cannot read old data; an added enum symbol: old readers cannot read new data.
        let backward = added.compatibilityProblems(with: [v1], mode: .backward)
        #expect(backward.contains { $0.contains("address.zip") } && backward.contains { $0.contains("home.zip") })
        let forward = added.compatibilityProblems(with: [v1], mode: .forward)
        #expect(forward.contains { $0.contains("enum symbols") })
        let union = Self.avro(#"{"name":"v","type":["null","int"]}"#)
        let wider = Self.avro(#"{"name":"v","type":["null","long","string"]}"#)
        #expect(wider.compatibilityProblems(with: [union], mode: .backward).isEmpty, "every written branch is readable")
        #expect(!wider.compatibilityProblems(with: [union], mode: .forward).isEmpty, "string has no reader branch")
    }

    @Test func canonicalFormIgnoresWhitespaceAndKeyOrder() throws {
        let a = try ParsedSchema.parse(#"{"type": "record", "name": "E", "fields": [{"name": "a", "type": "int"}]}"#, format: .avro)
        let b = try ParsedSchema.parse(#"{"fields":[{"type":"int","name":"a"}],"name":"E","type":"record"}"#, format: .avro)
        #expect(a.canonical == b.canonical)
    }

    @Test func diffNamesEveryKindOfChange() {
        let old = Schema([Field("id", .int64, nullable: false), Field("name", .string), Field("score", .int64)])
        let new = Schema([Field("id", .int64), Field("score", .float64), Field("tag", .string)])
        let diff = SchemaDiff(from: old, to: new)
        #expect(diff.kinds == ["added_column", "removed_column", "type_change", "nullability_change"])
        #expect(diff.description == "+ tag: string, - name: string, ~ score: int64 -> float64, ~ id: nullable")
        #expect(SchemaDiff.canWiden(.int64, to: .float64) && !SchemaDiff.canWiden(.float64, to: .int64))
        #expect(SchemaDiff.canWiden(.int64, to: .decimal(precision: 20, scale: 1)) && !SchemaDiff.canWiden(.int64, to: .decimal(precision: 10, scale: 2)))
    }
}
