import SluiceCore

/// `mode: apply`: change events (the envelope of `postgres_cdc`: `op`, `table`, `key`, `before`,
/// `after`) applied to current-state tables.
///
/// A batch is staged like any other (binary COPY into the temporary stage table); then, per
/// source table, its net effect is computed in SQL and applied with three set-based statements:
/// delete the keys whose last change is a delete, update the rows that exist, insert the rest.
/// Within a batch the changes of one key are folded in order: a later change wins, an update
/// that leaves a column out (an unchanged TOASTed value) keeps the column's current value, an
/// update that changes the key deletes the old key, and a TRUNCATE empties the table before the
/// changes that follow it. Everything runs in the transaction that also stores the checkpoint,
/// so a current-state table is always exactly the source as of a committed transaction.
extension PostgresSinkWriter {
    /// A target table of `apply`: its columns (name → `format_type`) and key columns.
    struct ApplyTarget {
        var columns: [String: String]
        var key: [String]
    }

    func applyChanges(_ batch: RecordBatch, session: PostgresSession) throws -> [RowFailure] {
        for name in ["op", "table", "before", "after"] where batch.schema.index(of: name) == nil {
            throw SluiceError(
                .configuration, "mode: apply takes change events (op, table, key, before, after: the output of postgres_cdc); the data has no '\(name)'",
                location: "sink.postgres.mode", retryable: false)
        }
        try prepareStage(batch.schema, session: session)
        let columns = batch.schema.fields.map { SQLText.identifier($0.name) }
        try session.copyIn("COPY pg_temp.sluice_stage (sluice_row, \(columns.joined(separator: ", "))) FROM STDIN (FORMAT binary)") { send in
            try PostgresCopyEncoder.stream(batch, skipping: [], send: send)
        }
        // Source tables in order of first appearance, and the last TRUNCATE of each.
        let ops = batch.column(named: "op")!, tables = batch.column(named: "table")!
        var order: [String] = []
        var lastTruncate: [String: Int] = [:]
        // The columns each table's new row images carry, read here (nil for a table with an
        // image this reader does not read plainly: the server is asked then).
        var carried: [String: Set<String>?] = [:]
        let afters = batch.column(named: "after")!
        // Text row images only (events from elsewhere may type the column otherwise: the server reads those).
        let imagesAreText = afters.type == .json || afters.type == .string
        // Tables with updates whose `after` is not a whole row (`source.partial`).
        let sources = batch.column(named: "source").flatMap { $0.type == .json || $0.type == .string ? $0 : nil }
        // A cheap look for the key; the server reads the value (`source.partial = true`).
        let marker = Array("\"partial\"".utf8)
        var partial: Set<String> = []
        for row in 0..<batch.count {
            let table = tables.withBytes(at: row) { String(decoding: $0, as: UTF8.self) }
            if lastTruncate[table] == nil {
                order.append(table)
                lastTruncate[table] = -1
                carried[table] = Set<String>()
            }
            if ops.withBytes(at: row, { $0.count == 1 && $0[0] == UInt8(ascii: "t") }) { lastTruncate[table] = row }
            if let sources, !sources.isNull(row), sources.withBytes(at: row, { $0.firstRange(of: marker) != nil }) { partial.insert(table) }
            if !imagesAreText {
                carried[table] = .some(nil)
            } else if !afters.isNull(row), var keys = carried[table] ?? nil {
                carried[table] = afters.withBytes(at: row) { JSONTopLevelKeys.keys($0, into: &keys) } ? keys : nil
            }
        }
        try session.execute("CREATE TEMP TABLE IF NOT EXISTS sluice_net (k jsonb, final text, r jsonb, whole boolean); TRUNCATE pg_temp.sluice_net")
        for source in order {
            let target = try applyTarget(for: source)
            var described = try describeApplyTarget(target, source: source, session: session)
            described = try addMissingColumns(target, described, source: source, carried: carried[source] ?? nil, session: session)
            let after = lastTruncate[source]!
            if after >= 0 {
                try session.execute("TRUNCATE \(SQLText.qualified(target))")
                logger.info("table truncated at the source; emptied", metadata: ["table": "\(target)"])
            }
            try applyNetEffect(target, described, source: source, after: after, partial: partial.contains(source), session: session)
        }
        try session.execute("TRUNCATE pg_temp.sluice_stage")
        return []
    }

