import SluiceCore

/// Options of `sink: {postgres: {...}}`; each one is declared, with its default, in ``PostgresSink/spec``.
public struct PostgresSinkOptions: Decodable, Sendable {
    public enum Mode: String, Sendable { case append, upsert, replace, apply }

    public var url: PostgresURL
    public var table: QualifiedName
    /// apply: `table`'s name holds `{table}`/`{schema}`, filled from each change's source table.
    public var isTableTemplate = false
    public var mode: Mode = .append
    public var key: [String] = []
    /// upsert: query-based CDC's deletes. A row whose value in this column is not null is deleted
    /// from the target (by key) instead of being merged.
    public var softDelete: String?
    public var create = true
    public var commitRows = 100_000
    public var commitInterval: Duration = .seconds(2)

    enum CodingKeys: String, CodingKey {
        case url, table, mode, key, create
        case softDelete = "soft_delete"
        case commitRows = "commit_rows"
        case commitInterval = "commit_interval"
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        url = try c.decodePostgresURL(forKey: .url)
        if let m = try c.decodeIfPresent(String.self, forKey: .mode) {
            guard let parsed = Mode(rawValue: m) else {
                throw try c.superDecoder(forKey: .mode).configError("unknown mode '\(m)'; use append, upsert, replace or apply")
            }
            mode = parsed
        }
        let t = try c.decode(String.self, forKey: .table)
        let probe = t.replacingOccurrences(of: "{table}", with: "t").replacingOccurrences(of: "{schema}", with: "s")
        guard let name = QualifiedName(parsing: probe) else {
            throw try c.superDecoder(forKey: .table).configError("a table name (table or schema.table; quote unusual names: \"My Table\") is expected")
        }
        table = name
        if probe != t {
            let rawName = name.schema == nil ? t : String(t[t.index(after: t.firstIndex(of: ".")!)...])
            guard mode == .apply,
                QualifiedName(parsing: rawName.replacingOccurrences(of: "{table}", with: "t").replacingOccurrences(of: "{schema}", with: "s"))?.schema == nil,
                name.schema.map({ !$0.contains("{") }) ?? true, t.firstIndex(of: ".").map({ !t[..<$0].contains("{") }) ?? true
            else {
                throw try c.superDecoder(forKey: .table).configError(
                    "{table} and {schema} stand for the source table only with mode: apply, and only in the table's name (e.g. analytics.{table})")
            }
            table = QualifiedName(schema: name.schema, name: rawName.lowercased())
            isTableTemplate = true
        }
        key = try c.decodeIfPresent([String].self, forKey: .key) ?? []
        if mode == .upsert && key.isEmpty {
            throw try c.superDecoder(forKey: .mode).configError("mode: upsert needs `key: [column, …]`: the columns rows are merged by")
        }
        softDelete = try c.decodeIfPresent(String.self, forKey: .softDelete)
        if softDelete != nil && mode != .upsert {
            throw try c.superDecoder(forKey: .softDelete).configError("`soft_delete` is for mode: upsert (rows are found by `key`)")
        }
        create = try c.decodeIfPresent(Bool.self, forKey: .create) ?? true
        commitRows = try c.decodeIfPresent(Int.self, forKey: .commitRows, in: 1...100_000_000) ?? commitRows
        commitInterval = try c.decodeIfPresent(ConfigDuration.self, forKey: .commitInterval)?.duration ?? commitInterval
    }

    /// The persistent table `replace` loads into before the swap.
    var stagingTable: QualifiedName {
        QualifiedName(schema: table.schema, name: String((table.name + "__sluice_staging").prefix(63)))
    }
}
