/// The logical types a Sluice column can hold (DESIGN.md §3).
///
/// Values are stored in typed column buffers (see ``Column``); this enum names
/// the logical type and its parameters.
public enum DataType: Sendable, Hashable, CustomStringConvertible {
    case bool
    case int64
    case float64
    /// A fixed-point decimal with `precision` significant digits, `scale` of them after the point.
    /// Stored as an unscaled `Int128`.
    case decimal(precision: Int, scale: Int)
    case string
    case binary
    /// Days since 1970-01-01.
    case date
    /// Microseconds since 1970-01-01T00:00:00Z.
    case timestamp
    /// Nested values kept as JSON text.
    case json

    public var description: String {
        switch self {
        case .bool: "bool"
        case .int64: "int64"
        case .float64: "float64"
        case let .decimal(p, s): "decimal(\(p),\(s))"
        case .string: "string"
        case .binary: "binary"
        case .date: "date"
        case .timestamp: "timestamp"
        case .json: "json"
        }
    }

    /// Parses a type name as written in configuration: `int64`, `decimal(12,2)`, `timestamp`…
    /// Common aliases (`int`, `integer`, `double`, `text`, `boolean`) are accepted.
    public init?(parsing text: String) {
        let name = text.trimmingCharacters(in: .whitespaces).lowercased()
        switch name {
        case "bool", "boolean": self = .bool
        case "int", "int64", "integer", "bigint", "long": self = .int64
        case "float", "float64", "double", "real": self = .float64
        case "string", "text", "str", "varchar": self = .string
        case "binary", "bytes", "blob": self = .binary
        case "date": self = .date
        case "timestamp", "datetime", "timestamptz": self = .timestamp
        case "json": self = .json
        default:
            guard name.hasPrefix("decimal(") || name.hasPrefix("numeric("), name.hasSuffix(")") else { return nil }
            let inner = name.drop(while: { $0 != "(" }).dropFirst().dropLast()
            let parts = inner.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
            guard parts.count == 2, let p = Int(parts[0]), let s = Int(parts[1]),
                (1...38).contains(p), (0...p).contains(s)
            else { return nil }
            self = .decimal(precision: p, scale: s)
        }
    }

    /// True for types whose values are variable-length byte strings.
    public var isVariableLength: Bool {
        switch self {
        case .string, .binary, .json: true
        default: false
        }
    }
}

import Foundation
