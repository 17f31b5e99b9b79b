import Foundation

/// Renders rows as JSON text for dead letters and messages (slow path). Binary values are
/// base64 strings, temporal and decimal values their text, so that the NDJSON decoder reads a
/// row back into the same values given its schema (``DeadLetter/schema``).
public enum RowRendering {
    public static func json(_ batch: RecordBatch, rows: Range<Int>) -> String {
        var out = ""
        for row in rows {
            if !out.isEmpty { out += "\n" }
            out += "{"
            for (i, field) in batch.schema.fields.enumerated() {
                if i > 0 { out += "," }
                out += quote(field.name) + ":"
                switch batch.columns[i].value(at: row) {
                case .null: out += "null"
                case let .bool(b): out += String(b)
                case let .int64(v): out += String(v)
                case let .float64(d): out += d.isFinite ? String(d) : quote(String(d))
                case let .json(j): out += j
                case let .binary(b): out += quote(Data(b).base64EncodedString())
                case let v: out += quote(v.description)
                }
            }
            out += "}"
        }
        return out
    }

    /// `s` as a JSON string literal.
    public static func quote(_ s: String) -> String {
        var out = "\""
        for scalar in s.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where scalar.value < 0x20: out += String(format: "\\u%04x", scalar.value)
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out + "\""
    }
}

import Foundation
