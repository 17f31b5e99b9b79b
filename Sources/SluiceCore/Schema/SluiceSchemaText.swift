import Foundation

/// Sluice's own record schema as registry text:
/// `{"type":"sluice","fields":[{"name":"id","type":"int64","nullable":false}, …]}`.
///
/// Compatibility: a reader reads a writer's data when every reader field is either written
/// (with a type the reader's type can hold, see ``SchemaDiff/canWiden(_:to:)``, and not nullable
/// in the data when the reader requires it) or nullable (missing values read as null).
public enum SluiceSchemaText {
    public static func parse(_ json: Any) throws -> Schema {
        guard let object = json as? [String: Any], let fields = object["fields"] as? [Any] else {
            throw InvalidSchema("a Sluice schema is an object with a \"fields\" array")
        }
        var out: [Field] = []
        var seen = Set<String>()
        for f in fields {
            guard let field = f as? [String: Any], let name = field["name"] as? String, let typeName = field["type"] as? String else {
                throw InvalidSchema("each field needs a \"name\" and a \"type\"")
            }
            guard let type = DataType(parsing: typeName) else { throw InvalidSchema("field '\(name)': unknown type '\(typeName)'") }
            guard seen.insert(name).inserted else { throw InvalidSchema("field '\(name)' appears twice") }
            out.append(Field(name, type, nullable: field["nullable"] as? Bool ?? true))
        }
        return Schema(out)
    }

    /// Parses schema text as ``render(_:)`` writes it.
    public static func parse(text: String) throws -> Schema {
        guard let json = try? JSONSerialization.jsonObject(with: Data(text.utf8)) else { throw InvalidSchema("a Sluice schema is JSON text") }
        return try parse(json)
    }

    public static func render(_ schema: Schema) -> String {
        "{\"type\":\"sluice\",\"fields\":["
            + schema.fields.map {
                "{\"name\":\(quoted($0.name)),\"type\":\"\($0.type)\",\"nullable\":\($0.nullable)}"
            }.joined(separator: ",") + "]}"
    }

    static func quoted(_ s: String) -> String {
        let data = (try? JSONSerialization.data(withJSONObject: [s], options: [.withoutEscapingSlashes])) ?? Data("[\"\"]".utf8)
        return String(decoding: data.dropFirst().dropLast(), as: UTF8.self)
    }

    public static func problemsReading(_ reader: Schema, writer: Schema, widenToString: Bool = false) -> [String] {
        var problems: [String] = []
        for f in reader.fields {
            if let w = writer.fields.first(where: { $0.name == f.name }) {
                if w.type != f.type && !SchemaDiff.canWiden(w.type, to: f.type) && !(widenToString && f.type == .string) {
                    problems.append("\(f.name): type changed from \(w.type) to \(f.type)")
                }
                if w.nullable && !f.nullable {
                    problems.append("\(f.name): nullable in the data but required by the reader")
                }
            } else if !f.nullable {
                problems.append("\(f.name): required field is missing from the data (it has no default)")
            }
        }
        return problems
    }
}
