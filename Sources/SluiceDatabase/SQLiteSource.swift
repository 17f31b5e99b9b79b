import Foundation
import GRDB
import Logging
import SluiceCore

/// Pulls a table of a SQLite database: `full` (the whole table, in key order, resumable after a
/// crash) or `incremental` (rows whose cursor is past the last committed one).
///
/// Rows are read by keyset pagination: `WHERE (k1, k2, …) > (?, ?, …) ORDER BY k1, k2, … LIMIT n`,
/// where the key is the rowid (full) or the cursor columns followed by the primary key as the
/// tie-breaker (incremental), so rows sharing a cursor value are never skipped. The checkpoint is
/// the last key, kept at its exact SQLite value (integers as integers, reals by their exact
/// text, text as text), never rounded through a float or truncated.
public struct SQLiteSource: Source {
    public var options: SQLiteSourceOptions
    public var path: String

    /// A scheduled pull runs until stopped; otherwise one extract, then the run ends.
    public var isContinuous: Bool { options.schedule != nil }

    public init(options: SQLiteSourceOptions, path: String) {
        self.options = options
        self.path = path
    }

    public static let spec = ComponentSpec(
        type: "sqlite",
        summary: "a SQLite table: full (resumable), incremental by a cursor with the primary key as tie-breaker, or a change table (changelog)",
        options: [
            OptionSpec(
                "path", .string, required: true, example: "app.db",
                "The database file, opened read-only. Relative to the working directory."),
            OptionSpec(
                "table", .string, required: true, example: "orders",
                "The table, `name` or `schema.name` (letters, digits and `_`)."),
            OptionSpec(
                "mode", .choice(["full", "incremental", "changelog"]), default: "full", example: "changelog",
                "`full`: the whole table in rowid (or primary-key) order each run, resumed mid-pass after a crash; `incremental`: only rows past the last committed `cursor`; `changelog`: a change table in `change_id` order."
            ),
            OptionSpec(
                "cursor", .list(.string), example: "[updated_at]", requires: ["mode: incremental"],
                "`incremental` (and required there): NOT NULL columns that only grow, e.g. `[updated_at]`; the primary key (or rowid) is added as the tie-breaker."
            ),
            OptionSpec(
                "change_id", .string, example: "change_id", requires: ["mode: changelog"],
                "`changelog`: the change table's increasing id column. Default: the single-column primary key, else the rowid."),
            OptionSpec(
                "processed_column", .string, example: "processed", requires: ["mode: changelog"],
                "`changelog`: a column set to 1 once the sink has committed the row; only rows where it is not 1 are read."),
            OptionSpec(
                "batch_rows", .integer(1...1_000_000), default: "10000", example: "5000",
                "Rows per page (one query each)."),
            OptionSpec(
                "columns", .map(.string), example: #"{ total: "decimal(12,2)" }"#,
                "Declared types by column name (bool, int64, float64, decimal(p,s), string, binary, date, timestamp, json); other columns follow the table's declared SQLite types."
            ),
            OptionSpec(
                "schedule", .string, example: #""every 5m""#,
                "Keep pulling on a schedule until stopped: `every <duration>` or a five-field cron expression (UTC, e.g. `0 * * * *`). Without `schedule` or `poll`, one pull, then the run ends."
            ),
            OptionSpec(
                "poll",
                .object([
                    OptionSpec("min", .duration, required: true, example: "1s", "The wait before the next poll while polls return rows (positive)."),
                    OptionSpec("max", .duration, required: true, example: "1m", "The longest wait between polls while idle (at least `min`)."),
                ]), example: "{ min: 1s, max: 30s }", requires: ["mode: changelog"],
                "Instead of `schedule`, for `incremental` and `changelog`: adaptive polling, again after `min` while polls return rows, doubling up to `max` while idle."
            ),
        ],
        example: """
            source:
              sqlite: { path: app.db, table: orders, mode: incremental, cursor: [updated_at, id] }
            """,
        exampleFile: "examples/sqlite-pull.yaml"
    )

