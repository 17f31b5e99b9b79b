import SluiceCore

/// Options of the `sqlite` source; each one is declared, with its default, in ``SQLiteSource/spec``.
///
/// `changelog` reads a change table in id order (`change_id`, default the integer primary key)
/// and, with `processed_column`, sets it to 1 once the sink has committed the row.
public struct SQLiteSourceOptions: Decodable, Sendable {
    public enum Mode: String, Sendable { case full, incremental, changelog }

    public var path: String
    public var table: String
    public var mode: Mode = .full
    public var cursor: [String] = []
    public var batchRows = 10_000
    public var declared: [String: DataType] = [:]
    public var changeID: String?
    public var processedColumn: String?
    public var schedule: ExtractSchedule?

    enum CodingKeys: String, CodingKey {
        case path, table, mode, cursor, columns, schedule, poll
        case batchRows = "batch_rows"
        case changeID = "change_id"
        case processedColumn = "processed_column"
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        path = try c.decode(String.self, forKey: .path)
        table = try c.decode(String.self, forKey: .table)
        guard table.range(of: #"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?$"#, options: .regularExpression) != nil else {
            throw try c.superDecoder(forKey: .table).configError("a table name (letters, digits, '_', optionally schema.table) is expected")
        }
        if let m = try c.decodeIfPresent(String.self, forKey: .mode) {
            guard let parsed = Mode(rawValue: m) else {
                throw try c.superDecoder(forKey: .mode).configError("unknown mode '\(m)'; use full, incremental or changelog")
            }
            mode = parsed
        }
        cursor = try c.decodeIfPresent([String].self, forKey: .cursor) ?? []
        if mode == .incremental && cursor.isEmpty {
            throw try c.superDecoder(forKey: .mode).configError("mode: incremental needs `cursor: [column, …]` (columns that only grow, e.g. [updated_at, id])")
        }
        if mode != .incremental && !cursor.isEmpty {
            throw try c.superDecoder(forKey: .cursor).configError("`cursor` is for mode: incremental")
        }
        changeID = try c.decodeIfPresent(String.self, forKey: .changeID)
        processedColumn = try c.decodeIfPresent(String.self, forKey: .processedColumn)
        if mode != .changelog, changeID != nil || processedColumn != nil {
            throw try c.superDecoder(forKey: changeID != nil ? .changeID : .processedColumn).configError(
                "`change_id` and `processed_column` are for mode: changelog")
        }
        schedule = try ExtractSchedule.decode(from: c, schedule: .schedule, poll: .poll, allowPoll: mode != .full)
        batchRows = try c.decodeIfPresent(Int.self, forKey: .batchRows, in: 1...1_000_000) ?? batchRows
        for field in try c.decodeDeclaredColumns(forKey: .columns) ?? [] { declared[field.name] = field.type }
    }
}
