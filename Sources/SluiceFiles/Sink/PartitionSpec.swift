import SluiceCore

/// Hive-style partitioning of output files: `partition_by: "day(created_at)"` puts a record in
/// `created_at_day=2026-11-25/`; `hour(ts)` in `ts_hour=2026-11-25T10/`; a plain column `country`
/// in `country=DE/`.
///
/// NULL and the empty string both go to `key=__HIVE_DEFAULT_PARTITION__/`, Hive's convention,
/// which DuckDB, polars, pyarrow, Spark and Trino read back as NULL of the column's type. An
/// empty string therefore reads back as NULL through hive partitioning (as it does in Hive);
/// the file itself still holds the empty string. Earlier versions wrote `__null__` and
/// `__empty__`; nothing in Sluice reads partition values from directory names, so such lakes
/// stay readable by Sluice, and renaming those directories makes them readable by the engines.
public struct PartitionSpec: Sendable, Hashable, CustomStringConvertible {
    public enum Transform: String, Sendable { case identity, day, hour, month, year }

    public var column: String
    public var transform: Transform

    public init(column: String, transform: Transform) {
        self.column = column
        self.transform = transform
    }

    /// Parses `day(col)`, `hour(col)`, `month(col)`, `year(col)` or `col`.
    public init?(parsing text: String) {
        let t = text.trimmingCharacters(in: .whitespaces)
        if let open = t.firstIndex(of: "("), t.hasSuffix(")") {
            guard let transform = Transform(rawValue: String(t[..<open]).lowercased()), transform != .identity else { return nil }
            let inner = t[t.index(after: open)..<t.index(before: t.endIndex)].trimmingCharacters(in: .whitespaces)
            guard !inner.isEmpty else { return nil }
            self.init(column: inner, transform: transform)
        } else {
            guard !t.isEmpty, !t.contains(where: { "()/ ".contains($0) }) else { return nil }
            self.init(column: t, transform: .identity)
        }
    }

    /// The directory key: `created_at_day`, or the column itself.
    public var key: String { transform == .identity ? column : "\(column)_\(transform.rawValue)" }

    public var description: String { transform == .identity ? column : "\(transform.rawValue)(\(column))" }

    /// The directory value of NULL and of the empty string, as Hive writes it.
    public static let defaultPartition = "__HIVE_DEFAULT_PARTITION__"

    /// The partition directory (`key=value`) of one row; ``defaultPartition`` for NULL.
    public func directory(for column: Column, row: Int) -> String {
        "\(key)=\(value(for: column, row: row))"
    }

    func value(for column: Column, row: Int) -> String {
        if column.isNull(row) { return Self.defaultPartition }
        switch (transform, column.value(at: row)) {
        case let (.identity, v): return Self.sanitize(v.description)
        case let (_, .timestamp(micros)): return Self.truncate(micros: micros, to: transform)
        case let (_, .date(days)): return Self.truncate(micros: Int64(days) * 86_400_000_000, to: transform)
        case let (_, v): return Self.sanitize(v.description)
        }
    }

    static func truncate(micros: Int64, to transform: Transform) -> String {
        let text = TemporalText.formatTimestamp(micros: micros)  // YYYY-MM-DDTHH:MM:SS…
        switch transform {
        case .year: return String(text.prefix(4))
        case .month: return String(text.prefix(7))
        case .day: return String(text.prefix(10))
        case .hour: return String(text.prefix(13))
        case .identity: return text
        }
    }

    /// Makes a value safe as one path component: no `/`, no `..`, no control characters, no
    /// leading dot; `%` and the unsafe characters are percent-encoded (as Hive does). The empty
    /// string, which no engine reads back alike (Spark refuses `key=`), becomes ``defaultPartition``.
    public static func sanitize(_ value: String) -> String {
        if value.isEmpty { return defaultPartition }
        var out = ""
        for byte in value.utf8 {
            let c = Character(Unicode.Scalar(byte))
            let safe =
                (byte >= 0x30 && byte <= 0x39) || (byte >= 0x41 && byte <= 0x5A) || (byte >= 0x61 && byte <= 0x7A)
                || "-_.:+@,~".contains(c)
            if safe && !(byte == UInt8(ascii: ".") && out.isEmpty) {
                out.append(c)
            } else {
                out += "%" + String(byte, radix: 16, uppercase: true).leftPadded(to: 2)
            }
        }
        if out == ".." || out == "." { return out.replacingOccurrences(of: ".", with: "%2E") }
        return String(out.prefix(200))
    }
}

extension String {
    func leftPadded(to n: Int) -> String { count >= n ? self : String(repeating: "0", count: n - count) + self }
}
