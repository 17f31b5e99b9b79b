import Foundation
import Yams

/// A duration written as `250ms`, `30s`, `5m`, `2h`, `7d` or combined (`1h30m`).
public struct ConfigDuration: Decodable, Sendable, Hashable, CustomStringConvertible {
    public var duration: Duration

    public init(_ duration: Duration) { self.duration = duration }

    public init(from decoder: any Decoder) throws {
        let text = try decoder.singleValueContainer().decode(String.self)
        guard let d = Self.parse(text) else {
            throw decoder.configError("expected a duration like 250ms, 30s, 5m, 2h or 7d (whole milliseconds), found '\(text)'")
        }
        duration = d
    }

    /// Nil unless the text is a duration of whole milliseconds (`1.5ms` is refused, not rounded)
    /// that fits in 2^63 milliseconds.
    public static func parse(_ text: String) -> Duration? {
        let units: [(String, Decimal)] = [("ms", 1), ("s", 1_000), ("m", 60_000), ("h", 3_600_000), ("d", 86_400_000), ("w", 604_800_000)]
        var rest = Substring(text.trimmingCharacters(in: .whitespaces)), total = Decimal(0), any = false
        while !rest.isEmpty {
            let number = rest.prefix { $0.isNumber || $0 == "." }
            guard let value = exactDecimal(number) else { return nil }
            rest = rest.dropFirst(number.count)
            let unitText = rest.prefix { $0.isLetter }
            guard let unit = units.first(where: { $0.0 == unitText.lowercased() }) else { return nil }
            rest = rest.dropFirst(unitText.count)
            total += value * unit.1
            any = true
        }
        guard any, let milliseconds = exactInteger(total) else { return nil }
        return .milliseconds(milliseconds)
    }

    public var seconds: Double {
        let c = duration.components
        return Double(c.seconds) + Double(c.attoseconds) / 1e18
    }

    public var description: String { "\(seconds)s" }
}

/// A size written as `512`, `64KB`, `128MB`, `1GB` (powers of 1024; `KiB`/`MiB`/`GiB` also accepted).
public struct ConfigByteSize: Decodable, Sendable, Hashable {
    public var bytes: Int

    public init(_ bytes: Int) { self.bytes = bytes }

    public init(from decoder: any Decoder) throws {
        let text = try decoder.singleValueContainer().decode(String.self)
        guard let b = Self.parse(text) else {
            throw decoder.configError("expected a size like 512KB, 64MB or 1GB (a whole number of bytes), found '\(text)'")
        }
        bytes = b
    }

    /// Nil unless the text is a whole number of bytes (`1.5KB` is 1536; `0.1KB` is refused, not
    /// rounded) that fits in an `Int`.
    public static func parse(_ text: String) -> Int? {
        let t = text.trimmingCharacters(in: .whitespaces)
        let number = t.prefix { $0.isNumber || $0 == "." }
        guard let value = exactDecimal(number) else { return nil }
        let unit = t.dropFirst(number.count).trimmingCharacters(in: .whitespaces).uppercased()
        let factor: Decimal
        switch unit {
        case "", "B": factor = 1
        case "K", "KB", "KIB": factor = 1024
        case "M", "MB", "MIB": factor = 1024 * 1024
        case "G", "GB", "GIB": factor = 1024 * 1024 * 1024
        default: return nil
        }
        return exactInteger(value * factor).map { Int($0) }
    }
}

/// A number as written in a configuration value (digits, at most one point), exactly.
func exactDecimal(_ text: Substring) -> Decimal? {
    guard !text.isEmpty, text.allSatisfy({ $0.isASCII && ($0.isNumber || $0 == ".") }), text.filter({ $0 == "." }).count <= 1,
        text.contains(where: \.isNumber), text.count <= 40
    else { return nil }
    return Decimal(string: String(text), locale: Locale(identifier: "en_US_POSIX"))
}

/// `value` as an `Int64` when it is a whole number in range (nil otherwise: never rounded).
func exactInteger(_ value: Decimal) -> Int64? {
    var input = value, rounded = Decimal()
    NSDecimalRound(&rounded, &input, 0, .plain)
    guard rounded == value, rounded >= 0, rounded <= Decimal(Int64.max) else { return nil }
    return Int64(rounded.description)
}

/// A mapping decoded in file order (pipeline names keep the order they were written in).
public struct OrderedMapping<Value: Decodable>: Decodable {
    public var entries: [(key: String, value: Value)]

    public init(from decoder: any Decoder) throws {
        guard let carrier = decoder as? any YAMLNodeCarrying else {
            throw decoder.configError("ordered mappings decode from YAML only")
        }
        guard case let .mapping(mapping) = carrier.yamlNode else {
            throw decoder.configError("expected a mapping, found \(describe(carrier.yamlNode))")
        }
        entries = try mapping.map { key, node in
            let name = key.string ?? ""
            let value = try carrier.yamlDecoding.decode(Value.self, from: node, path: decoder.codingPath + [AnyKey(name)])
            return (name, value)
        }
    }
}

/// `source: {file: {...}}`: a component type and its still-undecoded options.
///
/// The registry decodes the options into the component's own configuration type with
/// ``decodeOptions(_:)``, so errors keep their file, line and key path.
public struct ComponentConfig: Decodable, @unchecked Sendable {
    // @unchecked: Yams.Node is an immutable value tree; it is not declared Sendable upstream.
    public var type: String
    public var options: Node
    public var path: [any CodingKey]
    public var decoding: YAMLNodeDecoding
    public var line: Int?

    public init(from decoder: any Decoder) throws {
        guard let carrier = decoder as? any YAMLNodeCarrying else {
            throw decoder.configError("components decode from YAML only")
        }
        let node = carrier.yamlNode
        guard case let .mapping(mapping) = node, mapping.count == 1, let (key, value) = mapping.first,
            let type = key.string
        else {
            throw decoder.configError("expected exactly one component type as a key, e.g. `file: { path: ... }`, found \(describe(node))")
        }
        self.type = type
        options = isNull(value) ? Node.mapping(Node.Mapping([])) : value
        path = decoder.codingPath + [AnyKey(type)]
        decoding = carrier.yamlDecoding
        line = key.mark?.line
    }

    /// Decodes the options into `T`, strictly.
    public func decodeOptions<T: Decodable>(_ type: T.Type) throws -> T {
        try decoding.decode(type, from: options, path: path)
    }

    /// A located configuration error about this component.
    public func error(_ message: String, key: String? = nil) -> ConfigError {
        var p = path
        if let key { p.append(AnyKey(key)) }
        var node: Node? = options
        if let key, case let .mapping(m) = options { node = m[Node(key)] ?? options }
        return decoding.error(message, at: node, path: p)
    }
}

extension OrderedMapping: Sendable where Value: Sendable {}

extension KeyedDecodingContainer {
    /// `columns: { id: int64, ts: timestamp }`: declared column types, in file order, or nil when
    /// the key is absent. An unknown type is a configuration error naming the column.
    public func decodeDeclaredColumns(forKey key: Key) throws -> [Field]? {
        guard let columns = try decodeIfPresent(OrderedMapping<String>.self, forKey: key) else { return nil }
        let nested = try superDecoder(forKey: key)
        return try columns.entries.map { name, type in
            guard let t = DataType(parsing: type) else {
                throw nested.configError(
                    "column '\(name)': unknown type '\(type)'; use bool, int64, float64, decimal(p,s), string, binary, date, timestamp or json")
            }
            return Field(name, t)
        }
    }
}
