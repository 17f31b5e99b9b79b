import Foundation
import SluiceCore

/// The Sluice schema stored in a Parquet footer under the key `sluice.schema`, so a reader gets the
/// exact Sluice types back: `{"version":1,"fields":[{"name":"id","type":"int64","nullable":false},…]}`.
enum SluiceSchemaMetadata {
    static let key = "sluice.schema"

    static func encode(_ schema: Schema) -> String {
        var out = "{\"version\":1,\"fields\":["
        for (i, f) in schema.fields.enumerated() {
            if i > 0 { out += "," }
            out += "{\"name\":\(jsonString(f.name)),\"type\":\(jsonString(f.type.description)),\"nullable\":\(f.nullable)}"
        }
        return out + "]}"
    }

    /// The schema in `text`, or nil when it is not one this version understands.
    static func decode(_ text: String) -> Schema? {
        guard let object = try? JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any],
            let fields = object["fields"] as? [[String: Any]]
        else { return nil }
        var result: [Field] = []
        for f in fields {
            guard let name = f["name"] as? String, let typeName = f["type"] as? String,
                let type = DataType(parsing: typeName)
            else { return nil }
            let nullable = (f["nullable"] as? Bool) ?? true
            result.append(Field(name, type, nullable: nullable))
        }
        return Schema(result)
    }

    static func jsonString(_ s: String) -> String {
        var out = "\""
        for scalar in s.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            default:
                if scalar.value < 0x20 {
                    out += String(format: "\\u%04x", scalar.value)
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
        }
        return out + "\""
    }
}