    /// The current-state table of `source` (`schema.table`): the sink's `table`, where
    /// `{schema}` and `{table}` stand for the source's.
    func applyTarget(for source: String) throws -> QualifiedName {
        let parts = source.split(separator: ".", maxSplits: 1).map(String.init)
        let (schema, name) = parts.count == 2 ? (parts[0], parts[1]) : ("public", source)
        let t = options.table
        func fill(_ s: String) -> String { s.replacingOccurrences(of: "{schema}", with: schema).replacingOccurrences(of: "{table}", with: name) }
        if !options.isTableTemplate, let only = applySource, only != source {
            throw SluiceError(
                .configuration,
                "changes of \(source) arrived, but table: \(t) already receives those of \(only); "
                    + "map each source table to its own table with a template such as `table: analytics.{table}`",
                location: "sink.postgres.table", retryable: false)
        }
        applySource = source
        return QualifiedName(schema: t.schema.map(fill), name: String(fill(t.name).prefix(63)))
    }

    /// Reads (or creates) the target: its columns and key.
    func describeApplyTarget(_ target: QualifiedName, source: String, session: PostgresSession) throws -> ApplyTarget {
        if let known = applyTargets[target] { return known }
        var existing = try self.columns(of: target, session: session)
        if existing.isEmpty {
            guard options.create else {
                throw SluiceError(
                    .configuration, "table \(target) does not exist; create it, or let Sluice create it (`create: true`)",
                    location: "sink.postgres.table", retryable: false)
            }
            let key = try options.key.isEmpty ? eventKey(source: source, session: session) : options.key
            let types = try columnTypes(source: source, session: session)
            for k in key where types[k] == nil {
                throw SluiceError(.configuration, "key column '\(k)' is not in the changes of \(source)", location: "sink.postgres.key", retryable: false)
            }
            try session.execute("SELECT pg_advisory_xact_lock(\(Self.ddlLock))")
            if let schema = target.schema { try session.ensureSchema(schema) }
            let definitions = types.keys.sorted { (key.firstIndex(of: $0) ?? Int.max, $0) < (key.firstIndex(of: $1) ?? Int.max, $1) }
                .map { "\(SQLText.identifier($0)) \(types[$0]!)\(key.contains($0) ? " NOT NULL" : "")" }
            try session.execute(
                "CREATE TABLE IF NOT EXISTS \(SQLText.qualified(target)) (\(definitions.joined(separator: ", ")), "
                    + "PRIMARY KEY (\(key.map(SQLText.identifier).joined(separator: ", "))))")
            logger.info("current-state table created", metadata: ["table": "\(target)", "key": "\(key)"])
            existing = try self.columns(of: target, session: session)
        }
        var key = try PostgresCatalog.primaryKey(of: target, session: session)
        if key.isEmpty { key = options.key }
        guard !key.isEmpty else {
            throw SluiceError(
                .configuration, "\(target) has no primary key; mode: apply needs one (or `key: [column, …]`) to find the row a change is about",
                location: "sink.postgres.key", retryable: false)
        }
        let described = ApplyTarget(columns: existing, key: key)
        applyTargets[target] = described
        return described
    }

    /// The key columns named by the events' `key` objects (the source's replica identity).
    func eventKey(source: String, session: PostgresSession) throws -> [String] {
        let r = try session.query(
            """
            SELECT k FROM (SELECT key::jsonb AS j FROM pg_temp.sluice_stage WHERE "table" = $1 AND key IS NOT NULL LIMIT 1) s,
            jsonb_object_keys(s.j) k
            """, [source])
        let key = (0..<r.rows).compactMap { r.string($0, 0) }
        guard !key.isEmpty else {
            throw SluiceError(
                .configuration,
                "the changes of \(source) carry no key (REPLICA IDENTITY NOTHING, or no primary key); "
                    + "give the current-state table's key with `key: [column, …]`", location: "sink.postgres.key", retryable: false)
        }
        return key
    }

