import Foundation
import Logging
import SluiceCore

/// Pulls a PostgreSQL table or query: `full` (whole table in key order, resumable mid-pass),
/// `incremental` (rows past the last committed cursor, primary key as tie-breaker, optional
/// lookback for late commits) or `changelog` (a change table; rows are marked processed only
/// after the sink committed them). See ``PostgresExtractPlan`` for the SQL.
public struct PostgresSource: Source {
    public var options: PostgresSourceOptions

    /// A scheduled pull runs until stopped; otherwise one extract, then the run ends.
    public var isContinuous: Bool { options.schedule != nil }

    public init(options: PostgresSourceOptions) { self.options = options }

    public static let spec = ComponentSpec(
        type: "postgres",
        summary: "a PostgreSQL table or query: full, incremental by a cursor (primary key breaks ties), or a change-log table",
        options: [
            OptionSpec(
                "url", .string, required: true, example: #""${PG_URL}""#, secret: true,
                "`postgres://user:password@host:5432/db`; TLS with `?sslmode=require` (or `verify-full&sslrootcert=…`). The password is never logged."),
            OptionSpec(
                "table", .string, example: "public.orders",
                #"The table to read, `table` or `schema.table` (unquoted names fold to lower case; quote others: `'"My Table"'`). Give either `table` or `query`."#
            ),
            OptionSpec(
                "query", .string, example: #""SELECT id, customer, total FROM public.orders""#, requires: ["key: [id]"],
                "Instead of `table`: any `SELECT`; needs `key`. Give either `table` or `query`; not with `mode: changelog`."),
            OptionSpec(
                "key", .list(.string), example: "[id]",
                "Columns that identify a row and order the read. Default: the table's primary key; required with `query` and with `lookback`."),
            OptionSpec(
                "mode", .choice(["full", "incremental", "changelog"]), default: "full", example: "changelog",
                "`full` reads the whole table in key order each pass; `incremental` reads rows past the last committed `cursor`; `changelog` reads a change table in id order."
            ),
            OptionSpec(
                "cursor", .list(.string), example: "[updated_at]", requires: ["mode: incremental"],
                "`incremental` (and required by it): NOT NULL columns that only grow; the key breaks ties."),
            OptionSpec(
                "lookback", .duration, example: "10m", requires: ["mode: incremental", "cursor: [updated_at]", "key: [id]"],
                "`incremental`: also re-read rows whose first cursor column is within this of the checkpoint, for rows committed late; needs `key`. Repeats are dropped by an implicit dedupe on cursor + key."
            ),
            OptionSpec(
                "change_id", .string, example: "change_id", requires: ["mode: changelog"],
                "`changelog`: the change table's increasing id column. Default: the table's single-column primary key."),
            OptionSpec(
                "processed_column", .string, example: "processed", requires: ["mode: changelog"],
                "`changelog`: a boolean column set to true once the row is committed downstream; only rows where it is not true are read."),
            OptionSpec(
                "tx_column", .string, example: "tx_id", requires: ["mode: changelog", "processed_column: processed"],
                "`changelog` with `processed_column`: the column holding the writing transaction's id (`txid_current()`); only changes of transactions older than every running one are read, so a late commit is never skipped."
            ),
            OptionSpec(
                "filter", .string, example: #""tenant_id = 7""#,
                "An extra SQL condition added to the `WHERE` clause."),
            OptionSpec(
                "batch_rows", .integer(1...1_000_000), default: "50000", example: "10000",
                "Rows per page read from the server."),
            OptionSpec(
                "parallel", .integer(1...64), default: "1", example: "4",
                "`full`: read the table as this many key ranges at once, each with its own connection and checkpoint partition."),
            OptionSpec(
                "schedule", .string, example: #""every 5m""#,
                #"Pull again on a schedule until stopped: `"every <duration>"` or a five-field cron expression (`"0 * * * *"`, UTC). Without `schedule` or `poll`, `sluice run` pulls once."#
            ),
            OptionSpec(
                "poll",
                .object([
                    OptionSpec("min", .duration, required: true, example: "1s", "The wait after a poll that returned rows."),
                    OptionSpec("max", .duration, required: true, example: "1m", "The longest wait: the wait doubles up to it while polls return nothing."),
                ]), example: "{ min: 1s, max: 1m }", requires: ["mode: changelog"],
                "Instead of `schedule`, for `incremental` and `changelog`: adaptive polling, again after `min` while polls return rows, doubling to `max` while idle."
            ),
            OptionSpec(
                "unsupported_types", .choice(["error", "string"]), default: "error", example: "string",
                "A column of a type Sluice does not map: `error` stops the pull before any data moves; `string` reads it as its text form."),
        ],
        example: """
            source:
              postgres: { url: "${PG_URL}", table: public.orders, key: [id], mode: incremental, cursor: [updated_at], lookback: 5m }
            """,
        capabilities: [.backfillable],
        exampleFile: "examples/postgres-pull.yaml",
        alternatives: [["table", "query"]]
    )

