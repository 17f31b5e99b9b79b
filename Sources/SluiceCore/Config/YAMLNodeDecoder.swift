import Foundation
import Yams

/// A strict `Decoder` over a composed YAML node tree.
///
/// Unlike Yams' own decoder it knows where every value came from, so each error
/// names the file, line, column and key path; it rejects keys that the target type
/// does not read (with a suggestion for typos); and it substitutes `${ENV_VAR}`
/// (or `${ENV_VAR:-default}`) in scalars.
public struct YAMLNodeDecoding: Sendable {
    public var file: String
    public var environment: [String: String]

    public init(file: String, environment: [String: String] = ProcessInfo.processInfo.environment) {
        self.file = file
        self.environment = environment
    }

    /// Parses `text` and decodes `T` from its root mapping.
    public func decode<T: Decodable>(_ type: T.Type, from text: String) throws -> T {
        let root: Node
        do {
            guard let node = try Yams.compose(yaml: text) else {
                throw ConfigError(file: file, line: 1, column: 1, keyPath: "", message: "the file is empty")
            }
            root = node
        } catch let error as YamlError {
            throw Self.syntaxError(error, file: file)
        }
        return try decode(type, from: root, path: [])
    }

    /// Decodes `T` from `node`, found at `path` (used for component options decoded later).
    public func decode<T: Decodable>(_ type: T.Type, from node: Node, path: [any CodingKey]) throws -> T {
        let decoder = NodeDecoder(node: node, codingPath: path, options: self)
        let value = try T(from: decoder)
        try decoder.checkUnusedKeys()
        return value
    }

    func error(_ message: String, at node: Node?, path: [any CodingKey]) -> ConfigError {
        ConfigError(
            file: file, line: node?.mark?.line, column: node?.mark?.column,
            keyPath: Self.render(path), message: message)
    }

    static func render(_ path: [any CodingKey]) -> String {
        var out = ""
        for key in path {
            if let i = key.intValue { out += "[\(i)]" } else { out += out.isEmpty ? key.stringValue : "." + key.stringValue }
        }
        return out
    }

    static func syntaxError(_ error: YamlError, file: String) -> ConfigError {
        switch error {
        case let .scanner(context, problem, mark, _), let .parser(context, problem, mark, _):
            let ctx = context.map { "\($0.text) " } ?? ""
            return ConfigError(
                file: file, line: mark.line, column: mark.column, keyPath: "",
                message: "YAML syntax error: \(ctx)\(problem)")
        default:
            return ConfigError(file: file, line: nil, column: nil, keyPath: "", message: "YAML error: \(error)")
        }
    }

    /// Replaces `${NAME}` and `${NAME:-default}` (the default also when NAME is empty, as in a
    /// shell) with environment values; `$${` is a literal `${`.
    func substitute(_ text: String, node: Node, path: [any CodingKey]) throws -> String {
        guard text.contains("${") else { return text }
        var out = "", rest = Substring(text)
        while let start = rest.range(of: "${") {
            if start.lowerBound > rest.startIndex, rest[rest.index(before: start.lowerBound)] == "$" {
                out += rest[..<rest.index(before: start.lowerBound)]
                out += "${"
                rest = rest[start.upperBound...]
                continue
            }
            out += rest[..<start.lowerBound]
            guard let end = rest[start.upperBound...].firstIndex(of: "}") else {
                throw error("unterminated '${' in value (write $${ for a literal ${)", at: node, path: path)
            }
            let expr = rest[start.upperBound..<end]
            let (name, fallback): (Substring, Substring?) =
                if let r = expr.range(of: ":-") {
                    (expr[..<r.lowerBound], expr[r.upperBound...])
                } else { (expr, nil) }
            if let value = environment[String(name)], !(value.isEmpty && fallback != nil) {
                out += value
            } else if let fallback {
                out += fallback
            } else {
                throw error(
                    "environment variable '\(name)' is not set (use ${\(name):-default} for a default)",
                    at: node, path: path)
            }
            rest = rest[rest.index(after: end)...]
        }
        return out + rest
    }
}

/// Extracts the raw node behind a value during decoding (used for component options).
public protocol YAMLNodeCarrying {
    var yamlNode: Node { get }
    var yamlDecoding: YAMLNodeDecoding { get }
}

final class NodeDecoder: Decoder, YAMLNodeCarrying {
    let node: Node
    let codingPath: [any CodingKey]
    let options: YAMLNodeDecoding
    var userInfo: [CodingUserInfoKey: Any] { [:] }
    /// Keys read through keyed containers; nil when no keyed container was made.
    var usedKeys: Set<String>?

    var yamlNode: Node { node }
    var yamlDecoding: YAMLNodeDecoding { options }

    init(node: Node, codingPath: [any CodingKey], options: YAMLNodeDecoding) {
        self.node = node
        self.codingPath = codingPath
        self.options = options
    }

