import Foundation
import Logging
import SluiceCore

/// Writes one pipeline's batches. See ``PostgresSink``.
///
/// Each batch is copied (binary COPY) into a temporary stage table in Sluice's own column types,
/// then moved into the target with one `INSERT … SELECT` that PostgreSQL casts to the target's
/// types. When that statement fails for data reasons (a constraint, a value out of range), the
/// batch is moved row by row under savepoints and only the refused rows are returned to the
/// runtime, which dead-letters them. New columns are added (`ALTER TABLE … ADD COLUMN`) and
/// widened types altered inside the same transaction as the rows that need them.
///
/// Mutable state is touched only by the owning task, in sequence, or inside
/// ``PostgresConnection/run(_:)`` while that task awaits it.
final class PostgresSinkWriter: SinkWriter, @unchecked Sendable {
    let options: PostgresSinkOptions
    let context: SinkContext
    let stateTable: QualifiedName
    var connection: PostgresConnection
    /// Whether a transaction is open (rows written since the last commit).
    var inTransaction = false
    /// The connection broke; the next call reconnects and replays ``held``.
    var broken = false
    /// Accepted rows since the last commit, replayed into a new transaction after a reconnect.
    var held: [RecordBatch] = []
    var heldBytes = 0
    var heldRows = 0
    /// The id of the commit in flight (to tell after a lost connection whether it landed), and
    /// whether ``reconnect()`` found that it did.
    var committing: String?
    /// The checkpoint stored with the data as this writer last saw or committed it (for an
    /// exclusive writer's fence, see ``SinkContext/exclusive``).
    var lastAfter: [String: String] = [:]
    var landed = false
    /// Columns of the load table (name → `format_type`), nil until read.
    var loadColumns: [String: String]?
    /// The schema the temporary stage table has now.
    var stageSchema: Schema?
    /// replace: whether the staging table exists (this pass has started loading).
    var stagingReady = false
    /// Whether the straight COPY's conditions were checked in the open transaction (the load
    /// table locked, its columns read again, and whether it takes a COPY as it takes an INSERT).
    var straightChecked = false
    /// Load tables that take no straight COPY (rules, row security, an identity column, a view,
    /// or a COPY that failed otherwise): their batches go through the stage.
    var straightRefused: Set<QualifiedName> = []
    /// apply: the target tables seen so far, and the one source table a non-template `table` takes.
    var applyTargets: [QualifiedName: ApplyTarget] = [:]
    var applySource: String?

    /// The advisory lock key Sluice takes around its own DDL (`sluice` in ASCII).
    static let ddlLock: Int64 = 0x736C_7569_6365

    /// Commit early when this much is held for replay.
    static let maxHeldBytes = 64 << 20

    init(options: PostgresSinkOptions, context: SinkContext) async throws {
        self.options = options
        self.context = context
        stateTable = SinkStateRow.table(for: options.table)
        connection = try await PostgresConnection.connect(options.url)
    }

    var logger: Logger { context.logger }

    /// The table rows go into: the target, or the staging table of `replace`.
    var loadTable: QualifiedName { options.mode == .replace ? options.stagingTable : options.table }

    // MARK: Recovery