    public static let factory = SourceFactory(spec: spec) { config, context in
        let o = try config.decodeOptions(SQLiteSourceOptions.self)
        return SQLiteSource(options: o, path: context.resolve(o.path))
    }

    public func checkReachable() async throws {
        _ = try openDatabase()
    }

    func openDatabase() throws -> DatabaseQueue {
        guard FileManager.default.fileExists(atPath: path) else {
            throw SluiceError(.io, "the SQLite database '\(path)' does not exist", location: path)
        }
        var configuration = Configuration()
        configuration.readonly = true
        configuration.busyMode = .timeout(10)
        do {
            return try DatabaseQueue(path: path, configuration: configuration)
        } catch {
            throw SluiceError(.io, "cannot open the SQLite database '\(path)': \(error)", location: path, underlying: error)
        }
    }

    public func makeReader(resumingFrom checkpoint: Checkpoint, context: SourceContext) async throws -> any SourceReader {
        guard let schedule = options.schedule else { return try await makePassReader(resumingFrom: checkpoint) }
        return RepeatingReader(schedule: schedule, context: context) { checkpoint in
            try await makePassReader(resumingFrom: checkpoint)
        }
    }

    /// changelog: marks rows up to the committed change id processed (after the sink commit).
    public func committed(_ positions: [String: String], context: SourceContext) async throws {
        guard options.mode == .changelog, let processed = options.processedColumn,
            let value = positions[options.table], let position = ExtractPosition.decode(value),
            let last = position.after?.first
        else { return }
        var configuration = Configuration()
        configuration.busyMode = .timeout(10)
        let db = try DatabaseQueue(path: path, configuration: configuration)
        let plan = try await db.read { try ExtractPlan(db: $0, options: options) }
        try await db.write { db in
            try db.execute(
                sql: "UPDATE \(ExtractPlan.quote(options.table)) SET \(ExtractPlan.quote(processed)) = 1 "
                    + "WHERE \(ExtractPlan.quote(plan.key[0])) <= ? AND \(ExtractPlan.quote(processed)) IS NOT 1", arguments: [last])
        }
    }

    func makePassReader(resumingFrom checkpoint: Checkpoint) async throws -> any SourceReader {
        let db = try openDatabase()
        let plan = try await db.read { db in try ExtractPlan(db: db, options: options) }
        return SQLiteSourceReader(source: self, db: db, plan: plan, position: checkpoint[options.table].flatMap(ExtractPosition.decode))
    }
}

/// The columns and key of one table's extract.
struct ExtractPlan: Sendable {
    var fields: [Field]
    /// Key columns, in order (`rowid` or cursor + primary key).
    var key: [String]
    var sql: String
    var firstSQL: String

