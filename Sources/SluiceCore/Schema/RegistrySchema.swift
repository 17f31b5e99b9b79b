import Foundation

/// The languages a registered schema may be written in.
public enum SchemaFormat: String, Sendable, CaseIterable, Codable {
    /// Avro record schemas (Confluent's default `schemaType`).
    case avro = "AVRO"
    /// JSON Schema: the object / properties / required / type / items / additionalProperties subset that describes records.
    case json = "JSON"
    /// Sluice's own record schema: `{"type": "sluice", "fields": [{"name": "id", "type": "int64", "nullable": false}]}`.
    case sluice = "SLUICE"
}

/// Why a schema text is not a valid schema of its format (Confluent error 42201).
public struct InvalidSchema: Error, CustomStringConvertible, Sendable {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// A schema parsed from its text, ready to compare.
public enum ParsedSchema: Sendable, Hashable {
    case avro(AvroType)
    case json(JSONSchemaNode)
    case sluice(Schema)

    public var format: SchemaFormat {
        switch self {
        case .avro: .avro
        case .json: .json
        case .sluice: .sluice
        }
    }

    /// Parses `text` as a schema of `format`.
    public static func parse(_ text: String, format: SchemaFormat) throws -> ParsedSchema {
        let object: Any
        do {
            object = try JSONSerialization.jsonObject(with: Data(text.utf8), options: [.fragmentsAllowed])
        } catch {
            throw InvalidSchema("the schema is not valid JSON: \(error.localizedDescription)")
        }
        switch format {
        case .avro: return .avro(try AvroType.parse(object))
        case .json: return .json(try JSONSchemaNode.parse(object))
        case .sluice: return .sluice(try SluiceSchemaText.parse(object))
        }
    }

    /// A canonical text: equal schemas (whatever their whitespace and key order) have equal canonical texts.
    public var canonical: String {
        switch self {
        case let .avro(t): t.canonical
        case let .json(n): n.canonical
        case let .sluice(s): SluiceSchemaText.render(s)
        }
    }

    /// Problems that keep a reader using `self` from reading data written with `writer` (empty: it can).
    /// With `widenToString`, a Sluice string field reads values of any type (as their text), as a
    /// pipeline with `schema: {widen_to_string: true}` writes them.
    public func problemsReading(_ writer: ParsedSchema, widenToString: Bool = false) -> [String] {
        switch (self, writer) {
        case let (.avro(r), .avro(w)): return r.problemsReading(w, path: "")
        case let (.json(r), .json(w)): return r.problemsAccepting(w, path: "")
        case let (.sluice(r), .sluice(w)): return SluiceSchemaText.problemsReading(r, writer: w, widenToString: widenToString)
        default: return ["the schema type changed from \(writer.format.rawValue) to \(format.rawValue)"]
        }
    }

    /// Problems with registering `self` after `earlier` (oldest first) under `mode`; empty when compatible.
    public func compatibilityProblems(with earlier: [ParsedSchema], mode: CompatibilityMode, widenToString: Bool = false) -> [String] {
        guard mode != .none, let latest = earlier.last else { return [] }
        let against = mode.isTransitive ? earlier : [latest]
        var problems: [String] = []
        for (i, old) in against.enumerated() {
            let label = mode.isTransitive ? " (version \(earlier.count - against.count + i + 1))" : ""
            if mode.checksBackward {
                problems += problemsReading(old, widenToString: widenToString).map { "backward\(label): \($0)" }
            }
            if mode.checksForward {
                problems += old.problemsReading(self, widenToString: widenToString).map { "forward\(label): \($0)" }
            }
        }
        return problems
    }
}