    /// Repairs the state store after a crash between the target's commit and the state
    /// store's: the target holds the newer checkpoint and the commit that produced it.
    func recover() async throws {
        let pipeline = context.pipeline
        let stateTable = self.stateTable
        let row = try await connection.run { session -> SinkStateRow? in
            // Concurrent `CREATE … IF NOT EXISTS` of one name can still collide: serialize Sluice's DDL.
            try session.execute("BEGIN; SELECT pg_advisory_xact_lock(\(PostgresSinkWriter.ddlLock))")
            // Only when missing: `CREATE TABLE IF NOT EXISTS` needs CREATE on the schema and the
            // ALTER ownership even when there is nothing to do, which a loading role may lack.
            let current = try session.query(
                "SELECT 1 FROM pg_attribute WHERE attrelid = to_regclass($1) AND attname = 'commit_id' AND NOT attisdropped",
                [SQLText.qualified(stateTable)])
            if current.rows == 0 {
                if let schema = stateTable.schema { try session.ensureSchema(schema) }
                try session.execute(SinkStateRow.createSQL(stateTable))
                try session.execute("ALTER TABLE \(SQLText.qualified(stateTable)) ADD COLUMN IF NOT EXISTS commit_id text")
            }
            try session.execute("COMMIT")
            let r = try session.query(
                "SELECT checkpoint_before::text, checkpoint_after::text, pending::text FROM \(SQLText.qualified(stateTable)) WHERE pipeline = $1",
                [pipeline])
            guard r.rows == 1 else { return nil }
            return SinkStateRow(
                before: SinkStateRow.decode([String: String].self, r.string(0, 0)) ?? [:],
                after: SinkStateRow.decode([String: String].self, r.string(0, 1)) ?? [:],
                pending: SinkStateRow.decode(StateCommit.self, r.string(0, 2)))
        }
        var stored = try await context.state.checkpoint(pipeline: pipeline).partitions
        lastAfter = row?.after ?? [:]
        if let row, stored != row.after {
            if stored == row.before, var pending = row.pending {
                logger.warning(
                    "recovering the last commit from the target: it committed there but not in the state store",
                    metadata: ["table": "\(options.table)", "checkpoint": "\(row.after)"])
                pending.dedupeSince = nil  // its rows are in the target already: store its keys whatever else is stored
                if let resolved = pending.resolvedDeadLetters, !resolved.isEmpty {
                    // A replay's rows are in the target: its dead letters go, those still there
                    // (some may have been dropped or expired since; that must not wedge recovery).
                    var filter = DeadLetterFilter(pipeline: pending.owner)
                    filter.ids = resolved
                    let present = try await context.state.deadLetters(matching: filter, limit: resolved.count)
                    pending.resolvedDeadLetters = present.map(\.id)
                }
                try await context.state.commit(pending)
                stored = try await context.state.checkpoint(pipeline: pipeline).partitions
            } else {
                logger.warning(
                    "the checkpoint stored with the data differs from the state store's (was the pipeline reset?); continuing from the state store's",
                    metadata: ["table": "\(options.table)"])
            }
        }
        if options.mode == .replace {
            let staging = options.stagingTable
            stagingReady = try await connection.run { session in
                try session.query("SELECT to_regclass($1) IS NOT NULL", [SQLText.qualified(staging)]).string(0, 0) == "t"
            }
        }
    }

    // MARK: Writing

    func write(_ batch: RecordBatch) async throws -> [RowFailure] {
        if broken { try await reconnect() }
        let failures: [RowFailure]
        do {
            failures = try await load(batch)
        } catch {
            broken = true  // the transaction is gone: reconnect and replay
            throw error
        }
        let accepted = failures.isEmpty ? batch : batch.take(Array(Set(0..<batch.count).subtracting(failures.map(\.row))).sorted())
        if accepted.count > 0 {
            held.append(accepted)
            heldBytes += accepted.byteSize
            heldRows += accepted.count
        }
        return failures
    }

    func commitDue(at now: ContinuousClock.Instant) -> Bool {
        heldBytes >= Self.maxHeldBytes || heldRows >= options.commitRows
    }

    var commitInterval: Duration { options.commitInterval }

    /// Loads one batch inside the open transaction (opening one if needed).
    func load(_ batch: RecordBatch) async throws -> [RowFailure] {
        try await connection.run { [self] session in try self.load(batch, session: session) }
    }

    func load(_ batch: RecordBatch, session: PostgresSession) throws -> [RowFailure] {
        if !inTransaction {
            try session.execute("BEGIN")
            inTransaction = true
            straightChecked = false
        }
        if options.mode == .apply { return try applyChanges(batch, session: session) }
        try prepareLoadTable(for: batch.schema, session: session)
        var failures = PostgresCopyEncoder.unstorableRows(batch)
        let skipped = Set(failures.map(\.row))
        if try copyStraightIn(batch, skipping: skipped, session: session) { return failures }
        try prepareStage(batch.schema, session: session)
        let columns = batch.schema.fields.map { SQLText.identifier($0.name) }
        try session.copyIn("COPY pg_temp.sluice_stage (sluice_row, \(columns.joined(separator: ", "))) FROM STDIN (FORMAT binary)") { send in
            try PostgresCopyEncoder.stream(batch, skipping: skipped, send: send)
        }
        let move = moveSQL(batch.schema)
        failures += try moveRows(0..<batch.count, sql: move, skipped: skipped, session: session)
        try session.execute("TRUNCATE pg_temp.sluice_stage")
        return failures
    }