    public static let factory = SourceFactory(spec: spec) { config, _ in
        PostgresSource(options: try config.decodeOptions(PostgresSourceOptions.self))
    }

    /// With `lookback`, rows are re-read; the pipeline drops the repeats by primary key and
    /// cursor (an implicit `dedupe`, unless the pipeline declares its own).
    public var implicitDedupeKey: [String]? {
        guard options.lookback != nil else { return nil }
        return options.cursor + options.key
    }

    public func checkReachable() async throws {
        let connection = try await PostgresConnection.connect(options.url)
        let o = options
        _ = try await connection.run { try PostgresExtractPlan(options: o, session: $0) }
    }

    public func makeReader(resumingFrom checkpoint: Checkpoint, context: SourceContext) async throws -> any SourceReader {
        guard let schedule = options.schedule else { return try await makePassReader(resumingFrom: checkpoint, context: context) }
        context.logger.info("scheduled pull", metadata: ["schedule": "\(schedule)"])
        return RepeatingReader(schedule: schedule, context: context) { checkpoint in
            try await makePassReader(resumingFrom: checkpoint, context: context)
        }
    }

    /// A reader for one extract pass: one key-ordered reader, or `parallel` of them over key slices.
    func makePassReader(resumingFrom checkpoint: Checkpoint, context: SourceContext) async throws -> any SourceReader {
        let connection = try await PostgresConnection.connect(options.url)
        let o = options
        var plan = try await connection.run { try PostgresExtractPlan(options: o, session: $0) }
        let base = options.partition
        var single = checkpoint[base].flatMap(KeyPosition.decode)
        if options.txColumn != nil {
            // Each pass reads every unprocessed change of settled transactions from the start;
            // the changes of the last committed pass are marked first (the crash may have come
            // between the sink's commit and the marking).
            if let single { try await markProcessed(single, connection: connection, plan: plan) }
            let xmin = try await connection.run { try $0.query("SELECT txid_snapshot_xmin(txid_current_snapshot())::text").string(0, 0) ?? "0" }
            plan.settledBelow(xmin: xmin, column: options.txColumn!)
            var fresh = KeyPosition.newRun()
            fresh.xmin = xmin
            single = fresh
        }
        guard options.parallel > 1 else {
            let reader = PostgresSourceReader(
                options: options, plan: plan, connection: connection, partition: base,
                position: single)
            if options.mode == .full { try await reportTotal([reader], context: context) }
            return reader
        }
        // Resume the slices of an unfinished pass, or cut new ones. Every slice's position carries
        // the whole cut, so slices that had not committed anything yet are rebuilt exactly.
        let n = options.parallel
        let names = (1...n).map { "\(base)#\(String(format: "%02d", $0))/\(n)" }
        let stored = names.map { checkpoint[$0].flatMap(KeyPosition.decode) }
        let present = stored.compactMap { $0 }
        let finishedPass = present.count == n && present.allSatisfy(\.done) && Set(present.map(\.run)).count == 1
        let reference = present.first(where: { !$0.done && $0.cut != nil }) ?? (finishedPass ? nil : present.first(where: { $0.cut != nil }))
        var positions: [KeyPosition?]
        if let reference, let cut = reference.cut {
            let slices = Self.slices(uppers: cut, count: n)
            positions = (0..<n).map { i in
                if let p = stored[i], p.run == reference.run { return p }
                return KeyPosition(after: nil, run: reference.run, slice: slices[i], cut: cut)
            }
        } else {
            let (sql, parameters) = plan.boundariesQuery(slices: n)
            let uppers = try await connection.run { session in
                let r = try session.query(sql, parameters)
                return (0..<r.rows).compactMap { r.string($0, 0) }
            }
            let run = KeyPosition.newRun().run
            let slices = Self.slices(uppers: uppers, count: n)
            positions = (0..<n).map { KeyPosition(after: nil, run: run, slice: slices[$0], cut: uppers) }
        }
        var readers: [PostgresSourceReader] = []
        for (i, name) in names.enumerated() {
            let c = i == 0 ? connection : try await PostgresConnection.connect(options.url)
            readers.append(PostgresSourceReader(options: options, plan: plan, connection: c, partition: name, position: positions[i]))
        }
        context.logger.info("parallel pull", metadata: ["slices": "\(n)", "bounds": "\(positions.map { $0?.slice?.upper ?? "∞" })"])
        try await reportTotal(readers, context: context)
        return ParallelReader(readers: readers)
    }