    /// Column → SQL type inferred from the JSON values of the batch's rows of `source`:
    /// integers → bigint, other numbers → numeric, booleans, objects and arrays → jsonb, the rest
    /// (strings, only nulls) → text. Exact types come from a table created beforehand.
    /// The column types for `source`'s table: the source's own (`source.column_types` of the
    /// events, from `postgres_cdc`), and for columns without one, types inferred from the values.
    func columnTypes(source: String, session: PostgresSession) throws -> [String: String] {
        var types = try inferredTypes(source: source, session: session)
        let hasSource = try session.query(
            "SELECT 1 FROM pg_attribute WHERE attrelid = 'pg_temp.sluice_stage'::regclass AND attname = 'source' AND NOT attisdropped")
        guard hasSource.rows > 0 else {
            logger.warning("the change events carry no column types (no `source`); types are inferred from the values", metadata: ["table": "\(source)"])
            return types
        }
        let r = try session.query(
            """
            SELECT e.key, e.value #>> '{}' FROM (
                SELECT source::jsonb -> 'column_types' AS t FROM pg_temp.sluice_stage
                WHERE "table" = $1 AND source IS NOT NULL AND source::jsonb ? 'column_types' ORDER BY sluice_row DESC LIMIT 1) s,
            jsonb_each(s.t) e WHERE jsonb_typeof(e.value) = 'string'
            """, [source])
        var exact = 0
        for i in 0..<r.rows {
            guard let name = r.string(i, 0), let type = r.string(i, 1) else { continue }
            // Type names come from the events, which may come from anywhere: only known names reach DDL.
            guard PgTypeName.isKnown(type) else {
                logger.warning("a column type in the change events is not one Sluice knows; inferring it", metadata: ["column": "\(name)", "type": "\(type)"])
                continue
            }
            types[name] = type
            exact += 1
        }
        if exact == 0 {
            logger.warning(
                "the change events carry no column types (not from postgres_cdc?); types are inferred from the values", metadata: ["table": "\(source)"])
        }
        return types
    }

    func inferredTypes(source: String, session: PostgresSession) throws -> [String: String] {
        let r = try session.query(
            """
            SELECT e.key, coalesce(CASE
                WHEN bool_and(jsonb_typeof(e.value) IN ('number', 'null')) AND bool_or(jsonb_typeof(e.value) = 'number')
                    THEN CASE WHEN bool_and(jsonb_typeof(e.value) = 'null' OR e.value::text ~ '^-?[0-9]{1,18}$') THEN 'bigint' ELSE 'numeric' END
                WHEN bool_and(jsonb_typeof(e.value) IN ('boolean', 'null')) AND bool_or(jsonb_typeof(e.value) = 'boolean') THEN 'boolean'
                WHEN bool_and(jsonb_typeof(e.value) IN ('object', 'array', 'null')) AND bool_or(jsonb_typeof(e.value) <> 'null') THEN 'jsonb'
                END, 'text')
            FROM pg_temp.sluice_stage s, jsonb_each(coalesce(s.after, s.before)::jsonb) e
            WHERE s."table" = $1 GROUP BY e.key
            """, [source])
        var types: [String: String] = [:]
        for i in 0..<r.rows { types[r.string(i, 0)!] = r.string(i, 1)! }
        return types
    }