    /// append and replace: copies the batch straight into the load table (binary COPY, no
    /// stage, no `INSERT … SELECT`) when each of its columns there has the very type Sluice
    /// creates for the field, so nothing is cast and the values land exactly as the stage
    /// path would land them. Under a savepoint: when PostgreSQL refuses the batch for data
    /// reasons (a constraint), it is rolled back and the batch takes the stage path, which
    /// finds the refused rows. False when the batch was not copied.
    func copyStraightIn(_ batch: RecordBatch, skipping skipped: Set<Int>, session: PostgresSession) throws -> Bool {
        guard options.mode == .append || options.mode == .replace, !straightRefused.contains(loadTable) else { return false }
        if !straightChecked {
            straightChecked = true
            let table = SQLText.qualified(loadTable)
            // COPY skips rules, fails under row security and on views and foreign tables, and
            // takes values an INSERT refuses for identity columns GENERATED ALWAYS: such tables
            // take the stage. Asked again after the lock, which no ALTER passes until the commit.
            let check = """
                SELECT c.relkind IN ('r', 'p') AND NOT c.relrowsecurity
                    AND NOT EXISTS (SELECT 1 FROM pg_rewrite r WHERE r.ev_class = c.oid AND r.ev_type = '3')
                    AND NOT EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
                                    AND (a.attidentity = 'a' OR a.attgenerated <> ''))
                FROM pg_class c WHERE c.oid = to_regclass($1)
                """
            func takesCopy() throws -> Bool {
                let answer = try session.query(check, [table])
                return answer.rows == 1 && answer.string(0, 0) == "t"
            }
            var takes = try takesCopy()
            if takes {
                // Once per transaction: the lock an INSERT takes, then the columns as they are
                // now. A cast the stage would make is never skipped on the strength of a type
                // read in an earlier transaction.
                try session.execute("LOCK TABLE \(table) IN ROW EXCLUSIVE MODE")
                takes = try takesCopy()
                loadColumns = try columns(of: loadTable, session: session)
            }
            if !takes {
                straightRefused.insert(loadTable)
                logger.info("the table takes rows through the stage (rules, row security, a view or an identity column)", metadata: ["table": "\(loadTable)"])
                return false
            }
        }
        guard let loadColumns, batch.schema.fields.allSatisfy({ PostgresCopyEncoder.holdsExactly($0.type, sqlType: loadColumns[$0.name]) })
        else { return false }
        let columns = batch.schema.fields.map { SQLText.identifier($0.name) }.joined(separator: ", ")
        try session.execute("SAVEPOINT sluice_copy")
        do {
            try session.copyIn("COPY \(SQLText.qualified(loadTable)) (\(columns)) FROM STDIN (FORMAT binary)") { send in
                try PostgresCopyEncoder.stream(batch, skipping: skipped, numbered: false, jsonb: true, send: send)
            }
            try session.execute("RELEASE SAVEPOINT sluice_copy")
            return true
        } catch let e as SluiceError where e.code == .schemaViolation || e.code == .constraint {
            try session.execute("ROLLBACK TO SAVEPOINT sluice_copy; RELEASE SAVEPOINT sluice_copy")
            logger.debug("the table refused a row of the batch; it is loaded through the stage, which finds the row", metadata: ["error": "\(e.message)"])
            return false
        } catch let e as SluiceError where e.code != .connection {
            // Any other refusal of the COPY itself: the stage's way, from now on, for this table
            // (a failure there is reported as it always was).
            try session.execute("ROLLBACK TO SAVEPOINT sluice_copy; RELEASE SAVEPOINT sluice_copy")
            straightRefused.insert(loadTable)
            logger.info("the table refused a COPY; its rows go through the stage", metadata: ["table": "\(loadTable)", "error": "\(e.message)"])
            return false
        }
    }

    /// Moves stage rows `rows` into the load table under a savepoint. When PostgreSQL refuses
    /// them for data reasons (a constraint, a value out of range), the range is halved until the
    /// refused rows are alone: a few bad rows cost a few statements each, not one per row.
    func moveRows(_ rows: Range<Int>, sql: String, skipped: Set<Int>, session: PostgresSession) throws -> [RowFailure] {
        guard !rows.isEmpty else { return [] }
        try session.execute("SAVEPOINT sluice_move")
        do {
            try session.query(sql, [String(rows.lowerBound), String(rows.upperBound)])
            try session.execute("RELEASE SAVEPOINT sluice_move")
            return []
        } catch let e as SluiceError where e.code == .schemaViolation || e.code == .constraint {
            try session.execute("ROLLBACK TO SAVEPOINT sluice_move; RELEASE SAVEPOINT sluice_move")
            if rows.count == 1 {
                return skipped.contains(rows.lowerBound)
                    ? []
                    : [
                        RowFailure(
                            row: rows.lowerBound,
                            error: SluiceError(
                                e.code, "\(options.table) refused the row: \(e.message)", location: e.location, retryable: false))
                    ]
            }
            let middle = rows.lowerBound + rows.count / 2
            return try moveRows(rows.lowerBound..<middle, sql: sql, skipped: skipped, session: session)
                + moveRows(middle..<rows.upperBound, sql: sql, skipped: skipped, session: session)
        }
    }