    func container<Key: CodingKey>(keyedBy type: Key.Type) throws -> KeyedDecodingContainer<Key> {
        guard case let .mapping(mapping) = node else {
            throw options.error("expected a mapping of keys, found \(describe(node))", at: node, path: codingPath)
        }
        if usedKeys == nil { usedKeys = [] }
        return KeyedDecodingContainer(KeyedNodeContainer<Key>(decoder: self, mapping: mapping))
    }

    func unkeyedContainer() throws -> any UnkeyedDecodingContainer {
        if case let .sequence(sequence) = node {
            return UnkeyedNodeContainer(decoder: self, items: Array(sequence))
        }
        // A single scalar where a list is expected reads as a one-element list (`key: id`).
        if case .scalar = node, !isNull(node) {
            return UnkeyedNodeContainer(decoder: self, items: [node])
        }
        throw options.error("expected a list, found \(describe(node))", at: node, path: codingPath)
    }

    func singleValueContainer() throws -> any SingleValueDecodingContainer {
        SingleNodeContainer(decoder: self, node: node, codingPath: codingPath)
    }

    func checkUnusedKeys() throws {
        guard let usedKeys, case let .mapping(mapping) = node else { return }
        for (key, _) in mapping {
            let name = key.string ?? "\(key)"
            guard !usedKeys.contains(name) else { continue }
            throw options.error(NameSuggestion.unknownKey(name, known: usedKeys.sorted()), at: key, path: codingPath + [AnyKey(name)])
        }
    }

    /// Decodes a child value and checks its keys.
    func decodeChild<T: Decodable>(_ type: T.Type, node: Node, path: [any CodingKey]) throws -> T {
        let child = NodeDecoder(node: node, codingPath: path, options: options)
        let value = try T(from: child)
        try child.checkUnusedKeys()
        return value
    }
}

struct AnyKey: CodingKey {
    var stringValue: String
    var intValue: Int?
    init(_ string: String) { stringValue = string }
    init(stringValue: String) { self.stringValue = stringValue }
    init(intValue: Int) { stringValue = String(intValue); self.intValue = intValue }
}

func isNull(_ node: Node) -> Bool {
    guard case let .scalar(s) = node, s.style == .plain else { return false }
    return s.string.isEmpty || s.string == "~" || s.string == "null" || s.string == "Null" || s.string == "NULL"
}

func describe(_ node: Node) -> String {
    switch node {
    case .mapping: "a mapping"
    case .sequence: "a list"
    case .alias: "an alias"
    case let .scalar(s): isNull(node) ? "null" : "'\(s.string)'"
    }
}

struct KeyedNodeContainer<Key: CodingKey>: KeyedDecodingContainerProtocol {
    let decoder: NodeDecoder
    let mapping: Node.Mapping
    var codingPath: [any CodingKey] { decoder.codingPath }

    var allKeys: [Key] {
        mapping.keys.compactMap { $0.string.flatMap(Key.init(stringValue:)) }
    }

    private func lookup(_ key: Key) -> Node? {
        decoder.usedKeys?.insert(key.stringValue)
        return mapping[Node(key.stringValue)]
    }

    func contains(_ key: Key) -> Bool { lookup(key) != nil }

    func decodeNil(forKey key: Key) throws -> Bool {
        guard let node = lookup(key) else { return true }
        return isNull(node)
    }

    func decode<T: Decodable>(_ type: T.Type, forKey key: Key) throws -> T {
        guard let node = lookup(key) else {
            throw decoder.options.error(
                "missing required key '\(key.stringValue)'",
                at: decoder.node, path: codingPath)
        }
        return try decoder.decodeChild(type, node: node, path: codingPath + [key])
    }

    func nestedContainer<NestedKey: CodingKey>(keyedBy type: NestedKey.Type, forKey key: Key) throws
        -> KeyedDecodingContainer<NestedKey>
    {
        guard let node = lookup(key) else {
            throw decoder.options.error("missing required key '\(key.stringValue)'", at: decoder.node, path: codingPath)
        }
        return try NodeDecoder(node: node, codingPath: codingPath + [key], options: decoder.options).container(keyedBy: type)
    }

    func nestedUnkeyedContainer(forKey key: Key) throws -> any UnkeyedDecodingContainer {
        guard let node = lookup(key) else {
            throw decoder.options.error("missing required key '\(key.stringValue)'", at: decoder.node, path: codingPath)
        }
        return try NodeDecoder(node: node, codingPath: codingPath + [key], options: decoder.options).unkeyedContainer()
    }

    func superDecoder() throws -> any Decoder { decoder }
    func superDecoder(forKey key: Key) throws -> any Decoder {
        NodeDecoder(node: lookup(key) ?? Node("~"), codingPath: codingPath + [key], options: decoder.options)
    }
}