    /// Adds the columns that changes carry but the target lacks (an `ALTER TABLE … ADD COLUMN`
    /// at the source arrives as a new column in the changes).
    /// `carried`: the columns the batch's row images of `source` carry, when the client read
    /// them all (else the server lists them).
    func addMissingColumns(
        _ target: QualifiedName, _ described: ApplyTarget, source: String, carried: Set<String>?, session: PostgresSession
    ) throws -> ApplyTarget {
        let names: [String]
        if let carried {
            names = Array(carried)
        } else {
            let r = try session.query(
                """
                SELECT DISTINCT e FROM pg_temp.sluice_stage s, jsonb_object_keys(s.after::jsonb) e WHERE s."table" = $1 AND s.after IS NOT NULL
                """, [source])
            names = (0..<r.rows).compactMap { r.string($0, 0) }
        }
        let missing = names.filter { described.columns[$0] == nil }
        guard !missing.isEmpty else { return described }
        let types = try columnTypes(source: source, session: session)
        var updated = described
        for name in missing.sorted() {
            let type = types[name] ?? "text"
            try session.execute("ALTER TABLE \(SQLText.qualified(target)) ADD COLUMN IF NOT EXISTS \(SQLText.identifier(name)) \(type)")
            updated.columns[name] = type
            logger.info("column added to the current-state table", metadata: ["table": "\(target)", "column": "\(name)", "type": "\(type)"])
        }
        applyTargets[target] = updated
        return updated
    }