    /// `INSERT … SELECT` of the stage rows numbered [$1, $2) into the load table.
    func moveSQL(_ schema: Schema) -> String {
        let columns = schema.fields.map { SQLText.identifier($0.name) }.joined(separator: ", ")
        let target = SQLText.qualified(loadTable)
        let range = "sluice_row >= $1::int4 AND sluice_row < $2::int4"
        switch options.mode {
        case .append, .replace, .apply:
            return "INSERT INTO \(target) (\(columns)) SELECT \(columns) FROM pg_temp.sluice_stage WHERE \(range)"
        case .upsert:
            let keys = options.key.map(SQLText.identifier).joined(separator: ", ")
            let others = schema.fields.map(\.name).filter { !options.key.contains($0) }
            let action =
                others.isEmpty
                ? "DO NOTHING"
                : "DO UPDATE SET " + others.map { "\(SQLText.identifier($0)) = EXCLUDED.\(SQLText.identifier($0))" }.joined(separator: ", ")
            // The last version of a key within the rows wins (one statement may not update a row twice).
            let latest = "SELECT DISTINCT ON (\(keys)) * FROM pg_temp.sluice_stage WHERE \(range) ORDER BY \(keys), sluice_row DESC"
            if let soft = options.softDelete, schema.fields.contains(where: { $0.name == soft }) {
                // Soft deletes: a key whose last version has the column set leaves the target.
                let match = options.key.map { "t.\(SQLText.identifier($0)) = l.\(SQLText.identifier($0))" }.joined(separator: " AND ")
                let deleted = "l.\(SQLText.identifier(soft)) IS NOT NULL"
                return "WITH l AS (\(latest)), gone AS (DELETE FROM \(target) t USING l WHERE \(deleted) AND \(match)) "
                    + "INSERT INTO \(target) (\(columns)) SELECT \(columns) FROM l WHERE NOT (\(deleted)) ON CONFLICT (\(keys)) \(action)"
            }
            return "INSERT INTO \(target) (\(columns)) SELECT \(columns) FROM (\(latest)) l ON CONFLICT (\(keys)) \(action)"
        }
    }

    /// (Re)creates the temporary stage table when the batch's schema differs from the last one.
    func prepareStage(_ schema: Schema, session: PostgresSession) throws {
        guard stageSchema != schema else { return }
        let columns = schema.fields.map { "\(SQLText.identifier($0.name)) \(PostgresCopyEncoder.stageType($0.type))" }
        try session.execute(
            "DROP TABLE IF EXISTS pg_temp.sluice_stage; CREATE TEMP TABLE sluice_stage (sluice_row int4 NOT NULL, \(columns.joined(separator: ", ")))")
        stageSchema = schema
    }

    /// Makes sure the load table exists and has every column of `schema`, at a type that holds it:
    /// creates it, adds missing columns, widens narrower ones (int → float/decimal, date → timestamp).
    func prepareLoadTable(for schema: Schema, session: PostgresSession) throws {
        if loadColumns == nil { loadColumns = try columns(of: loadTable, session: session) }
        if loadColumns!.isEmpty {
            try createLoadTable(schema, session: session)
            loadColumns = try columns(of: loadTable, session: session)
        }
        for field in schema.fields {
            let name = SQLText.identifier(field.name)
            let table = SQLText.qualified(loadTable)
            guard let existing = loadColumns![field.name] else {
                try session.execute("ALTER TABLE \(table) ADD COLUMN \(name) \(PostgresCopyEncoder.sqlType(field.type))")
                loadColumns![field.name] = PostgresCopyEncoder.sqlType(field.type)
                logger.info("column added to the target", metadata: ["table": "\(loadTable)", "column": "\(field.name)", "type": "\(field.type)"])
                continue
            }
            if let current = PostgresCopyEncoder.sluiceType(sqlType: existing), current != field.type,
                SchemaDiff.canWiden(current, to: field.type)
            {
                let type = PostgresCopyEncoder.sqlType(field.type)
                try session.execute("ALTER TABLE \(table) ALTER COLUMN \(name) TYPE \(type) USING \(name)::\(type)")
                loadColumns![field.name] = type
                logger.info(
                    "column widened in the target", metadata: ["table": "\(loadTable)", "column": "\(field.name)", "from": "\(existing)", "to": "\(type)"])
            }
        }
    }

