import Foundation

/// An Avro schema (https://avro.apache.org/docs/current/specification/), enough to decide
/// compatibility by Avro's schema-resolution rules, as Confluent's registry does.
public indirect enum AvroType: Sendable, Hashable {
    case null, boolean, int, long, float, double, bytes, string
    case record(name: String, fields: [AvroField])
    case enumeration(name: String, symbols: [String], hasDefault: Bool)
    case array(AvroType)
    case map(AvroType)
    case fixed(name: String, size: Int)
    case union([AvroType])

    /// One field of a record.
    public struct AvroField: Sendable, Hashable {
        public var name: String
        public var type: AvroType
        /// The field declares a `default` (a reader may then read data that lacks it).
        public var hasDefault: Bool
        public var aliases: [String]
    }

    static let primitives: [String: AvroType] = [
        "null": .null, "boolean": .boolean, "int": .int, "long": .long, "float": .float,
        "double": .double, "bytes": .bytes, "string": .string,
    ]

    /// Parses a decoded JSON value (a type name, an object or a union array).
    public static func parse(_ json: Any) throws -> AvroType {
        var named: [String: AvroType] = [:]
        return try parse(json, named: &named, namespace: nil)
    }

    static func parse(_ json: Any, named: inout [String: AvroType], namespace: String?) throws -> AvroType {
        if let name = json as? String {
            if let p = primitives[name] { return p }
            if let t = named[name] ?? namespace.flatMap({ named["\($0).\(name)"] }) { return t }
            throw InvalidSchema("unknown Avro type '\(name)'")
        }
        if let branches = json as? [Any] {
            let types = try branches.map { try parse($0, named: &named, namespace: namespace) }
            guard !types.isEmpty else { throw InvalidSchema("an Avro union needs at least one branch") }
            if Set(types).count != types.count { throw InvalidSchema("an Avro union may not repeat a type") }
            return .union(types)
        }
        guard let object = json as? [String: Any] else { throw InvalidSchema("an Avro schema must be a type name, an object or an array") }
        guard let type = object["type"] else { throw InvalidSchema("an Avro schema object needs a \"type\"") }
        let ns = (object["namespace"] as? String) ?? namespace
        func fullName() throws -> String {
            guard let name = object["name"] as? String, !name.isEmpty else {
                throw InvalidSchema("an Avro \(type) needs a \"name\"")
            }
            return name.contains(".") || ns == nil ? name : "\(ns!).\(name)"
        }
        switch type as? String {
        case "record", "error":
            let name = try fullName()
            guard let fieldList = object["fields"] as? [Any] else { throw InvalidSchema("Avro record '\(name)' needs a \"fields\" array") }
            // Registered before its fields, so a field may refer to the record (recursion by name).
            named[name] = .record(name: name, fields: [])
            var fields: [AvroField] = []
            var seen = Set<String>()
            for f in fieldList {
                guard let field = f as? [String: Any], let fname = field["name"] as? String, let ftype = field["type"] else {
                    throw InvalidSchema("each field of Avro record '\(name)' needs a \"name\" and a \"type\"")
                }
                guard seen.insert(fname).inserted else { throw InvalidSchema("Avro record '\(name)' repeats field '\(fname)'") }
                fields.append(
                    AvroField(
                        name: fname, type: try parse(ftype, named: &named, namespace: ns),
                        hasDefault: field.keys.contains("default"), aliases: field["aliases"] as? [String] ?? []))
            }
            let record = AvroType.record(name: name, fields: fields)
            named[name] = record
            return record
        case "enum":
            let name = try fullName()
            guard let symbols = object["symbols"] as? [String] else { throw InvalidSchema("Avro enum '\(name)' needs \"symbols\"") }
            let e = AvroType.enumeration(name: name, symbols: symbols, hasDefault: object["default"] != nil)
            named[name] = e
            return e
        case "array":
            guard let items = object["items"] else { throw InvalidSchema("an Avro array needs \"items\"") }
            return .array(try parse(items, named: &named, namespace: ns))
        case "map":
            guard let values = object["values"] else { throw InvalidSchema("an Avro map needs \"values\"") }
            return .map(try parse(values, named: &named, namespace: ns))
        case "fixed":
            let name = try fullName()
            guard let size = object["size"] as? Int, size >= 0 else { throw InvalidSchema("Avro fixed '\(name)' needs a \"size\"") }
            let f = AvroType.fixed(name: name, size: size)
            named[name] = f
            return f
        default:
            // {"type": "long", "logicalType": "timestamp-micros"} and the like: the underlying type decides.
            return try parse(type, named: &named, namespace: ns)
        }
    }

    /// A stable text for identity (field order kept; whitespace, docs and key order dropped).
    public var canonical: String {
        switch self {
        case .null: "\"null\""
        case .boolean: "\"boolean\""
        case .int: "\"int\""
        case .long: "\"long\""
        case .float: "\"float\""
        case .double: "\"double\""
        case .bytes: "\"bytes\""
        case .string: "\"string\""
        case let .record(name, fields):
            "{\"type\":\"record\",\"name\":\"\(name)\",\"fields\":["
                + fields.map {
                    "{\"name\":\"\($0.name)\",\"type\":\($0.type.canonical)\($0.hasDefault ? ",\"default\":true" : "")}"
                }.joined(separator: ",") + "]}"
        case let .enumeration(name, symbols, _):
            "{\"type\":\"enum\",\"name\":\"\(name)\",\"symbols\":[" + symbols.map { "\"\($0)\"" }.joined(separator: ",") + "]}"
        case let .array(items): "{\"type\":\"array\",\"items\":\(items.canonical)}"
        case let .map(values): "{\"type\":\"map\",\"values\":\(values.canonical)}"
        case let .fixed(name, size): "{\"type\":\"fixed\",\"name\":\"\(name)\",\"size\":\(size)}"
        case let .union(types): "[" + types.map(\.canonical).joined(separator: ",") + "]"
        }
    }

    var shortName: String {
        switch self {
        case .null: "null"
        case .boolean: "boolean"
        case .int: "int"
        case .long: "long"
        case .float: "float"
        case .double: "double"
        case .bytes: "bytes"
        case .string: "string"
        case let .record(name, _): "record \(name)"
        case let .enumeration(name, _, _): "enum \(name)"
        case .array: "array"
        case .map: "map"
        case let .fixed(name, _): "fixed \(name)"
        case .union: "union"
        }
    }

    static func unqualified(_ name: String) -> Substring { name.split(separator: ".").last ?? Substring(name) }

    /// Problems a reader with schema `self` has reading data written with `writer` (Avro schema resolution).
    public func problemsReading(_ writer: AvroType, path: String) -> [String] {
        let at = path.isEmpty ? "" : "\(path): "
        switch (self, writer) {
        case (_, let .union(branches)):
            // Every branch the writer may have used must be readable.
            return branches.flatMap { problemsReading($0, path: path) }
        case (let .union(branches), _):
            if branches.contains(where: { $0.problemsReading(writer, path: path).isEmpty }) { return [] }
            return ["\(at)\(writer.shortName) written, but the reader's union has no branch that reads it"]
        case (.null, .null), (.boolean, .boolean), (.int, .int), (.long, .long), (.float, .float), (.double, .double),
            (.bytes, .bytes), (.string, .string):
            return []
        // Promotions allowed by the Avro specification.
        case (.long, .int), (.float, .int), (.float, .long), (.double, .int), (.double, .long), (.double, .float),
            (.string, .bytes), (.bytes, .string):
            return []
        case let (.record(rName, rFields), .record(wName, wFields)):
            guard Self.unqualified(rName) == Self.unqualified(wName) else {
                return ["\(at)record name changed from '\(wName)' to '\(rName)'"]
            }
            var problems: [String] = []
            for f in rFields {
                let w = wFields.first { $0.name == f.name } ?? wFields.first { f.aliases.contains($0.name) }
                let fieldPath = path.isEmpty ? f.name : "\(path).\(f.name)"
                if let w {
                    problems += f.type.problemsReading(w.type, path: fieldPath)
                } else if !f.hasDefault {
                    problems.append("\(fieldPath): field is missing from the data and has no default")
                }
            }
            return problems
        case let (.enumeration(rName, rSymbols, rDefault), .enumeration(wName, wSymbols, _)):
            guard Self.unqualified(rName) == Self.unqualified(wName) else { return ["\(at)enum name changed from '\(wName)' to '\(rName)'"] }
            let missing = wSymbols.filter { !rSymbols.contains($0) }
            return missing.isEmpty || rDefault ? [] : ["\(at)enum symbols \(missing) are written but not known to the reader"]
        case let (.array(r), .array(w)):
            return r.problemsReading(w, path: path + "[]")
        case let (.map(r), .map(w)):
            return r.problemsReading(w, path: path + "{}")
        case let (.fixed(rName, rSize), .fixed(wName, wSize)):
            if Self.unqualified(rName) != Self.unqualified(wName) { return ["\(at)fixed name changed from '\(wName)' to '\(rName)'"] }
            return rSize == wSize ? [] : ["\(at)fixed size changed from \(wSize) to \(rSize)"]
        default:
            return ["\(at)type changed from \(writer.shortName) to \(shortName)"]
        }
    }
}

public typealias AvroField = AvroType.AvroField
