import SluiceCore

/// The SQL and column mapping of one extract, built from the catalog when a reader opens.
///
/// Rows are read by keyset pagination, `WHERE (k1, k2, …) > ($1::t1, $2::t2, …) ORDER BY k1, k2, …
/// LIMIT n`, in binary result format. The key is the primary key (full), the cursor columns
/// followed by the primary key as tie-breaker (incremental), or the change id (changelog). Key
/// values are also selected as `::text` and kept in the checkpoint in that exact form, and bound
/// back with a cast to the column's own type, so they never lose precision.
struct PostgresExtractPlan: Sendable {
    var mappings: [ColumnMapping]
    var key: [PostgresColumn]
    var relation: String
    var filter: String?
    /// Backfill: rows whose first key column (the first cursor column) is in [from, to).
    var window: (from: String, to: String)?
    /// Columns (key first) that identify a row version, for the implicit dedupe of `lookback`.
    var schema: Schema { Schema(mappings.map(\.field)) }

    static let catalogSQL = """
        SELECT a.attname, a.atttypid::int8, a.atttypmod, format_type(a.atttypid, a.atttypmod), t.typtype::text,
               t.typcategory::text, a.attnotnull,
               COALESCE((SELECT array_position(string_to_array(i.indkey::text, ' ')::int2[], a.attnum)
                         FROM pg_index i WHERE i.indrelid = c.oid AND i.indisprimary), 0)
        FROM pg_attribute a
        JOIN pg_class c ON c.oid = a.attrelid
        JOIN pg_namespace n ON n.oid = c.relnamespace
        JOIN pg_type t ON t.oid = a.atttypid
        WHERE n.nspname = $1 AND c.relname = $2 AND a.attnum > 0 AND NOT a.attisdropped
        ORDER BY a.attnum
        """

    /// Columns of a table, from the catalog (nullability and primary key included).
    static func describe(table: QualifiedName, session: PostgresSession) throws -> [PostgresColumn] {
        let r = try session.query(catalogSQL, [table.schemaOrDefault, table.name])
        return (0..<r.rows).map { i in
            PostgresColumn(
                name: r.string(i, 0)!, typeOID: UInt32(r.string(i, 1)!)!, typeModifier: Int32(r.string(i, 2)!)!,
                typeName: r.string(i, 3)!, typeKind: r.string(i, 4)!, category: r.string(i, 5)!,
                notNull: r.string(i, 6) == "t", primaryKeyPosition: Int(r.string(i, 7) ?? "0") ?? 0)
        }
    }

    /// Columns of a query's result (all nullable; no primary key).
    static func describe(query: String, session: PostgresSession) throws -> [PostgresColumn] {
        let r = try session.query("SELECT * FROM (\(query)) AS q LIMIT 0")
        var columns: [PostgresColumn] = []
        for i in 0..<r.columns {
            let t = try session.query(
                "SELECT format_type($1::oid, $2::int4), typtype::text, typcategory::text FROM pg_type WHERE oid = $1::oid",
                [String(r.typeOID(i)), String(r.typeModifier(i))])
            columns.append(
                PostgresColumn(
                    name: r.name(i), typeOID: r.typeOID(i), typeModifier: r.typeModifier(i),
                    typeName: t.string(0, 0) ?? "unknown", typeKind: t.string(0, 1) ?? "b",
                    category: t.string(0, 2) ?? "U", notNull: false, primaryKeyPosition: 0))
        }
        return columns
    }