    /// The n key slices for the upper bounds `ntile` gave: (-∞, u1], (u1, u2], …, (u(n-1), ∞).
    /// Fewer bounds than slices (few distinct values) leave the last slices empty.
    static func slices(uppers: [String], count n: Int) -> [KeySlice] {
        var lower: String?
        return (0..<n).map { i in
            let upper = i == n - 1 ? nil : (i < uppers.count ? uppers[i] : uppers.last)
            defer { lower = upper ?? lower }
            return KeySlice(lower: lower, upper: upper)
        }
    }

    /// Counts the rows left to read, for the progress bar.
    func reportTotal(_ readers: [PostgresSourceReader], context: SourceContext) async throws {
        var total = 0
        for r in readers where !r.finished {
            let (sql, parameters) = r.plan.countQuery(after: r.position.after, slice: r.position.slice)
            total += try await r.connection.run { Int(try $0.query(sql, parameters).string(0, 0) ?? "0") ?? 0 }
        }
        context.reportProgress(SourceProgress(bytesDone: 0, bytesTotal: nil, recordsTotal: total))
    }

    /// changelog: marks rows up to the committed change id processed (after the sink commit).
    public func committed(_ positions: [String: String], context: SourceContext) async throws {
        guard options.mode == .changelog, options.processedColumn != nil,
            let value = positions[options.partition], let position = KeyPosition.decode(value)
        else { return }
        let connection = try await PostgresConnection.connect(options.url)
        let o = options
        let plan = try await connection.run { try PostgresExtractPlan(options: o, session: $0) }
        let updated = try await markProcessed(position, connection: connection, plan: plan)
        context.logger.debug("change rows marked processed", metadata: ["rows": "\(updated)"])
    }

    /// Marks the change rows `position` says were delivered: up to its change id (and, with
    /// `tx_column`, of transactions below its pass's xmin: exactly the rows that pass read).
    @discardableResult
    func markProcessed(_ position: KeyPosition, connection: PostgresConnection, plan: PostgresExtractPlan) async throws -> Int {
        guard let processed = options.processedColumn, let table = options.table, let after = position.after else { return 0 }
        let id = plan.key[0]
        var sql =
            "UPDATE \(SQLText.qualified(table)) SET \(SQLText.identifier(processed)) = true "
            + "WHERE \(SQLText.identifier(id.name)) <= $1::\(id.typeName) AND \(SQLText.identifier(processed)) IS NOT TRUE"
        var parameters: [String?] = [after[0]]
        if let tx = options.txColumn {
            sql += " AND \(SQLText.identifier(tx)) < $2::int8"
            parameters.append(position.xmin ?? "0")
        }
        let statement = sql, bound = parameters
        return try await connection.run { try $0.query(statement, bound).affectedRows }
    }
}

extension PostgresSource: BackfillableSource {
    public func backfill(from: String, to: String, parallel: Int) throws -> any Source {
        guard options.mode == .incremental, !options.cursor.isEmpty else {
            throw SluiceError(
                .configuration,
                "a backfill re-reads a range of an incremental pull's cursor; this pipeline's postgres source is mode: \(options.mode.rawValue)",
                location: "source.postgres.mode")
        }
        var o = options
        o.mode = .full
        o.backfill = (from, to)
        o.parallel = parallel
        o.schedule = nil
        o.lookback = nil
        return PostgresSource(options: o)
    }
}