    init(db: Database, options: SQLiteSourceOptions) throws {
        let table = options.table
        let info = try Row.fetchAll(db, sql: "PRAGMA table_info(\(Self.quote(table)))")
        guard !info.isEmpty else {
            throw SluiceError(.configuration, "table '\(table)' does not exist in the database", location: "source.sqlite.table")
        }
        var fields: [Field] = []
        var primaryKey: [(Int, String)] = []
        var notNull: [String: Bool] = [:]
        for row in info {
            let name: String = row["name"]
            let declared: String = row["type"] ?? ""
            fields.append(Field(name, options.declared[name] ?? Self.type(declared: declared), nullable: (row["notnull"] as Int) == 0))
            notNull[name] = (row["notnull"] as Int) != 0 || (row["pk"] as Int) > 0
            if (row["pk"] as Int) > 0 { primaryKey.append((row["pk"], name)) }
        }
        let pk = primaryKey.sorted { $0.0 < $1.0 }.map(\.1)
        let hasRowid = (try? Row.fetchAll(db, sql: "SELECT rowid FROM \(Self.quote(table)) LIMIT 0")) != nil
        var key: [String]
        switch options.mode {
        case .full:
            guard hasRowid || !pk.isEmpty else {
                throw SluiceError(.configuration, "table '\(table)' has neither a rowid nor a primary key to read it in order", location: "source.sqlite.table")
            }
            key = hasRowid ? ["rowid"] : pk
        case .changelog:
            let id = options.changeID ?? (pk.count == 1 ? pk[0] : (hasRowid ? "rowid" : ""))
            guard !id.isEmpty, id == "rowid" || notNull[id] != nil else {
                throw SluiceError(.configuration, "name the change table's id column: `change_id: column`", location: "source.sqlite.change_id")
            }
            if let p = options.processedColumn, notNull[p] == nil {
                throw SluiceError(.configuration, "processed_column '\(p)' is not a column of '\(table)'", location: "source.sqlite.processed_column")
            }
            key = [id]
        case .incremental:
            for c in options.cursor {
                guard notNull[c] != nil else {
                    throw SluiceError(
                        .configuration, "cursor column '\(c)' is not a column of '\(table)' (columns: \(fields.map(\.name).joined(separator: ", ")))",
                        location: "source.sqlite.cursor")
                }
                guard notNull[c] == true else {
                    throw SluiceError(
                        .configuration,
                        "cursor column '\(c)' may be NULL: rows with NULL there would never be extracted. "
                            + "Declare it NOT NULL, or use other cursor columns", location: "source.sqlite.cursor")
                }
            }
            key = options.cursor
            let tieBreak = pk.isEmpty ? (hasRowid ? ["rowid"] : []) : pk
            key += tieBreak.filter { !key.contains($0) }
        }
        self.fields = fields
        self.key = key
        let columns = (fields.map { Self.quote($0.name) } + key.map(Self.quote)).joined(separator: ", ")
        let keyList = key.map(Self.quote).joined(separator: ", ")
        let order = key.map(Self.quote).joined(separator: ", ")
        // changelog with a processed column: only rows not marked yet.
        let unprocessed = options.processedColumn.map { "\(Self.quote($0)) IS NOT 1" }
        firstSQL = "SELECT \(columns) FROM \(Self.quote(table))\(unprocessed.map { " WHERE \($0)" } ?? "") ORDER BY \(order) LIMIT ?"
        let placeholders = Array(repeating: "?", count: key.count).joined(separator: ", ")
        sql =
            "SELECT \(columns) FROM \(Self.quote(table)) WHERE (\(keyList)) > (\(placeholders))\(unprocessed.map { " AND \($0)" } ?? "") ORDER BY \(order) LIMIT ?"
    }

    static func quote(_ name: String) -> String {
        name == "rowid" ? name : name.split(separator: ".").map { "\"\($0.replacingOccurrences(of: "\"", with: "\"\""))\"" }.joined(separator: ".")
    }

    /// The Sluice type for a SQLite declared type (by SQLite's affinity rules, refined).
    static func type(declared: String) -> DataType {
        let t = declared.lowercased()
        if let parsed = DataType(parsing: t), case .decimal = parsed { return parsed }
        if t.hasPrefix("bool") { return .bool }
        if t == "date" { return .date }
        if t.contains("datetime") || t.contains("timestamp") { return .timestamp }
        if t == "json" || t == "jsonb" { return .json }
        if t.contains("int") { return .int64 }
        if t.contains("char") || t.contains("clob") || t.contains("text") { return .string }
        if t.contains("blob") { return .binary }
        if t.contains("real") || t.contains("floa") || t.contains("doub") || t.contains("num") || t.contains("dec") { return .float64 }
        return .string
    }
}

/// Where an extract stands: the last key read (exact values), and for full extracts, whether the pass is done.
struct ExtractPosition: Sendable, Hashable {
    var after: [DatabaseValue]?
    var done = false
    var run: String