    func createLoadTable(_ schema: Schema, session: PostgresSession) throws {
        if options.mode == .replace {
            // Stage the next version of the target like the current one (indexes, defaults, constraints).
            let target = try columns(of: options.table, session: session)
            if !target.isEmpty {
                try session.execute("CREATE TABLE \(SQLText.qualified(loadTable)) (LIKE \(SQLText.qualified(options.table)) INCLUDING ALL)")
                stagingReady = true
                return
            }
        }
        guard options.create else {
            throw SluiceError(
                .configuration, "table \(options.table) does not exist; create it, or let Sluice create it (`create: true`)",
                location: "sink.postgres.table", retryable: false)
        }
        try session.execute("SELECT pg_advisory_xact_lock(\(Self.ddlLock))")
        if let schemaName = loadTable.schema {
            try session.ensureSchema(schemaName)
        }
        var definitions = schema.fields.map { f in
            "\(SQLText.identifier(f.name)) \(PostgresCopyEncoder.sqlType(f.type))" + (options.key.contains(f.name) ? " NOT NULL" : "")
        }
        for k in options.key where !schema.fields.contains(where: { $0.name == k }) {
            throw SluiceError(
                .configuration, "key column '\(k)' is not in the data (fields: \(schema.fields.map(\.name).joined(separator: ", ")))",
                location: "sink.postgres.key", retryable: false)
        }
        if !options.key.isEmpty {
            definitions.append("PRIMARY KEY (\(options.key.map(SQLText.identifier).joined(separator: ", ")))")
        }
        try session.execute("CREATE TABLE IF NOT EXISTS \(SQLText.qualified(loadTable)) (\(definitions.joined(separator: ", ")))")
        if options.mode == .replace { stagingReady = true }
        logger.info("table created", metadata: ["table": "\(loadTable)", "columns": "\(schema.fields.count)"])
    }

    /// Column name → `format_type` of a table (empty when it does not exist).
    func columns(of table: QualifiedName, session: PostgresSession) throws -> [String: String] {
        let r = try session.query(
            """
            SELECT a.attname, format_type(a.atttypid, a.atttypmod) FROM pg_attribute a
            JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE n.nspname = $1 AND c.relname = $2 AND a.attnum > 0 AND NOT a.attisdropped
            """, [table.schemaOrDefault, table.name])
        var result: [String: String] = [:]
        for i in 0..<r.rows { result[r.string(i, 0)!] = r.string(i, 1)! }
        return result
    }

    // MARK: Committing