/// Where an extract stands: the last key read, as exact text values; for full extracts,
/// whether the pass is done and which pass it is; for a slice of a parallel pull, its bounds.
struct KeyPosition: Sendable, Hashable {
    var after: [String]?
    var done = false
    var run: String
    var slice: KeySlice?
    /// Parallel pulls: the upper bounds of every slice of this pass (see ``PostgresSource/slices(uppers:count:)``).
    var cut: [String]?
    /// changelog with `tx_column`: this pass reads changes of transactions below this id.
    var xmin: String?

    var encoded: String {
        var object: [String: Any] = ["run": run, "done": done]
        if let xmin { object["xmin"] = xmin }
        if let after { object["after"] = after }
        if let slice {
            object["slice"] = ["lower": slice.lower as Any? ?? NSNull(), "upper": slice.upper as Any? ?? NSNull()]
        }
        if let cut { object["cut"] = cut }
        let data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])) ?? Data()
        return String(decoding: data, as: UTF8.self)
    }

    static func decode(_ text: String) -> KeyPosition? {
        guard let object = try? JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any] else { return nil }
        var p = KeyPosition(run: object["run"] as? String ?? "")
        p.done = object["done"] as? Bool ?? false
        p.after = object["after"] as? [String]
        if let slice = object["slice"] as? [String: Any] {
            p.slice = KeySlice(lower: slice["lower"] as? String, upper: slice["upper"] as? String)
        }
        p.cut = object["cut"] as? [String]
        p.xmin = object["xmin"] as? String
        return p
    }

    static func newRun() -> KeyPosition {
        KeyPosition(after: nil, run: String(UUID().uuidString.lowercased().prefix(8)))
    }
}

/// Reads one extract (or one slice of it) page by page. See ``PostgresSource``.
/// Used by one task at a time (a ``ParallelReader`` hands each to one child task per round).
final class PostgresSourceReader: SourceReader, @unchecked Sendable {
    let options: PostgresSourceOptions
    let plan: PostgresExtractPlan
    let connection: PostgresConnection
    let partition: String
    var position: KeyPosition
    /// Lookback polls start before the committed cursor; the first page is different.
    var startsWithLookback: Bool
    var finished = false

    init(options: PostgresSourceOptions, plan: PostgresExtractPlan, connection: PostgresConnection, partition: String, position: KeyPosition?) {
        self.options = options
        self.plan = plan
        self.connection = connection
        self.partition = partition
        switch options.mode {
        case .full:
            self.position = position.flatMap { $0.done && $0.slice == nil ? nil : $0 } ?? .newRun()  // resume an interrupted pass
        case .incremental, .changelog:
            self.position = position ?? .newRun()
        }
        finished = self.position.done
        startsWithLookback = options.lookback != nil && self.position.after != nil
    }

    /// The statement of the next page, already sent to the server (see ``next()``).
    var prefetched: String?

    /// Reads one page. As soon as a full page arrives, the query for the page after it is sent
    /// (its key is the last row's), so the server produces that page while this one is decoded
    /// and written: the two sides work at the same time instead of taking turns.
    func next() async throws -> SourceBatch? {
        guard !finished else { return nil }
        let limit = options.batchRows
        let plan = self.plan
        let lookback = startsWithLookback ? options.lookback.map { "\($0.components.seconds) seconds" } : nil
        startsWithLookback = false
        let (sql, parameters) = plan.pageQuery(after: position.after, lookback: lookback, slice: position.slice, limit: limit)
        let partition = self.partition
        let slice = position.slice
        let pending = prefetched
        let (page, next) = try await connection.run { session -> (Page, String?) in
            let result: PostgresResult
            if let pending {
                result = try session.receive(sql: pending)
            } else {
                try session.send(sql, parameters, binary: true)
                result = try session.receive(sql: sql)
            }
            var next: String?
            if result.rows == limit {
                let n = plan.mappings.count
                let lastKey = (0..<plan.key.count).map { result.string(limit - 1, n + $0) ?? "" }
                let (nextSQL, nextParameters) = plan.pageQuery(after: lastKey, slice: slice, limit: limit)
                try session.send(nextSQL, nextParameters, binary: true)
                next = nextSQL
            }
            return (Page.decode(result, plan: plan, partition: partition), next)
        }
        prefetched = next
        if let last = page.lastKey { position.after = last }
        if page.rows < limit {
            finished = true
            if options.mode == .full { position.done = true }
            if page.rows == 0 && options.mode != .full { return nil }
        }
        return SourceBatch(
            records: page.batch, rejects: page.rejects,
            position: SourcePosition(partition: partition, value: position.encoded),
            inputBytes: page.bytes)
    }