    /// Folds the changes of `source` after stage row `after` into one final state per key
    /// (`pg_temp.sluice_net`) and applies it to `target`. Row images are merged only for keys
    /// whose last change is not a delete, and only where a key has several since its last
    /// delete or whole row (`live`, `n > 1`): a key changed once in the batch keeps its image.
    /// With `partial` (the batch has updates of this table marked `source.partial`), a key the
    /// target does not hold is inserted only if one of its images is a whole row: an update
    /// without the columns it left unchanged cannot make the row (a snapshot read brings it).
    func applyNetEffect(_ target: QualifiedName, _ described: ApplyTarget, source: String, after: Int, partial: Bool, session: PostgresSession) throws {
        // Whether a change's image is a whole row: not an update marked partial.
        let whole = partial ? "(op <> 'u' OR source IS NULL OR (source::jsonb -> 'partial') IS DISTINCT FROM 'true'::jsonb)" : "true"
        let keyOf = { (json: String) in
            "jsonb_build_object(" + described.key.map { "\(SQLText.literal($0)), \(json)->\(SQLText.literal($0))" }.joined(separator: ", ") + ")"
        }
        if partial {
            // An update that moves a row to a new key without all its columns: the new row's
            // other values are in neither image (PostgreSQL: an unchanged TOAST value, with
            // REPLICA IDENTITY DEFAULT). Refused rather than made with nulls or dropped.
            let moved = try session.query(
                """
                SELECT count(*) FROM pg_temp.sluice_stage WHERE "table" = $1 AND sluice_row > $2::int4 AND op = 'u' AND before IS NOT NULL
                AND NOT \(whole) AND \(keyOf("before::jsonb")) <> \(keyOf("after::jsonb"))
                """, [source, String(after)])
            if let count = moved.string(0, 0).flatMap(Int.init), count > 0 {
                throw SluiceError(
                    .unsupported,
                    "\(count) update(s) of \(source) moved a row to a new key without all its columns (the source did not send the unchanged ones: a TOASTed value under REPLICA IDENTITY DEFAULT), so \(target) cannot hold the moved row exactly; set REPLICA IDENTITY FULL on the source table (ALTER TABLE … REPLICA IDENTITY FULL), then take a new snapshot with `sluice cdc resnapshot PIPELINE`",
                    location: "sink.postgres.mode", retryable: false)
            }
        }
        // Each change touches keys at a position: a delete (of the key, or of the old key of an
        // update that changed it) or a row image (`i` whole row, `u` changed columns).
        try session.query(
            """
            WITH ev AS (
                SELECT sluice_row, op, before::jsonb AS b, after::jsonb AS a, \(whole) AS whole FROM pg_temp.sluice_stage
                WHERE "table" = $1 AND sluice_row > $2::int4 AND op IN ('c', 'r', 'u', 'd')
            ), touch AS (
                SELECT sluice_row * 2 AS pos, \(keyOf("b")) AS k, 'd' AS kind, NULL::jsonb AS r, NULL::boolean AS whole FROM ev WHERE op = 'd'
                UNION ALL
                SELECT sluice_row * 2, \(keyOf("b")), 'd', NULL, NULL FROM ev WHERE op = 'u' AND b IS NOT NULL AND \(keyOf("b")) <> \(keyOf("a"))
                UNION ALL
                SELECT sluice_row * 2 + 1, \(keyOf("a")), CASE WHEN op = 'u' THEN 'u' ELSE 'i' END, a, whole FROM ev WHERE op <> 'd'
            ), w AS (
                SELECT k, pos, kind, r, whole,
                    first_value(kind) OVER (PARTITION BY k ORDER BY pos DESC) AS final,
                    max(pos) FILTER (WHERE kind IN ('d', 'i')) OVER (PARTITION BY k) AS at
                FROM touch
            ), live AS (
                SELECT k, pos, r, whole, count(*) OVER (PARTITION BY k) AS n FROM w
                WHERE final <> 'd' AND kind <> 'd' AND pos >= coalesce(at, -1)
            )
            INSERT INTO pg_temp.sluice_net (k, final, r, whole)
            SELECT DISTINCT k, 'd', NULL::jsonb, NULL::boolean FROM w WHERE final = 'd'
            UNION ALL
            SELECT k, 'u', r, whole FROM live WHERE n = 1
            UNION ALL
            SELECT v.k, 'u', jsonb_object_agg(e.key, e.value ORDER BY v.pos), bool_or(v.whole) FROM live v, jsonb_each(v.r) e WHERE v.n > 1 GROUP BY v.k
            """, [source, String(after)])
        let table = SQLText.qualified(target)
        let match = described.key.map { "t.\(SQLText.identifier($0)) = r.\(SQLText.identifier($0))" }.joined(separator: " AND ")
        try session.execute(
            """
            DELETE FROM \(table) t USING pg_temp.sluice_net n CROSS JOIN LATERAL jsonb_populate_record(NULL::\(table), n.k) r
            WHERE n.final = 'd' AND \(match)
            """)
        let others = described.columns.keys.filter { !described.key.contains($0) }.sorted()
        if !others.isEmpty {
            let set = others.map { c in
                let q = SQLText.identifier(c)
                return "\(q) = CASE WHEN n.r ? \(SQLText.literal(c)) THEN r.\(q) ELSE t.\(q) END"
            }.joined(separator: ", ")
            try session.execute(
                """
                UPDATE \(table) t SET \(set) FROM pg_temp.sluice_net n CROSS JOIN LATERAL jsonb_populate_record(NULL::\(table), n.r) r
                WHERE n.final = 'u' AND \(match)
                """)
        }
        let all = described.columns.keys.sorted().map(SQLText.identifier).joined(separator: ", ")
        let allFromR = described.columns.keys.sorted().map { "r.\(SQLText.identifier($0))" }.joined(separator: ", ")
        try session.execute(
            """
            INSERT INTO \(table) (\(all)) SELECT \(allFromR) FROM pg_temp.sluice_net n CROSS JOIN LATERAL jsonb_populate_record(NULL::\(table), n.r) r
            WHERE n.final = 'u' AND n.whole AND NOT EXISTS (SELECT 1 FROM \(table) t WHERE \(match))
            """)
        if partial {
            let left = try session.query(
                """
                SELECT count(*) FROM pg_temp.sluice_net n CROSS JOIN LATERAL jsonb_populate_record(NULL::\(table), n.k) r
                WHERE n.final = 'u' AND NOT n.whole AND NOT EXISTS (SELECT 1 FROM \(table) t WHERE \(match))
                """)
            if let count = left.string(0, 0).flatMap(Int.init), count > 0 {
                logger.warning(
                    "updates of rows the table does not hold came without their whole row (columns the source did not send: unchanged TOAST values, MySQL binlog_row_image MINIMAL or NOBLOB): those rows were not inserted; a snapshot read of the table brings them (with snapshot: never they stay out, as rows never changed since the start do)",
                    metadata: ["table": "\(target)", "rows": "\(count)"])
            }
        }
        try session.execute("TRUNCATE pg_temp.sluice_net")
    }
}
