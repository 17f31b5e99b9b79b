import SluiceCore

/// Options of `source: {postgres: {...}}`; each one is declared, with its default, in ``PostgresSource/spec``.
public struct PostgresSourceOptions: Decodable, Sendable {
    public enum Mode: String, Sendable { case full, incremental, changelog }
    public enum Unsupported: String, Sendable { case error, string }

    public var url: PostgresURL
    public var table: QualifiedName?
    public var query: String?
    /// Columns that identify a row and order the read (default: the table's primary key).
    public var key: [String] = []
    public var mode: Mode = .full
    public var cursor: [String] = []
    public var lookback: Duration?
    /// changelog: the change-id column (default: the primary key) and the optional boolean
    /// column set to true once a row is committed downstream.
    public var changeID: String?
    public var processedColumn: String?
    /// changelog with `processed_column`: the column holding the writing transaction's id
    /// (`txid_current()`). Only changes of transactions older than every running one are read,
    /// so a transaction that commits after a later-numbered one is never skipped.
    public var txColumn: String?
    /// An extra SQL condition (`WHERE`), e.g. `tenant_id = 7`.
    public var filter: String?
    public var batchRows = 50_000
    public var unsupportedTypes: Unsupported = .error
    /// When to pull again (nil: once).
    public var schedule: ExtractSchedule?
    /// Readers pulling key ranges concurrently (full extracts and backfills).
    public var parallel = 1
    /// Set by `sluice backfill`: re-extract the rows whose first cursor column is in [from, to).
    public var backfill: (from: String, to: String)?

    enum CodingKeys: String, CodingKey {
        case url, table, query, key, mode, cursor, lookback, filter
        case changeID = "change_id"
        case processedColumn = "processed_column"
        case txColumn = "tx_column"
        case batchRows = "batch_rows"
        case unsupportedTypes = "unsupported_types"
        case schedule, poll, parallel
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        url = try c.decodePostgresURL(forKey: .url)
        if let t = try c.decodeIfPresent(String.self, forKey: .table) {
            guard let name = QualifiedName(parsing: t) else {
                throw try c.superDecoder(forKey: .table).configError("a table name (table or schema.table; quote unusual names: \"My Table\") is expected")
            }
            table = name
        }
        query = try c.decodeIfPresent(String.self, forKey: .query)
        if (table == nil) == (query == nil) {
            throw decoder.configError("name either `table` or `query` (not both)")
        }
        key = try c.decodeIfPresent([String].self, forKey: .key) ?? []
        if query != nil && key.isEmpty {
            throw try c.superDecoder(forKey: .query).configError(
                "a query needs `key: [column, …]`: columns of its result that identify a row, so reading can resume after a crash")
        }
        if let m = try c.decodeIfPresent(String.self, forKey: .mode) {
            guard let parsed = Mode(rawValue: m) else {
                throw try c.superDecoder(forKey: .mode).configError("unknown mode '\(m)'; use full, incremental or changelog")
            }
            mode = parsed
        }
        cursor = try c.decodeIfPresent([String].self, forKey: .cursor) ?? []
        switch mode {
        case .incremental where cursor.isEmpty:
            throw try c.superDecoder(forKey: .mode).configError("mode: incremental needs `cursor: [column, …]` (columns that only grow, e.g. [updated_at])")
        case .full, .changelog:
            if !cursor.isEmpty { throw try c.superDecoder(forKey: .cursor).configError("`cursor` is for mode: incremental") }
        default: break
        }
        if c.contains(.lookback) {
            guard mode == .incremental else {
                throw try c.superDecoder(forKey: .lookback).configError("`lookback` is for mode: incremental")
            }
            lookback = try c.decode(ConfigDuration.self, forKey: .lookback).duration
            if key.isEmpty {
                throw try c.superDecoder(forKey: .lookback).configError(
                    "`lookback` re-reads recent rows and drops the repeats by row identity: name it with `key: [id]` (the primary key)")
            }
        }
        changeID = try c.decodeIfPresent(String.self, forKey: .changeID)
        processedColumn = try c.decodeIfPresent(String.self, forKey: .processedColumn)
        if mode != .changelog, changeID != nil || processedColumn != nil {
            throw try c.superDecoder(forKey: changeID != nil ? .changeID : .processedColumn).configError(
                "`change_id` and `processed_column` are for mode: changelog")
        }
        txColumn = try c.decodeIfPresent(String.self, forKey: .txColumn)
        if txColumn != nil && (mode != .changelog || processedColumn == nil) {
            throw try c.superDecoder(forKey: .txColumn).configError(
                "`tx_column` is for mode: changelog with a `processed_column` (rows are marked as they are delivered)")
        }
        if mode == .changelog && query != nil {
            throw try c.superDecoder(forKey: .query).configError("mode: changelog reads a change table: use `table`")
        }
        filter = try c.decodeIfPresent(String.self, forKey: .filter)
        batchRows = try c.decodeIfPresent(Int.self, forKey: .batchRows, in: 1...1_000_000) ?? batchRows
        if let u = try c.decodeIfPresent(String.self, forKey: .unsupportedTypes) {
            guard let parsed = Unsupported(rawValue: u) else {
                throw try c.superDecoder(forKey: .unsupportedTypes).configError("use error or string")
            }
            unsupportedTypes = parsed
        }
        schedule = try ExtractSchedule.decode(from: c, schedule: .schedule, poll: .poll, allowPoll: mode != .full)
        parallel = try c.decodeIfPresent(Int.self, forKey: .parallel, in: 1...64) ?? 1
        if parallel > 1 && mode != .full {
            throw try c.superDecoder(forKey: .parallel).configError(
                "parallel pulls split a full extract into key ranges; \(mode.rawValue) reads in cursor order (use `sluice backfill --parallel N` for history)")
        }
    }

    /// A name for the partition and dead-letter locations: the table, or `query`.
    var partition: String { table?.description ?? "query" }
}
