import Foundation
import SluiceCore
import Testing
@testable import SluiceFormats

/// A schema node for hand-made nested schemas, flattened as a Parquet footer stores it.
indirect enum SchemaNode {
    case leaf(String, ParquetRepetition, ParquetPhysicalType, ParquetLogicalType? = nil)
    case group(String, ParquetRepetition, ParquetLogicalType?, [SchemaNode])

    var elements: [ParquetSchemaElement] {
        switch self {
        case let .leaf(name, repetition, type, logical):
            var e = ParquetSchemaElement(name: name)
            e.repetition = repetition
            e.type = type
            e.logicalType = logical
            return [e]
        case let .group(name, repetition, logical, children):
            var e = ParquetSchemaElement(name: name)
            e.repetition = repetition
            e.logicalType = logical
            e.numChildren = Int32(children.count)
            return [e] + children.flatMap(\.elements)
        }
    }

    /// The nested column this node is as the only field of a file.
    func column() throws -> ParquetNestedColumn {
        var root = ParquetSchemaElement(name: "schema")
        root.numChildren = 1
        return try ParquetNestedColumn(ParquetSchemaTree.parse([root] + elements).children[0])
    }
}

/// Record assembly from hand-made level sequences: the examples of the Dremel paper and of the
/// Parquet format's LogicalTypes.md, checked byte for byte.
@Suite struct NestedRecordAssemblerTests {
    /// One leaf's entries: repetition level, definition level, and the JSON text of each
    /// defined value.
    typealias Entries = (r: [UInt32], d: [UInt32], values: [String])

    /// Assembles `rows` rows of `column` from the leaves' entries; nil stands for a null row.
    static func assemble(_ column: ParquetNestedColumn, _ leaves: [Entries], rows: Int) throws -> [String?] {
        let levels = try zip(column.leaves, leaves).map { leaf, e in
            try ParquetLeafLevels(
                repetition: e.r, definition: e.d, values: e.values,
                maxRepetitionLevel: leaf.maxRepetitionLevel, maxDefinitionLevel: leaf.maxDefinitionLevel)
        }
        var assembler = try NestedRecordAssembler(shape: column.shape, leaves: levels)
        let result = try assembler.column(rows: rows)
        return (0..<rows).map { r in result.isNull(r) ? nil : result.withBytes(at: r) { String(decoding: $0, as: UTF8.self) } }
    }

    // MARK: The Dremel paper (Melnik et al., 2010), figure 2 and 3

