/// A single value, for slow paths (keys, tests, error messages). The hot path
/// works on column buffers directly.
public enum Value: Sendable, Hashable, CustomStringConvertible {
    case null
    case bool(Bool)
    case int64(Int64)
    case float64(Double)
    case decimal(Int128, scale: Int)
    case string(String)
    case binary([UInt8])
    case date(Int32)
    case timestamp(Int64)
    case json(String)

    public var description: String {
        switch self {
        case .null: "null"
        case let .bool(b): String(b)
        case let .int64(i): String(i)
        case let .float64(d): String(d)
        case let .decimal(v, scale): DecimalText.format(v, scale: scale)
        case let .string(s): s
        case let .binary(b): b.map { String($0, radix: 16) }.joined()
        case let .date(d): TemporalText.formatDate(days: d)
        case let .timestamp(t): TemporalText.formatTimestamp(micros: t)
        case let .json(j): j
        }
    }
}
