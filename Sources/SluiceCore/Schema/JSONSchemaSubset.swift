import Foundation

/// The subset of JSON Schema that describes records: `type` (a name or a list), `properties`,
/// `required`, `additionalProperties` (true or false; open when absent) and `items`.
///
/// Compatibility follows Confluent's semantics for JSON Schema: a schema is backward compatible
/// with an earlier one when it accepts every document the earlier one accepts.
public struct JSONSchemaNode: Sendable, Hashable {
    /// Allowed JSON types; empty means any.
    public var types: Set<String> = []
    public var properties: [String: JSONSchemaNode] = [:]
    public var required: Set<String> = []
    /// Whether properties not listed are allowed (the "open content model").
    public var additionalProperties = true
    /// The schema of array items (boxed: a struct cannot hold itself).
    public var items: JSONSchemaNode? {
        get { itemsBox.first }
        set { itemsBox = newValue.map { [$0] } ?? [] }
    }
    private var itemsBox: [JSONSchemaNode] = []

    static let knownTypes: Set<String> = ["string", "integer", "number", "boolean", "null", "object", "array"]
    static let supportedKeywords: Set<String> = [
        "type", "properties", "required", "additionalProperties", "items",
        "title", "description", "$schema", "$id", "$comment", "default", "examples",
    ]

    public init() {}

    public static func parse(_ json: Any) throws -> JSONSchemaNode {
        if let flag = json as? Bool {
            var n = JSONSchemaNode()
            if !flag { n.types = ["__nothing__"] }
            return n
        }
        guard let object = json as? [String: Any] else { throw InvalidSchema("a JSON Schema must be an object") }
        // Keywords outside the subset would change what the schema accepts, and a compatibility
        // verdict that ignored them could be wrong: refuse them rather than guess.
        let unsupported = object.keys.filter { !supportedKeywords.contains($0) }.sorted()
        if !unsupported.isEmpty {
            throw InvalidSchema(
                "unsupported JSON Schema keyword(s) \(unsupported.joined(separator: ", ")); Sluice's registry supports "
                    + "type, properties, required, additionalProperties (true/false) and items, plus annotations (title, description, $schema, $id, $comment, default, examples)"
            )
        }
        var node = JSONSchemaNode()
        if let t = object["type"] as? String {
            node.types = [t]
        } else if let ts = object["type"] as? [String] {
            node.types = Set(ts)
        } else if object["type"] != nil {
            throw InvalidSchema("\"type\" must be a string or an array of strings")
        }
        for t in node.types where !knownTypes.contains(t) {
            throw InvalidSchema("unknown JSON Schema type '\(t)'")
        }
        if let props = object["properties"] {
            guard let p = props as? [String: Any] else { throw InvalidSchema("\"properties\" must be an object") }
            for (name, schema) in p { node.properties[name] = try parse(schema) }
        }
        if let req = object["required"] {
            guard let r = req as? [String] else { throw InvalidSchema("\"required\" must be an array of strings") }
            node.required = Set(r)
        }
        if let ap = object["additionalProperties"] {
            guard let b = ap as? Bool else { throw InvalidSchema("additionalProperties must be true or false (a schema there is not supported)") }
            node.additionalProperties = b
        }
        if let items = object["items"] {
            guard items is [String: Any] || items is Bool else { throw InvalidSchema("items must be one schema (tuple items are not supported)") }
            node.items = try parse(items)
        }
        return node
    }

    public var canonical: String {
        var parts: [String] = []
        if !types.isEmpty { parts.append("\"type\":[" + types.sorted().map { "\"\($0)\"" }.joined(separator: ",") + "]") }
        if !properties.isEmpty {
            parts.append("\"properties\":{" + properties.keys.sorted().map { "\"\($0)\":\(properties[$0]!.canonical)" }.joined(separator: ",") + "}")
        }
        if !required.isEmpty { parts.append("\"required\":[" + required.sorted().map { "\"\($0)\"" }.joined(separator: ",") + "]") }
        if !additionalProperties { parts.append("\"additionalProperties\":false") }
        if let items { parts.append("\"items\":\(items.canonical)") }
        return "{" + parts.joined(separator: ",") + "}"
    }

    /// True when the node accepts values of JSON type `t`.
    func allows(_ t: String) -> Bool {
        types.isEmpty || types.contains(t) || (t == "integer" && types.contains("number"))
    }

    /// True when the node puts no constraint on values.
    var acceptsAnything: Bool { types.isEmpty && properties.isEmpty && required.isEmpty && additionalProperties && items == nil }

    /// Problems with `self` accepting every document `old` accepts.
    public func problemsAccepting(_ old: JSONSchemaNode, path: String) -> [String] {
        let at = path.isEmpty ? "" : "\(path): "
        var problems: [String] = []
        let oldTypes = old.types.isEmpty ? JSONSchemaNode.knownTypes : old.types
        let lost = oldTypes.filter { !allows($0) }
        if !lost.isEmpty { problems.append("\(at)type narrowed: \(lost.sorted().joined(separator: ", ")) no longer accepted") }
        let objects = oldTypes.contains("object") && allows("object")
        if objects {
            for (name, oldProp) in old.properties {
                let p = path.isEmpty ? name : "\(path).\(name)"
                if let newProp = properties[name] {
                    problems += newProp.problemsAccepting(oldProp, path: p)
                } else if !additionalProperties {
                    problems.append("\(p): property removed from a closed content model")
                }
            }
            for (name, newProp) in properties where old.properties[name] == nil {
                let p = path.isEmpty ? name : "\(path).\(name)"
                if old.additionalProperties && !newProp.acceptsAnything {
                    problems.append("\(p): property added to an open content model (earlier documents may hold any value there)")
                }
            }
            for name in required.subtracting(old.required).sorted() {
                problems.append("\(path.isEmpty ? name : "\(path).\(name)"): required property added")
            }
            if old.additionalProperties && !additionalProperties {
                problems.append("\(at)content model closed (additionalProperties: false)")
            }
        }
        if oldTypes.contains("array"), allows("array"), let newItems = items {
            problems += newItems.problemsAccepting(old.items ?? JSONSchemaNode(), path: path + "[]")
        }
        return problems
    }
}
