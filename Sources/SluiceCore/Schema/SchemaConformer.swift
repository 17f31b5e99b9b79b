import Foundation

/// Reshapes a batch to a target schema: columns in the target's order, missing ones null,
/// values cast where the cast is exact (``SchemaDiff/canWiden(_:to:)``, float64 → int64 for
/// integral values, anything → string when allowed). Rows that cannot be made to fit are
/// reported, not silently changed.
public struct SchemaConformer: Sendable {
    public var target: Schema
    /// Render values of other types as text into string columns.
    public var widenToString: Bool
    /// Set offending values to null instead of failing the row (`discard_value`).
    public var nullOffendingValues: Bool

    public init(target: Schema, widenToString: Bool = false, nullOffendingValues: Bool = false) {
        self.target = target
        self.widenToString = widenToString
        self.nullOffendingValues = nullOffendingValues
    }

    /// The reshaped batch (all rows, failing ones included) and, per failing row, why.
    public func conform(_ batch: RecordBatch) -> (batch: RecordBatch, failures: [Int: String]) {
        let (out, failures, _) = conformCounting(batch)
        return (out, failures)
    }

    /// As ``conform(_:)``, also counting the values dropped under ``nullOffendingValues``.
    public func conformCounting(_ batch: RecordBatch) -> (batch: RecordBatch, failures: [Int: String], droppedValues: Int) {
        if batch.schema == target { return (batch, [:], 0) }
        var failures: [Int: String] = [:]
        var dropped = 0
        // Columns the target does not have: a row with a value there does not fit.
        for (c, field) in batch.schema.fields.enumerated() where target.index(of: field.name) == nil {
            let column = batch.columns[c]
            guard column.nullCount < column.count else { continue }
            if nullOffendingValues { dropped += column.count - column.nullCount; continue }
            for row in 0..<batch.count where !column.isNull(row) && failures[row] == nil {
                failures[row] = "field '\(field.name)' is not in the schema"
            }
        }
        var columns: [Column] = []
        columns.reserveCapacity(target.count)
        for field in target.fields {
            guard let source = batch.schema.index(of: field.name) else {
                var b = ColumnBuilder(type: field.type, capacity: batch.count)
                b.appendNulls(batch.count)
                if !field.nullable {
                    for row in 0..<batch.count where failures[row] == nil { failures[row] = "required field '\(field.name)' is missing" }
                }
                columns.append(b.finish())
                continue
            }
            let column = batch.columns[source]
            if column.type == field.type {
                if !field.nullable, column.nullCount > 0 {
                    for row in 0..<batch.count where column.isNull(row) && failures[row] == nil {
                        failures[row] = "field '\(field.name)' is null but required"
                    }
                }
                columns.append(column)
                continue
            }
            var b = ColumnBuilder(type: field.type, capacity: batch.count)
            for row in 0..<batch.count {
                let value = column.value(at: row)
                if let cast = cast(value, to: field.type), b.append(value: cast) {
                    if cast == .null, !field.nullable, failures[row] == nil { failures[row] = "field '\(field.name)' is null but required" }
                    continue
                }
                b.appendNull()
                if nullOffendingValues && field.nullable {
                    dropped += 1
                } else if failures[row] == nil {
                    failures[row] = "field '\(field.name)': \(value) does not fit \(field.type) (was \(column.type))"
                }
            }
            columns.append(b.finish())
        }
        return (RecordBatch(schema: target, columns: columns), failures, dropped)
    }

    /// `value` as a value of `type`, when exact.
    func cast(_ value: Value, to type: DataType) -> Value? {
        switch (value, type) {
        case (.null, _): return .null
        case let (.int64(i), .float64):
            // Exact only: an integer beyond 2^53 that a double cannot hold does not fit.
            return Double(exactly: i).map { .float64($0) }
        case let (.float64(d), .int64):
            guard d == d.rounded(), abs(d) < 9.2e18 else { return nil }
            return .int64(Int64(d))
        case let (.int64(i), .decimal(p, s)):
            let (scaled, overflow) = Int128(i).multipliedReportingOverflow(by: Self.power10(s))
            return !overflow && scaled.magnitude < Self.power10(p).magnitude ? .decimal(scaled, scale: s) : nil
        case let (.decimal(v, s1), .decimal(p, s2)):
            guard s2 >= s1 else { return nil }
            let (scaled, overflow) = v.multipliedReportingOverflow(by: Self.power10(s2 - s1))
            return !overflow && scaled.magnitude < Self.power10(p).magnitude ? .decimal(scaled, scale: s2) : nil
        case let (.date(d), .timestamp): return .timestamp(Int64(d) * 86_400_000_000)
        case let (.json(j), .string): return .string(j)
        case (_, .string) where widenToString: return .string(value.description)
        case (_, .json) where widenToString: return .json(value.jsonText)
        default:
            return value.matches(type) ? value : nil
        }
    }

    static func power10(_ n: Int) -> Int128 {
        var r: Int128 = 1
        for _ in 0..<max(0, min(n, 38)) { r *= 10 }
        return r
    }
}

extension Value {
    /// True when the value is of `type` as it stands.
    func matches(_ type: DataType) -> Bool {
        switch (self, type) {
        case (.null, _), (.bool, .bool), (.int64, .int64), (.float64, .float64), (.string, .string), (.binary, .binary),
            (.date, .date), (.timestamp, .timestamp), (.json, .json):
            return true
        case let (.decimal(_, s), .decimal(_, scale)): return s == scale
        default: return false
        }
    }

    /// The value as JSON text (for dead letters and json columns).
    var jsonText: String {
        switch self {
        case .null: return "null"
        case let .bool(b): return String(b)
        case let .int64(i): return String(i)
        case let .float64(d): return d.isFinite ? String(d) : "\"\(d)\""
        case .decimal: return description
        case let .json(j): return j
        default:
            let data = (try? JSONSerialization.data(withJSONObject: [description], options: [.withoutEscapingSlashes])) ?? Data("[\"\"]".utf8)
            return String(decoding: data.dropFirst().dropLast(), as: UTF8.self)
        }
    }
}