struct UnkeyedNodeContainer: UnkeyedDecodingContainer {
    let decoder: NodeDecoder
    let items: [Node]
    var currentIndex = 0
    var codingPath: [any CodingKey] { decoder.codingPath }
    var count: Int? { items.count }
    var isAtEnd: Bool { currentIndex >= items.count }

    init(decoder: NodeDecoder, items: [Node]) {
        self.decoder = decoder
        self.items = items
    }

    private mutating func nextNode() throws -> (Node, [any CodingKey]) {
        guard !isAtEnd else {
            throw decoder.options.error("the list has too few items", at: decoder.node, path: codingPath)
        }
        defer { currentIndex += 1 }
        return (items[currentIndex], codingPath + [AnyKey(intValue: currentIndex)])
    }

    mutating func decodeNil() throws -> Bool {
        guard !isAtEnd, isNull(items[currentIndex]) else { return false }
        currentIndex += 1
        return true
    }

    mutating func decode<T: Decodable>(_ type: T.Type) throws -> T {
        let (node, path) = try nextNode()
        return try decoder.decodeChild(type, node: node, path: path)
    }

    mutating func nestedContainer<NestedKey: CodingKey>(keyedBy type: NestedKey.Type) throws -> KeyedDecodingContainer<NestedKey> {
        let (node, path) = try nextNode()
        return try NodeDecoder(node: node, codingPath: path, options: decoder.options).container(keyedBy: type)
    }

    mutating func nestedUnkeyedContainer() throws -> any UnkeyedDecodingContainer {
        let (node, path) = try nextNode()
        return try NodeDecoder(node: node, codingPath: path, options: decoder.options).unkeyedContainer()
    }

    mutating func superDecoder() throws -> any Decoder { decoder }
}

struct SingleNodeContainer: SingleValueDecodingContainer {
    let decoder: NodeDecoder
    let node: Node
    let codingPath: [any CodingKey]

    func decodeNil() -> Bool { isNull(node) }

    private func scalar(_ expected: String) throws -> String {
        guard case let .scalar(s) = node, !isNull(node) else {
            throw decoder.options.error("expected \(expected), found \(describe(node))", at: node, path: codingPath)
        }
        return try decoder.options.substitute(s.string, node: node, path: codingPath)
    }

    /// Names the value as written: a substituted `${VAR}` may be a secret, so its value is never shown.
    private func fail(_ expected: String, _ text: String) -> ConfigError {
        var shown = text
        if case let .scalar(s) = node, s.string.contains("${") { shown = s.string }
        return decoder.options.error("expected \(expected), found '\(shown)'", at: node, path: codingPath)
    }

    func decode(_ type: Bool.Type) throws -> Bool {
        let text = try scalar("true or false")
        switch text.lowercased() {
        case "true", "yes", "on": return true
        case "false", "no", "off": return false
        default: throw fail("true or false", text)
        }
    }

    func decode(_ type: String.Type) throws -> String {
        if case .scalar = node, isNull(node) {
            throw decoder.options.error("expected a string, found null", at: node, path: codingPath)
        }
        return try scalar("a string")
    }

    func decode(_ type: Double.Type) throws -> Double {
        let text = try scalar("a number")
        guard let v = Double(text) else { throw fail("a number", text) }
        return v
    }

    func decode(_ type: Float.Type) throws -> Float { Float(try decode(Double.self)) }

    private func integer<T: FixedWidthInteger>(_ type: T.Type) throws -> T {
        let text = try scalar("an integer")
        guard let v = T(text.replacingOccurrences(of: "_", with: "")) else { throw fail("an integer", text) }
        return v
    }

    func decode(_ type: Int.Type) throws -> Int { try integer(type) }
    func decode(_ type: Int8.Type) throws -> Int8 { try integer(type) }
    func decode(_ type: Int16.Type) throws -> Int16 { try integer(type) }
    func decode(_ type: Int32.Type) throws -> Int32 { try integer(type) }
    func decode(_ type: Int64.Type) throws -> Int64 { try integer(type) }
    func decode(_ type: UInt.Type) throws -> UInt { try integer(type) }
    func decode(_ type: UInt8.Type) throws -> UInt8 { try integer(type) }
    func decode(_ type: UInt16.Type) throws -> UInt16 { try integer(type) }
    func decode(_ type: UInt32.Type) throws -> UInt32 { try integer(type) }
    func decode(_ type: UInt64.Type) throws -> UInt64 { try integer(type) }

    func decode<T: Decodable>(_ type: T.Type) throws -> T {
        try decoder.decodeChild(type, node: node, path: codingPath)
    }
}

/// A config value that is a string but must parse to something else; throws a located error.
extension Decoder {
    /// Throws a configuration error located at the value being decoded.
    public func configError(_ message: String) -> any Error {
        if let d = self as? NodeDecoder { return d.options.error(message, at: d.node, path: d.codingPath) }
        return DecodingError.dataCorrupted(.init(codingPath: codingPath, debugDescription: message))
    }
}