    /// `repeated group Name { repeated group Language { required string Code; optional string
    /// Country; } optional string Url; }` with the paper's records r1 and r2.
    @Test func dremelPaperNameColumn() throws {
        let name = SchemaNode.group(
            "Name", .repeated, nil,
            [
                .group("Language", .repeated, nil, [.leaf("Code", .required, .byteArray, .string), .leaf("Country", .optional, .byteArray, .string)]),
                .leaf("Url", .optional, .byteArray, .string),
            ])
        let column = try name.column()
        #expect(column.leaves.map(\.field.name) == ["Name.Language.Code", "Name.Language.Country", "Name.Url"])
        #expect(column.leaves.map(\.maxRepetitionLevel) == [2, 2, 1])
        #expect(column.leaves.map(\.maxDefinitionLevel) == [2, 3, 2])
        #expect(column.typeDescription == "list<struct<Language: list<struct<Code: string, Country: string>>, Url: string>>")
        let rows = try Self.assemble(
            column,
            [
                ([0, 2, 1, 1, 0], [2, 2, 1, 2, 1], [#""en-us""#, #""en""#, #""en-gb""#]),
                ([0, 2, 1, 1, 0], [3, 2, 1, 3, 1], [#""us""#, #""gb""#]),
                ([0, 1, 1, 0], [2, 2, 1, 2], [#""http://A""#, #""http://B""#, #""http://C""#]),
            ], rows: 2)
        #expect(
            rows[0]
                == #"[{"Language":[{"Code":"en-us","Country":"us"},{"Code":"en","Country":null}],"Url":"http://A"},"#
                + #"{"Language":[],"Url":"http://B"},{"Language":[{"Code":"en-gb","Country":"gb"}],"Url":null}]"#)
        #expect(rows[1] == #"[{"Language":[],"Url":"http://C"}]"#)
    }

    /// `optional group Links { repeated int64 Backward; repeated int64 Forward; }`, with a third
    /// record whose Links is null.
    @Test func dremelPaperLinksColumn() throws {
        let links = SchemaNode.group("Links", .optional, nil, [.leaf("Backward", .repeated, .int64), .leaf("Forward", .repeated, .int64)])
        let column = try links.column()
        #expect(column.leaves.map(\.maxDefinitionLevel) == [2, 2])
        let rows = try Self.assemble(
            column,
            [
                ([0, 0, 1, 0], [1, 2, 2, 0], ["10", "30"]),
                ([0, 1, 1, 0, 0], [2, 2, 2, 2, 0], ["20", "40", "60", "80"]),
            ], rows: 3)
        #expect(rows == [#"{"Backward":[],"Forward":[20,40,60]}"#, #"{"Backward":[10,30],"Forward":[80]}"#, nil])
    }

    // MARK: LogicalTypes.md

    /// The standard 3-level list: a null list, an empty list, a list of a null, and a list with
    /// values around a null.
    @Test func threeLevelListDistinguishesNullEmptyAndNullElements() throws {
        let list = SchemaNode.group(
            "my_list", .optional, .list, [.group("list", .repeated, nil, [.leaf("element", .optional, .int32)])])
        let column = try list.column()
        #expect(column.typeDescription == "list<int64>")
        let rows = try Self.assemble(column, [([0, 0, 0, 0, 1, 1], [0, 1, 2, 3, 2, 3], ["1", "2"])], rows: 4)
        #expect(rows == [nil, "[]", "[null]", "[1,null,2]"])
    }

    /// A required list of required elements has no level for null: an empty list is level 0.
    @Test func requiredListOfRequiredElements() throws {
        let list = SchemaNode.group(
            "l", .required, .list, [.group("list", .repeated, nil, [.leaf("element", .required, .int64)])])
        let rows = try Self.assemble(try list.column(), [([0, 0, 1, 1], [0, 1, 1, 1], ["7", "8", "9"])], rows: 2)
        #expect(rows == ["[]", "[7,8,9]"])
    }

    /// The 2-level encodings the backward-compatibility rules describe: a repeated primitive, a
    /// repeated group of several fields, and a one-field group named `array` or `<name>_tuple`.
    @Test func legacyTwoLevelLists() throws {
        let primitive = SchemaNode.group("a", .optional, .list, [.leaf("array", .repeated, .int32)])
        #expect(try Self.assemble(try primitive.column(), [([0, 0, 1, 0], [1, 2, 2, 0], ["1", "2"])], rows: 3) == ["[]", "[1,2]", nil])

        let pairs = SchemaNode.group(
            "b", .optional, .list,
            [.group("element", .repeated, nil, [.leaf("x", .required, .int64), .leaf("y", .optional, .byteArray, .string)])])
        let column = try pairs.column()
        #expect(column.typeDescription == "list<struct<x: int64, y: string>>")
        #expect(
            try Self.assemble(column, [([0, 1], [2, 2], ["1", "2"]), ([0, 1], [3, 2], [#""p""#])], rows: 1)
                == [#"[{"x":1,"y":"p"},{"x":2,"y":null}]"#])

        for wrapper in ["array", "c_tuple"] {
            let tuple = SchemaNode.group("c", .required, .list, [.group(wrapper, .repeated, nil, [.leaf("str", .required, .byteArray, .string)])])
            #expect(try Self.assemble(try tuple.column(), [([0, 1], [1, 1], [#""a""#, #""b""#])], rows: 1) == [#"[{"str":"a"},{"str":"b"}]"#])
        }
        // Any other one-field group is the 3-level wrapper of its field.
        let threeLevel = SchemaNode.group("d", .required, .list, [.group("bag", .repeated, nil, [.leaf("str", .required, .byteArray, .string)])])
        #expect(try Self.assemble(try threeLevel.column(), [([0, 1], [1, 1], [#""a""#, #""b""#])], rows: 1) == [#"["a","b"]"#])
    }

    /// A list of lists: null and empty inner lists, and an empty outer list.
    @Test func listOfLists() throws {
        let inner = SchemaNode.group("element", .optional, .list, [.group("list", .repeated, nil, [.leaf("element", .optional, .int64)])])
        let outer = SchemaNode.group("ll", .optional, .list, [.group("list", .repeated, nil, [inner])])
        let column = try outer.column()
        #expect(column.leaves[0].maxRepetitionLevel == 2)
        #expect(column.leaves[0].maxDefinitionLevel == 5)
        // [[1, 2], null, [], [null]], [], [[3]]
        let rows = try Self.assemble(
            column, [([0, 2, 1, 1, 1, 0, 0], [5, 5, 2, 3, 4, 1, 5], ["1", "2", "3"])], rows: 3)
        #expect(rows == ["[[1,2],null,[],[null]]", "[]", "[[3]]"])
    }

    /// MAP with string keys is an object; with other keys, an array of key/value pairs.
    @Test func mapsWithStringAndOtherKeys() throws {
        let strings = SchemaNode.group(
            "m", .optional, .map,
            [.group("key_value", .repeated, nil, [.leaf("key", .required, .byteArray, .string), .leaf("value", .optional, .int64)])])
        let column = try strings.column()
        #expect(column.typeDescription == "map<string, int64>")
        let rows = try Self.assemble(
            column,
            [([0, 1, 0, 0], [2, 2, 1, 0], [#""a""#, #""b""#]), ([0, 1, 0, 0], [3, 2, 1, 0], ["1"])], rows: 3)
        #expect(rows == [#"{"a":1,"b":null}"#, "{}", nil])

        let ints = SchemaNode.group(
            "n", .required, .map,
            [.group("key_value", .repeated, nil, [.leaf("key", .required, .int32), .leaf("value", .optional, .byteArray, .string)])])
        #expect(
            try Self.assemble(try ints.column(), [([0, 1, 0], [1, 1, 0], ["1", "2"]), ([0, 1, 0], [2, 1, 0], [#""x""#])], rows: 2)
                == [#"[{"key":1,"value":"x"},{"key":2,"value":null}]"#, "[]"])
    }

    /// A struct holding a list and a struct; field names are escaped as JSON strings.
    @Test func structWithNestedListAndStruct() throws {
        let s = SchemaNode.group(
            "s", .optional, nil,
            [
                .leaf("id", .required, .int64),
                .group("tags", .optional, .list, [.group("list", .repeated, nil, [.leaf("element", .required, .byteArray, .string)])]),
                .group("in\"ner", .optional, nil, [.leaf("x", .optional, .double)]),
            ])
        let column = try s.column()
        #expect(column.leaves.map(\.maxDefinitionLevel) == [1, 3, 3])
        // {id 1, tags [a, b], inner {x 1.5}}; {id 2, tags null, inner null}; null; {id 3, tags [], inner {x null}}
        let rows = try Self.assemble(
            column,
            [
                ([0, 0, 0, 0], [1, 1, 0, 1], ["1", "2", "3"]),
                ([0, 1, 0, 0, 0], [3, 3, 1, 0, 2], [#""a""#, #""b""#]),
                ([0, 0, 0, 0], [3, 1, 0, 2], ["1.5"]),
            ], rows: 4)
        #expect(
            rows == [
                #"{"id":1,"tags":["a","b"],"in\"ner":{"x":1.5}}"#, #"{"id":2,"tags":null,"in\"ner":null}"#, nil,
                #"{"id":3,"tags":[],"in\"ner":{"x":null}}"#,
            ])
    }

    /// A top-level repeated primitive is a list that is never null.
    @Test func topLevelRepeatedField() throws {
        let column = try SchemaNode.leaf("r", .repeated, .int64).column()
        #expect(try Self.assemble(column, [([0, 0, 1], [0, 1, 1], ["4", "5"])], rows: 2) == ["[]", "[4,5]"])
    }

    // MARK: Leaf values as JSON

    @Test func leafValuesAreRenderedExactly() throws {
        func text(_ values: ColumnStorage, _ type: DataType) throws -> [String] {
            var levels = ParquetLeafLevels(maxRepetitionLevel: 0, maxDefinitionLevel: 0)
            let n: Int =
                switch values {
                case let .float64(v): v.count
                case let .int64(v): v.count
                case let .decimal(v): v.count
                case let .int32(v): v.count
                case let .bool(v): v.count
                case let .bytes(o, _): o.count - 1
                }
            try levels.append(repetition: nil, definition: nil, count: n, values: values, type: type)
            var start = 0
            return levels.valueEnds.map { end in
                defer { start = end }
                return String(decoding: levels.text[start..<end], as: UTF8.self)
            }
        }
        #expect(
            try text(.float64([0.1, 0.30000000000000004, 1e300, -0.0, .nan, .infinity, -.infinity]), .float64)
                == ["0.1", "0.30000000000000004", "1e+300", "-0.0", #""NaN""#, #""Infinity""#, #""-Infinity""#])
        #expect(try text(.decimal([12345, -5]), .decimal(precision: 10, scale: 3)) == ["12.345", "-0.005"])
        #expect(try text(.int64([1_700_000_000_123_456]), .timestamp) == [#""2023-11-14T22:13:20.123456Z""#])
        #expect(try text(.int32([19000]), .date) == [#""2022-01-08""#])
        #expect(try text(.bytes(offsets: [0, 3], data: [0, 1, 255]), .binary) == [#""AAH/""#])
        #expect(try text(.bytes(offsets: [0, 5], data: Array("a\"\n\\b".utf8)), .string) == [#""a\"\n\\b""#])
        #expect(try text(.bool([true, false]), .bool) == ["true", "false"])
        #expect(try text(.int64([Int64.min]), .int64) == ["-9223372036854775808"])
    }

    // MARK: Malformed levels

    @Test func disagreeingOrLeftOverLevelsAreRefused() throws {
        let pairs = SchemaNode.group(
            "p", .optional, .list,
            [.group("element", .repeated, nil, [.leaf("x", .required, .int64), .leaf("y", .required, .int64)])])
        let column = try pairs.column()
        // x has two elements, y one.
        #expect(throws: ParquetFormatError.self) {
            try Self.assemble(column, [([0, 1], [2, 2], ["1", "2"]), ([0, 0], [2, 2], ["3", "4"])], rows: 2)
        }
        // x is null where y is not.
        #expect(throws: ParquetFormatError.self) {
            try Self.assemble(column, [([0], [0], []), ([0], [2], ["3"])], rows: 1)
        }
        // Entries left after the last row.
        #expect(throws: ParquetFormatError.self) {
            try Self.assemble(column, [([0, 0], [2, 2], ["1", "2"]), ([0, 0], [2, 2], ["3", "4"])], rows: 1)
        }
        // A row that starts inside a list.
        #expect(throws: ParquetFormatError.self) {
            try Self.assemble(column, [([1], [2], ["1"]), ([1], [2], ["3"])], rows: 1)
        }
        // Too few entries for the rows.
        #expect(throws: ParquetFormatError.self) {
            try Self.assemble(column, [([0], [2], ["1"]), ([0], [2], ["3"])], rows: 2)
        }
        // A level above the maximum.
        #expect(throws: ParquetFormatError.self) {
            try Self.assemble(column, [([0], [3], ["1"]), ([0], [2], ["3"])], rows: 1)
        }
    }

    @Test func schemaErrorsNameTheGroup() throws {
        let bad = SchemaNode.group("l", .optional, .list, [.leaf("x", .optional, .int32)])
        #expect(throws: ParquetFormatError.self) { try bad.column() }
        let deep = (0..<70).reduce(SchemaNode.leaf("x", .optional, .int32)) { inner, i in .group("g\(i)", .optional, nil, [inner]) }
        #expect(throws: ParquetFormatError.self) { try deep.column() }
    }
}