    var encoded: String {
        var object: [String: Any] = ["run": run, "done": done]
        if let after { object["after"] = after.map(Self.encode) }
        let data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])) ?? Data()
        return String(decoding: data, as: UTF8.self)
    }

    static func decode(_ text: String) -> ExtractPosition? {
        guard let object = try? JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any] else { return nil }
        var p = ExtractPosition(run: object["run"] as? String ?? "")
        p.done = object["done"] as? Bool ?? false
        if let values = object["after"] as? [[String]] {
            p.after = values.compactMap(decodeValue)
            if p.after?.count != values.count { return nil }
        }
        return p
    }

    /// `["i", "42"]`, `["r", "0.1"]` (shortest exact text), `["s", "text"]`, `["b", base64]`, `["n", ""]`.
    static func encode(_ v: DatabaseValue) -> [String] {
        switch v.storage {
        case .null: ["n", ""]
        case let .int64(i): ["i", String(i)]
        case let .double(d): ["r", "\(d)"]
        case let .string(s): ["s", s]
        case let .blob(b): ["b", b.base64EncodedString()]
        }
    }

    static func decodeValue(_ pair: [String]) -> DatabaseValue? {
        guard pair.count == 2 else { return nil }
        switch pair[0] {
        case "n": return .null
        case "i": return Int64(pair[1]).map { $0.databaseValue }
        case "r": return Double(pair[1]).map { $0.databaseValue }
        case "s": return pair[1].databaseValue
        case "b": return Data(base64Encoded: pair[1]).map { $0.databaseValue }
        default: return nil
        }
    }
}

/// Reads one extract page by page. See ``SQLiteSource``.
final class SQLiteSourceReader: SourceReader {
    let source: SQLiteSource
    let db: DatabaseQueue
    let plan: ExtractPlan
    var position: ExtractPosition
    var finished = false

    init(source: SQLiteSource, db: DatabaseQueue, plan: ExtractPlan, position: ExtractPosition?) {
        self.source = source
        self.db = db
        self.plan = plan
        if source.options.mode == .full, let p = position, !p.done {
            self.position = p  // resume the interrupted pass
        } else if source.options.mode != .full, let p = position {
            self.position = p
        } else {
            self.position = ExtractPosition(after: nil, run: UUID().uuidString.lowercased().prefix(8).description)  // a new full pass
        }
    }

    func next() async throws -> SourceBatch? {
        guard !finished else { return nil }
        let limit = source.options.batchRows
        let after = position.after
        let plan = self.plan
        let rows = try await db.read { db -> [Row] in
            if let after {
                return try Row.fetchAll(db, sql: plan.sql, arguments: StatementArguments(after + [limit.databaseValue]))
            }
            return try Row.fetchAll(db, sql: plan.firstSQL, arguments: [limit])
        }
        let table = source.options.table
        let (batch, rejects) = Self.decode(rows, plan: plan, table: table)
        if let last = rows.last {
            position.after = (0..<plan.key.count).map { last[plan.fields.count + $0] as DatabaseValue }
        }
        let exhausted = rows.count < limit
        if exhausted {
            finished = true
            if source.options.mode == .full { position.done = true }
            if rows.isEmpty && source.options.mode != .full { return nil }
        }
        return SourceBatch(
            records: batch, rejects: rejects, position: SourcePosition(partition: table, value: position.encoded),
            inputBytes: batch.byteSize)
    }