    func close() async {}
}

/// Reads the slices of a parallel pull: each round fetches one page from every unfinished slice
/// at once (each slice has its own connection), then hands the pages out one by one. Each slice
/// is a checkpoint partition, so the pass resumes slice by slice after a crash.
final class ParallelReader: SourceReader {
    let readers: [PostgresSourceReader]
    var ready: [SourceBatch] = []

    init(readers: [PostgresSourceReader]) { self.readers = readers }

    func next() async throws -> SourceBatch? {
        while ready.isEmpty {
            let active = readers.filter { !$0.finished }
            if active.isEmpty { return nil }
            let pages = try await withThrowingTaskGroup(of: (Int, SourceBatch?).self) { group in
                for (i, reader) in active.enumerated() { group.addTask { (i, try await reader.next()) } }
                return try await group.reduce(into: [(Int, SourceBatch?)]()) { $0.append($1) }
            }
            ready = pages.sorted { $0.0 < $1.0 }.compactMap(\.1)
        }
        return ready.removeFirst()
    }
}

/// One decoded page.
struct Page: Sendable {
    var batch: RecordBatch
    var rejects: [DeadLetter]
    var lastKey: [String]?
    var rows: Int
    var bytes: Int

    /// Decodes binary result rows straight into column builders. A value with no Sluice form
    /// (infinity, NaN, a numeric with too many digits) sends its row to the dead-letter queue.
    static func decode(_ r: PostgresResult, plan: PostgresExtractPlan, partition: String) -> Page {
        let n = plan.mappings.count
        var builders = plan.mappings.map { ColumnBuilder(type: $0.field.type, capacity: r.rows) }
        var rejects: [DeadLetter] = []
        var bytes = 0
        for row in 0..<r.rows {
            var failed: Int?
            for column in 0..<n {
                if r.isNull(row, column) {
                    builders[column].appendNull()
                    continue
                }
                let value = r.bytes(row, column)
                bytes += value.count
                if !BinaryValue.append(value, plan.mappings[column].decoder, to: &builders[column]) {
                    failed = column
                    break
                }
            }
            if let failed {
                for c in 0..<failed { builders[c].removeLast() }
                let key = (0..<plan.key.count).map { r.string(row, n + $0) ?? "" }
                let field = plan.mappings[failed].field
                let text = rowText(r, row: row, plan: plan)
                rejects.append(
                    DeadLetter(
                        stage: "decode", errorKind: "type_mismatch",
                        message: "column '\(field.name)': value has no \(field.type) form (infinity, NaN or too many digits)",
                        location: "postgres:\(partition)@\(key.joined(separator: ","))", raw: Array(text.utf8)))
            }
        }
        let lastKey = r.rows > 0 ? (0..<plan.key.count).map { r.string(r.rows - 1, n + $0) ?? "" } : nil
        let batch = RecordBatch(schema: plan.schema, columns: builders.indices.map { builders[$0].finish() })
        return Page(batch: batch, rejects: rejects, lastKey: lastKey, rows: r.rows, bytes: bytes)
    }

    /// The key of a rejected row, for its dead letter (its values are binary; the key is text).
    static func rowText(_ r: PostgresResult, row: Int, plan: PostgresExtractPlan) -> String {
        let n = plan.mappings.count
        let pairs = plan.key.enumerated().map { "\(RowRendering.quote($0.element.name)): \(RowRendering.quote(r.string(row, n + $0.offset) ?? ""))" }
        return "{" + pairs.joined(separator: ", ") + "}"
    }
}