    init(options o: PostgresSourceOptions, session: PostgresSession) throws {
        let columns: [PostgresColumn]
        if let table = o.table {
            columns = try Self.describe(table: table, session: session)
            guard !columns.isEmpty else {
                throw SluiceError(
                    .configuration, "table '\(table)' does not exist (or has no columns) in \(o.url.redacted)",
                    location: "source.postgres.table", retryable: false)
            }
            relation = SQLText.qualified(table)
        } else {
            columns = try Self.describe(query: o.query!, session: session)
            relation = "(\(o.query!)) AS q"
        }
        var mappings: [ColumnMapping] = []
        for c in columns {
            do {
                mappings.append(try ColumnMapping.map(c, unsupported: o.unsupportedTypes))
            } catch var e as SluiceError {
                e.location = "source.postgres: \(o.partition).\(c.name)"
                throw e
            }
        }
        self.mappings = mappings
        filter = o.filter
        let byName = Dictionary(columns.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
        func column(_ name: String, _ what: String) throws -> PostgresColumn {
            guard let c = byName[name] else {
                throw SluiceError(
                    .configuration, "\(what) column '\(name)' is not a column of \(o.partition) (columns: \(columns.map(\.name).joined(separator: ", ")))",
                    location: "source.postgres", retryable: false)
            }
            return c
        }
        let primaryKey = columns.filter { $0.primaryKeyPosition > 0 }.sorted { $0.primaryKeyPosition < $1.primaryKeyPosition }
        let identity = o.key.isEmpty ? primaryKey : try o.key.map { try column($0, "key") }
        switch o.mode {
        case .full where o.backfill == nil:
            guard !identity.isEmpty else {
                throw SluiceError(
                    .configuration, "\(o.partition) has no primary key to read it in order; name `key: [column, …]` (unique, not null)",
                    location: "source.postgres.key", retryable: false)
            }
            key = identity
        case .incremental, .full:
            var k = try o.cursor.map { try column($0, "cursor") }
            for c in k where !c.notNull && o.table != nil {
                throw SluiceError(
                    .configuration,
                    "cursor column '\(c.name)' may be NULL: rows with NULL there would never be extracted. "
                        + "Declare it NOT NULL, or use other cursor columns", location: "source.postgres.cursor", retryable: false)
            }
            guard !identity.isEmpty else {
                throw SluiceError(
                    .configuration, "\(o.partition) has no primary key to break ties between rows sharing a cursor value; name `key: [column, …]`",
                    location: "source.postgres.key", retryable: false)
            }
            k += identity.filter { c in !k.contains(where: { $0.name == c.name }) }
            key = k
        case .changelog:
            if let id = o.changeID {
                key = [try column(id, "change_id")]
            } else {
                guard primaryKey.count == 1 else {
                    throw SluiceError(
                        .configuration, "name the change table's id column: `change_id: column` (it has no single-column primary key)",
                        location: "source.postgres.change_id", retryable: false)
                }
                key = primaryKey
            }
            if let p = o.processedColumn {
                let c = try column(p, "processed_column")
                guard c.typeOID == 16 else {
                    throw SluiceError(
                        .configuration, "processed_column '\(p)' must be boolean (it is \(c.typeName))", location: "source.postgres.processed_column",
                        retryable: false)
                }
            }
        }
        if o.lookback != nil, o.mode == .incremental {
            guard [1082, 1114, 1184].contains(key[0].typeOID) else {
                throw SluiceError(
                    .configuration, "`lookback` needs a date or timestamp as the first cursor column ('\(key[0].name)' is \(key[0].typeName))",
                    location: "source.postgres.lookback", retryable: false)
            }
        }
        window = o.backfill
        if let p = o.processedColumn {
            let condition = "\(SQLText.identifier(p)) IS NOT TRUE"
            filter = filter.map { "(\($0)) AND \(condition)" } ?? condition
        }
    }

    /// changelog with `tx_column`: read only changes of transactions below `xmin` (all of
    /// which have ended, so none of their rows can still appear).
    mutating func settledBelow(xmin: String, column: String) {
        let condition = "\(SQLText.identifier(column)) < \(Int64(xmin) ?? 0)::int8"
        filter = filter.map { "(\($0)) AND \(condition)" } ?? condition
    }

    var selectList: String {
        (mappings.map(\.expression) + key.enumerated().map { "\(SQLText.identifier($0.element.name))::text AS sluice_key\($0.offset)" })
            .joined(separator: ", ")
    }

    var order: String { key.map { SQLText.identifier($0.name) }.joined(separator: ", ") }

    /// WHERE conditions (with their bound parameters) for rows after `after` (or, with a
    /// lookback, from `after[0] - lookback` on), inside `slice` and the backfill `window`.
    func conditions(after: [String]?, lookback: String? = nil, slice: KeySlice? = nil) -> (String, [String?]) {
        var parameters: [String?] = []
        func bind(_ value: String?, _ type: String) -> String {
            parameters.append(value)
            return "$\(parameters.count)::\(type)"
        }
        let k0 = key[0]
        let first = SQLText.identifier(k0.name)
        var all: [String] = []
        if let after {
            if let lookback {
                all.append("\(first) >= (\(bind(after[0], k0.typeName)) - \(bind(lookback, "interval")))")
            } else {
                let keys = key.map { SQLText.identifier($0.name) }.joined(separator: ", ")
                let values = key.enumerated().map { bind(after[$0.offset], $0.element.typeName) }.joined(separator: ", ")
                all.append("(\(keys)) > (\(values))")
            }
        }
        if let lower = slice?.lower { all.append("\(first) > \(bind(lower, k0.typeName))") }
        if let upper = slice?.upper { all.append("\(first) <= \(bind(upper, k0.typeName))") }
        if let window {
            all.append("\(first) >= \(bind(window.from, k0.typeName)) AND \(first) < \(bind(window.to, k0.typeName))")
        }
        if let filter { all.append("(\(filter))") }
        return (all.isEmpty ? "" : " WHERE " + all.joined(separator: " AND "), parameters)
    }

    /// One page: up to `limit` rows in key order.
    func pageQuery(after: [String]?, lookback: String? = nil, slice: KeySlice? = nil, limit: Int) -> (String, [String?]) {
        var (whereSQL, parameters) = conditions(after: after, lookback: lookback, slice: slice)
        parameters.append(String(limit))
        return ("SELECT \(selectList) FROM \(relation)\(whereSQL) ORDER BY \(order) LIMIT $\(parameters.count)::int8", parameters)
    }

    /// How many rows are left to read (for progress).
    func countQuery(after: [String]?, slice: KeySlice?) -> (String, [String?]) {
        let (whereSQL, parameters) = conditions(after: after, slice: slice)
        return ("SELECT count(*) FROM \(relation)\(whereSQL)", parameters)
    }

    /// Upper bounds of the first key column that cut the rows into `n` slices of about equal size.
    func boundariesQuery(slices n: Int) -> (String, [String?]) {
        let (whereSQL, parameters) = conditions(after: nil)
        let first = SQLText.identifier(key[0].name)
        return (
            "SELECT max(k)::text FROM (SELECT \(first) AS k, ntile(\(n)) OVER (ORDER BY \(first)) AS b FROM \(relation)\(whereSQL)) x GROUP BY b ORDER BY b",
            parameters
        )
    }
}

/// A part of the key space read by one of the readers of a parallel pull: rows whose first key
/// column is above `lower` (exclusive) and at most `upper` (inclusive); nil is unbounded.
struct KeySlice: Sendable, Hashable {
    var lower: String?
    var upper: String?
}