    /// Rows of `plan`'s statements (its fields, then its key) as a batch; a row with a value that
    /// does not fit its field's type is a dead letter located by its key.
    static func decode(_ rows: [Row], plan: ExtractPlan, table: String) -> (RecordBatch, [DeadLetter]) {
        var builders = plan.fields.map { ColumnBuilder(type: $0.type, capacity: rows.count) }
        var rejects: [DeadLetter] = []
        let n = plan.fields.count
        var values: [Value] = []
        values.reserveCapacity(n)
        for row in rows {
            values.removeAll(keepingCapacity: true)
            var problem: String?
            for (i, field) in plan.fields.enumerated() {
                let dbValue: DatabaseValue = row[i]
                if let v = convert(dbValue, to: field.type) {
                    values.append(v)
                } else {
                    problem = "column '\(field.name)': \(dbValue) does not fit \(field.type)"
                    break
                }
            }
            if let problem {
                let key = (0..<plan.key.count).map { row[n + $0] as DatabaseValue }
                rejects.append(
                    DeadLetter(
                        stage: "decode", errorKind: "type_mismatch", message: problem,
                        location: location(table: table, key: key), raw: Array(row.description.utf8)))
                continue
            }
            for (i, v) in values.enumerated() { builders[i].append(value: v) }
        }
        return (RecordBatch(schema: Schema(plan.fields), columns: builders.indices.map { builders[$0].finish() }), rejects)
    }

    /// A row's dead-letter location: `sqlite:<table>@<its key, exactly>`.
    static func location(table: String, key: [DatabaseValue]) -> String {
        "sqlite:\(table)@\(ExtractPosition(after: key, run: "").encoded)"
    }

    /// A SQLite value as a value of `type`, or nil when it does not fit.
    static func convert(_ v: DatabaseValue, to type: DataType) -> Value? {
        switch (v.storage, type) {
        case (.null, _): return .null
        case let (.int64(i), .int64): return .int64(i)
        case let (.double(d), .int64): return d == d.rounded() && abs(d) < 9.2e18 ? .int64(Int64(d)) : nil
        case let (.string(s), .int64): return Int64(s).map { .int64($0) }
        case let (.int64(i), .float64): return Double(exactly: i).map { .float64($0) }
        case let (.double(d), .float64): return .float64(d)
        case let (.string(s), .float64): return Double(s).map { .float64($0) }
        case let (.int64(i), .bool): return i == 0 || i == 1 ? .bool(i == 1) : nil
        case let (.string(s), .bool):
            switch s.lowercased() {
            case "true", "t", "1": return .bool(true);
            case "false", "f", "0": return .bool(false);
            default: return nil
            }
        case let (.string(s), .string): return .string(s)
        case let (.int64(i), .string): return .string(String(i))
        case let (.double(d), .string): return .string("\(d)")
        case let (.blob(b), .string): return String(data: b, encoding: .utf8).map { .string($0) }
        case let (.blob(b), .binary): return .binary([UInt8](b))
        case let (.string(s), .binary): return .binary(Array(s.utf8))
        case let (.string(s), .json): return .json(s)
        case let (.int64(i), .json): return .json(String(i))
        case let (.double(d), .json): return .json("\(d)")
        case (_, let .decimal(p, scale)):
            let text: String
            switch v.storage {
            case let .int64(i): text = String(i)
            case let .double(d): text = "\(d)"
            case let .string(s): text = s
            default: return nil
            }
            let bytes = Array(text.utf8)
            return bytes.withUnsafeBufferPointer { DecimalText.parse($0, precision: p, scale: scale) }.map { .decimal($0, scale: scale) }
        case let (.string(s), .date):
            return Array(s.utf8).withUnsafeBufferPointer { TemporalText.parseDate($0) }.map { .date($0) }
        case let (.string(s), .timestamp):
            return Array(s.utf8).withUnsafeBufferPointer { TemporalText.parseTimestamp($0) }.map { .timestamp($0) }
        case let (.int64(i), .timestamp):
            let (us, overflow) = i.multipliedReportingOverflow(by: 1_000_000)  // unix seconds, as SQLite's unixepoch()
            return overflow ? nil : .timestamp(us)
        case let (.double(d), .timestamp):
            return d.isFinite && abs(d) < 9.2e12 ? .timestamp(Int64((d * 1_000_000).rounded())) : nil
        default:
            return nil
        }
    }
}