    func prepareCommit(_ commit: inout StateCommit) async throws {
        if broken { try await reconnect() }
        if !(committing != nil && landed) {
            // A fresh commit (a retried one whose COMMIT landed before the connection broke was
            // recognised by ``reconnect()`` by its id and needs nothing more).
            let id = UUID().uuidString
            committing = id
            let pending = commit
            let stateTable = self.stateTable
            do {
                try await connection.run { [self] session in
                    if !inTransaction {
                        try session.execute("BEGIN")
                        inTransaction = true
                    }
                    if options.mode == .replace && pending.extractComplete { try swapStaging(session: session) }
                    // The checkpoint before this commit is the one stored with the data (locked:
                    // another worker of the same pipeline may have committed since this one read it).
                    let r = try session.query(
                        "SELECT checkpoint_after::text FROM \(SQLText.qualified(stateTable)) WHERE pipeline = $1 FOR UPDATE",
                        [pending.pipeline])
                    let before = r.rows == 1 ? SinkStateRow.decode([String: String].self, r.string(0, 0)) ?? [:] : [:]
                    if context.exclusive, before != lastAfter {
                        // Another writer under this name (a second replay) committed since: this
                        // commit would deliver its rows a second time.
                        try session.execute("ROLLBACK")
                        inTransaction = false
                        throw SluiceError(
                            .conflict,
                            "another writer committed to \(options.table) under \(pending.pipeline) meanwhile (a second replay?); nothing of this commit was kept",
                            location: "\(options.table)", retryable: false)
                    }
                    let after = before.merging(pending.checkpoint) { $1 }
                    try session.query(
                        """
                        INSERT INTO \(SQLText.qualified(stateTable)) (pipeline, target, checkpoint_before, checkpoint_after, pending, commit_id, committed_at)
                        VALUES ($1, $2, $3::jsonb, $4::jsonb, $5::jsonb, $6, now())
                        ON CONFLICT (pipeline) DO UPDATE SET target = EXCLUDED.target, checkpoint_before = EXCLUDED.checkpoint_before,
                            checkpoint_after = EXCLUDED.checkpoint_after, pending = EXCLUDED.pending, commit_id = EXCLUDED.commit_id,
                            committed_at = EXCLUDED.committed_at
                        """,
                        [
                            pending.pipeline, options.table.description, SinkStateRow.encode(before), SinkStateRow.encode(after),
                            SinkStateRow.encode(pending), id,
                        ])
                    try session.execute("COMMIT")
                    inTransaction = false
                    lastAfter = after
                }
            } catch let error as SluiceError where error.code == .conflict && context.exclusive {
                committing = nil
                held.removeAll()
                heldBytes = 0
                heldRows = 0
                throw error
            } catch {
                broken = true  // the transaction is gone: reconnect and replay
                throw error
            }
        }
        committing = nil
        landed = false
        held.removeAll()
        heldBytes = 0
        heldRows = 0
    }

    /// replace: the staging table becomes the target, atomically with the commit.
    func swapStaging(session: PostgresSession) throws {
        let target = options.table
        if !stagingReady {
            // An empty extract: the new version of the table is empty.
            let existing = try columns(of: target, session: session)
            guard !existing.isEmpty else { return }
            try session.execute("CREATE TABLE \(SQLText.qualified(options.stagingTable)) (LIKE \(SQLText.qualified(target)) INCLUDING ALL)")
        }
        let old = String((target.name + "__sluice_old").prefix(63))
        let exists = try session.query("SELECT to_regclass($1) IS NOT NULL", [SQLText.qualified(target)]).string(0, 0) == "t"
        if exists {
            try session.execute("ALTER TABLE \(SQLText.qualified(target)) RENAME TO \(SQLText.identifier(old))")
        }
        try session.execute("ALTER TABLE \(SQLText.qualified(options.stagingTable)) RENAME TO \(SQLText.identifier(target.name))")
        if exists {
            try session.execute("DROP TABLE \(SQLText.qualified(QualifiedName(schema: target.schema, name: old)))")
        }
        stagingReady = false
        loadColumns = nil
        logger.info("table replaced by the new extract", metadata: ["table": "\(target)"])
    }

    // MARK: Connection loss

    /// Opens a new connection. A commit that was in flight either landed (the target's state
    /// row carries its id) or did not (the held rows are loaded again in a new transaction).
    /// The writer stays broken until all of that succeeded.
    func reconnect() async throws {
        connection = try await PostgresConnection.connect(options.url)
        inTransaction = false
        loadColumns = nil
        stageSchema = nil
        applyTargets.removeAll()
        let pipeline = context.pipeline
        let stateTable = self.stateTable
        if let committing {
            let stored = try await connection.run { session -> String? in
                try session.query("SELECT commit_id FROM \(SQLText.qualified(stateTable)) WHERE pipeline = $1", [pipeline]).string(0, 0)
            }
            if stored == committing {
                logger.info("the commit in flight when the connection broke had landed")
                landed = true
                broken = false
                return  // prepareCommit finishes it
            }
            self.committing = nil
        }
        if options.mode == .replace {
            let staging = options.stagingTable
            stagingReady = try await connection.run { session in
                try session.query("SELECT to_regclass($1) IS NOT NULL", [SQLText.qualified(staging)]).string(0, 0) == "t"
            }
        }
        let batches = held
        logger.info("reconnected; loading the rows of the interrupted transaction again", metadata: ["batches": "\(batches.count)"])
        for batch in batches { _ = try await load(batch) }
        broken = false
    }

    func close() async {
        if inTransaction {
            _ = try? await connection.run { try $0.execute("ROLLBACK") }
            inTransaction = false
        }
    }
}
