/// How one record schema differs from another: what drift looks like.
public struct SchemaDiff: Sendable, Hashable, CustomStringConvertible {
    public struct TypeChange: Sendable, Hashable {
        public var name: String
        public var from: DataType
        public var to: DataType
    }

    /// Columns in `new` that `old` lacks.
    public var added: [Field] = []
    /// Columns of `old` that `new` lacks.
    public var removed: [Field] = []
    public var typeChanged: [TypeChange] = []
    /// Columns whose nullability changed (`to` is the new nullability).
    public var nullabilityChanged: [(name: String, nullable: Bool)] = []

    public init() {}

    /// The difference from `old` to `new`, by column name.
    public init(from old: Schema, to new: Schema) {
        for f in new.fields {
            guard let o = old.fields.first(where: { $0.name == f.name }) else { added.append(f); continue }
            if o.type != f.type { typeChanged.append(TypeChange(name: f.name, from: o.type, to: f.type)) }
            if o.nullable != f.nullable { nullabilityChanged.append((f.name, f.nullable)) }
        }
        removed = old.fields.filter { o in !new.fields.contains { $0.name == o.name } }
    }

    public var isEmpty: Bool { added.isEmpty && removed.isEmpty && typeChanged.isEmpty && nullabilityChanged.isEmpty }

    /// The kinds present: `added_column`, `removed_column`, `type_change`, `nullability_change`.
    public var kinds: [String] {
        var k: [String] = []
        if !added.isEmpty { k.append("added_column") }
        if !removed.isEmpty { k.append("removed_column") }
        if !typeChanged.isEmpty { k.append("type_change") }
        if !nullabilityChanged.isEmpty { k.append("nullability_change") }
        return k
    }

    /// One change per entry: `+ name: type`, `- name: type`, `~ name: from -> to`, `~ name: nullable`.
    public var lines: [String] {
        var parts: [String] = []
        parts += added.map { "+ \($0.name): \($0.type)" }
        parts += removed.map { "- \($0.name): \($0.type)" }
        parts += typeChanged.map { "~ \($0.name): \($0.from) -> \($0.to)" }
        parts += nullabilityChanged.map { "~ \($0.name): \($0.nullable ? "nullable" : "not null")" }
        return parts
    }

    public var description: String { lines.isEmpty ? "(no change)" : lines.joined(separator: ", ") }

    /// The diff for a log line or a message, bounded whatever the change: every change when
    /// there are at most `limit`, else the count of each kind and the first `limit` changes,
    /// e.g. `9900 changes (+9900 added); first 10: + a: string, …, + j: int64; …`.
    public func summary(limit: Int = 10) -> String {
        let all = lines
        guard all.count > limit else { return description }
        var counts: [String] = []
        if !added.isEmpty { counts.append("+\(added.count) added") }
        if !removed.isEmpty { counts.append("-\(removed.count) removed") }
        if !typeChanged.isEmpty { counts.append("~\(typeChanged.count) type changes") }
        if !nullabilityChanged.isEmpty { counts.append("~\(nullabilityChanged.count) nullability changes") }
        let first = all.prefix(limit).map { $0.count > 80 ? String($0.prefix(80)) + "…" : $0 }
        return "\(all.count) changes (\(counts.joined(separator: ", "))); first \(limit): \(first.joined(separator: ", ")); …"
    }

    public static func == (a: SchemaDiff, b: SchemaDiff) -> Bool { a.description == b.description }
    public func hash(into h: inout Hasher) { h.combine(description) }

    /// True when every value of type `from` is exactly representable in `to` (type widening):
    /// int64 → float64 or a decimal with room for 19 integer digits, a decimal to one with the same
    /// scale and more precision, date → timestamp. (Anything → string only when a pipeline allows it.)
    public static func canWiden(_ from: DataType, to: DataType) -> Bool {
        switch (from, to) {
        case (.int64, .float64), (.date, .timestamp): return true
        case let (.int64, .decimal(p, s)): return p - s >= 19
        case let (.decimal(p1, s1), .decimal(p2, s2)): return s2 >= s1 && p2 - s2 >= p1 - s1
        default: return from == to
        }
    }
}
