import Foundation
import Logging
import SluiceCore

/// Options of `source: {postgres_cdc: {...}}`; each one is declared, with its default, in ``PostgresCDCSource/spec``.
public struct PostgresCDCOptions: Decodable, Sendable {
    public enum SnapshotMode: String, Sendable { case initial, never }

    public var url: PostgresURL
    public var slot: String
    public var publication: String
    public var tables: [QualifiedName] = []
    public var snapshot: SnapshotMode = .initial
    public var snapshotChunk = 10_000
    /// Bytes of WAL the slot may hold back before a warning (gauge `sluice_cdc_retained_wal_bytes`).
    public var retainedWALWarning: Int64 = 1 << 30

    enum CodingKeys: String, CodingKey {
        case url, slot, publication, tables, snapshot
        case snapshotChunk = "snapshot_chunk"
        case retainedWALWarning = "retained_wal_warning"
    }

    public init(url: String, slot: String, publication: String, tables: [QualifiedName] = []) throws {
        self.url = try PostgresURL(url)
        self.slot = slot
        self.publication = publication
        self.tables = tables
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        url = try c.decodePostgresURL(forKey: .url)
        let name = #"^[a-z_][a-z0-9_]{0,62}$"#
        slot = try c.decode(String.self, forKey: .slot)
        guard slot.range(of: name, options: .regularExpression) != nil else {
            throw try c.superDecoder(forKey: .slot).configError("a slot name is lower-case letters, digits and '_' (at most 63)")
        }
        publication = try c.decode(String.self, forKey: .publication)
        guard publication.range(of: name, options: .regularExpression) != nil else {
            throw try c.superDecoder(forKey: .publication).configError("a publication name is lower-case letters, digits and '_' (at most 63)")
        }
        for t in try c.decodeIfPresent([String].self, forKey: .tables) ?? [] {
            guard let q = QualifiedName(parsing: t) else {
                throw try c.superDecoder(forKey: .tables).configError("'\(t)' is not a table name (table or schema.table)")
            }
            tables.append(q)
        }
        if let m = try c.decodeIfPresent(String.self, forKey: .snapshot) {
            guard let parsed = SnapshotMode(rawValue: m) else {
                throw try c.superDecoder(forKey: .snapshot).configError("unknown snapshot mode '\(m)'; use initial or never")
            }
            snapshot = parsed
        }
        snapshotChunk = try c.decodeIfPresent(Int.self, forKey: .snapshotChunk, in: 1...1_000_000) ?? snapshotChunk
        if let size = try c.decodeIfPresent(ConfigByteSize.self, forKey: .retainedWALWarning) { retainedWALWarning = Int64(size.bytes) }
    }
}

/// Log-based change data capture from PostgreSQL: reads a logical replication slot with the
/// built-in `pgoutput` plugin over the streaming replication protocol (libpq, CopyBoth) and
/// emits one change event per row change (see ``ChangeEvents``), transaction by transaction in
/// commit order. The checkpoint (``CDCPosition``) is the end LSN of the last committed
/// transaction plus where snapshots stand; the slot is told that LSN (standby status update) only
/// after the sink has committed it, so WAL is released exactly as far as it is durable
/// downstream. After a crash, transactions at or below the checkpoint that the server sends
/// again are skipped.
///
/// Snapshots (`snapshot: initial`): when Sluice creates the slot, it exports the slot's snapshot
/// and reads the existing rows in it, chunk by chunk in key order (op `r`), then streams from the
/// slot's start: no change is missed or seen twice. When that is interrupted, and for tables
/// that join the publication later, the rest is read while streaming, with watermarks (DBLog's
/// method): a low watermark message is written to the WAL, the chunk is read, a high watermark
/// written; streamed changes between the two drop their rows from the chunk (the stream has the
/// newer version) and the rest is emitted at the high watermark.
public struct PostgresCDCSource: Source {
    public var options: PostgresCDCOptions

    public var isContinuous: Bool { true }

    public init(options: PostgresCDCOptions) { self.options = options }

    public static let spec = ComponentSpec(
        type: "postgres_cdc",
        summary: "change data capture from a PostgreSQL logical replication slot (pgoutput): a snapshot of existing rows, then one event per row change",
        options: [
            OptionSpec(
                "url", .string, required: true, example: #""${PG_URL}""#, secret: true,
                "`postgres://user:password@host:5432/db`, as for the `postgres` source; the role needs `REPLICATION` and the server `wal_level = logical` (checked before any data moves). The password is never logged."
            ),
            OptionSpec(
                "slot", .string, required: true, example: "sluice_orders",
                "The logical replication slot (lower-case letters, digits and `_`, at most 63), created with `pgoutput` when missing; a slot whose WAL is lost stops the pipeline."
            ),
            OptionSpec(
                "publication", .string, required: true, example: "sluice_orders",
                "The publication (lower-case letters, digits and `_`, at most 63), created `FOR TABLE` the `tables` when missing."),
            OptionSpec(
                "tables", .list(.string), example: "[public.orders, public.order_items]",
                "Tables (`table` or `schema.table`) to publish when Sluice creates the publication; needed when it does not exist."),
            OptionSpec(
                "snapshot", .choice(["initial", "never"]), default: "initial", example: "never",
                "`initial` reads the existing rows first (op `r`), then the stream; `never` streams changes only."),
            OptionSpec(
                "snapshot_chunk", .integer(1...1_000_000), default: "10000", example: "50000",
                "Rows per snapshot chunk; each chunk is committed, and a crash resumes after the last one."),
            OptionSpec(
                "retained_wal_warning", .byteSize, default: "1GB", example: "10GB",
                "Warn when the slot holds back more WAL than this (gauge `sluice_cdc_retained_wal_bytes`)."),
        ],
        example: """
            source:
              postgres_cdc: { url: "${PG_URL}", slot: sluice_orders, publication: sluice_orders, tables: [public.orders] }
            """,
        capabilities: [.cdcAdministration],
        exampleFile: "examples/postgres-cdc.yaml"
    )

    public static let factory = SourceFactory(spec: spec) { config, _ in
        PostgresCDCSource(options: try config.decodeOptions(PostgresCDCOptions.self))
    }

    var partition: String { "cdc:\(options.slot)" }

    /// The `pg_logical_emit_message` prefix of snapshot watermarks.
    static let watermarkPrefix = "sluice.snapshot"

    public func checkReachable() async throws {
        let connection = try await PostgresConnection.connect(options.url)
        _ = try await connection.run { try Self.checkSettings($0) }
    }

    static func checkSettings(_ s: PostgresSession) throws {
        let level = try s.query("SHOW wal_level").string(0, 0) ?? ""
        guard level == "logical" else {
            throw SluiceError(
                .configuration,
                "the server has wal_level = \(level); log-based CDC needs wal_level = logical "
                    + "(ALTER SYSTEM SET wal_level = logical; then restart PostgreSQL)", retryable: false)
        }
    }

    /// What ``prepare(_:)`` found: the database, whether the slot exists, the published tables.
    struct Prepared: Sendable {
        var database: String
        var slotExists: Bool
        /// The slot's `confirmed_flush_lsn`: its start point until a commit was confirmed.
        var slotConfirmed: UInt64?
        var tables: [String]
    }

    /// Creates the publication when missing; checks the slot (refusing a lost one).
    func prepare(_ s: PostgresSession) throws -> Prepared {
        try Self.checkSettings(s)
        let o = options
        if try s.query("SELECT 1 FROM pg_publication WHERE pubname = $1", [o.publication]).rows == 0 {
            guard !o.tables.isEmpty else {
                throw SluiceError(.configuration, "publication \(o.publication) does not exist; name the `tables` to create it for", retryable: false)
            }
            try s.execute("CREATE PUBLICATION \(SQLText.identifier(o.publication)) FOR TABLE \(o.tables.map(SQLText.qualified).joined(separator: ", "))")
        }
        let slot = try s.query("SELECT plugin, wal_status, confirmed_flush_lsn::text FROM pg_replication_slots WHERE slot_name = $1", [o.slot])
        if slot.rows > 0 {
            guard slot.string(0, 0) == "pgoutput" else {
                throw SluiceError(.configuration, "slot \(o.slot) uses the \(slot.string(0, 0) ?? "?") plugin; Sluice reads pgoutput slots", retryable: false)
            }
            if slot.string(0, 1) == "lost" {
                throw SluiceError(
                    .corruptState,
                    "slot \(o.slot) lost the WAL it needed (wal_status = lost): changes were missed. "
                        + "Take a new snapshot: `sluice cdc resnapshot PIPELINE` drops the slot and the checkpoint, the next run starts over", retryable: false)
            }
        }
        let tables = try s.query("SELECT schemaname || '.' || tablename FROM pg_publication_tables WHERE pubname = $1 ORDER BY 1", [o.publication])
        return Prepared(
            database: try s.query("SELECT current_database()").string(0, 0) ?? "", slotExists: slot.rows > 0,
            slotConfirmed: slot.rows > 0 ? slot.string(0, 2).flatMap(LSN.parse) : nil,
            tables: (0..<tables.rows).compactMap { tables.string($0, 0) })
    }

    public func makeReader(resumingFrom checkpoint: Checkpoint, context: SourceContext) async throws -> any SourceReader {
        let setup = try await PostgresConnection.connect(options.url)
        let prepared = try await setup.run { [self] in try prepare($0) }
        let stored = checkpoint[partition]
        let position = stored.flatMap(CDCPosition.parse)
        if stored != nil && position == nil {
            throw SluiceError(.corruptState, "the checkpoint of \(partition) is not a CDC position: \(stored!)", retryable: false)
        }
        let snapshots = options.snapshot == .initial
        if !prepared.slotExists {
            if let position {
                throw SluiceError(
                    .corruptState,
                    "slot \(options.slot) does not exist, but this pipeline streamed from it up to \(LSN.format(position.lsn)): "
                        + "the changes since are gone. Take a new snapshot with `sluice cdc resnapshot PIPELINE`", retryable: false)
            }
            // A new slot: changes from its start point on, and (exported) the rows as they were there.
            // A connection that breaks here fails the start; the runner starts again, and then
            // finds the slot if the server made it (its tables are read with watermarks) or not.
            let replication = try await PostgresConnection.connect(options.url.replication)
            try await context.hooks.hold(at: Self.holdCreateSlot, logger: context.logger)
            let command =
                "CREATE_REPLICATION_SLOT \(SQLText.identifier(options.slot)) LOGICAL pgoutput" + (snapshots ? " (SNAPSHOT 'export')" : " (SNAPSHOT 'nothing')")
            let created = try await replication.run { s -> (String?, String?) in
                let r = try s.simpleQuery(command)
                return (r.string(0, 1), r.string(0, 2))
            }
            guard let start = created.0.flatMap(LSN.parse) else {
                throw SluiceError(.internalError, "CREATE_REPLICATION_SLOT returned no consistent point")
            }
            context.logger.info("replication slot created", metadata: ["slot": "\(options.slot)", "at": "\(LSN.format(start))"])
            var fresh = CDCPosition(lsn: start, known: prepared.tables, pending: snapshots ? prepared.tables : [], exported: snapshots)
            fresh.epoch = start
            if snapshots, let name = created.1 {
                do {
                    let snapshot = try await importSnapshot(name, context: context)
                    context.logger.info("reading the snapshot exported with the slot", metadata: ["tables": "\(fresh.pending.count)"])
                    return PostgresCDCReader(
                        source: self, replication: replication, streaming: false, exported: snapshot,
                        database: prepared.database, position: fresh, context: context)
                } catch let error as SluiceError where error.isRetryable || error.sqlState == "22023" {
                    // An exported snapshot can be imported only while the transaction of the
                    // connection that created the slot lasts: that connection broke (22023, invalid
                    // snapshot identifier), or the one importing it did. The tables are read while
                    // streaming, with watermarks, as after a crash in the middle of the snapshot.
                    context.logger.warning(
                        "the snapshot exported with the slot could not be imported; reading the tables while streaming",
                        metadata: ["error": "\(error)", "tables": "\(fresh.pending.count)"])
                    fresh.exported = false
                    let stream = try await stream(from: start, context: context)
                    context.logger.info(
                        "streaming changes", metadata: ["slot": "\(options.slot)", "from": "\(LSN.format(start))", "snapshots": "\(fresh.pending.count)"])
                    return PostgresCDCReader(
                        source: self, replication: stream, streaming: true, exported: nil,
                        database: prepared.database, position: fresh, context: context)
                }
            }
            try await context.hooks.hold(at: Self.holdStartReplication, logger: context.logger)
            try await replication.run { [self] in try $0.startReplication(startCommand(from: start)) }
            return PostgresCDCReader(
                source: self, replication: replication, streaming: true, exported: nil,
                database: prepared.database, position: fresh, context: context)
        }
        var p = position ?? CDCPosition(lsn: 0, known: [], pending: [])
        // Tables the pipeline has not delivered yet (an existing slot without a checkpoint, or
        // tables added to the publication since): snapshotted while streaming.
        let known = Set(p.known ?? prepared.tables)
        let added = prepared.tables.filter { !known.contains($0) }
        p.known = (p.known ?? prepared.tables) + added
        if snapshots { p.queue(added) }
        // No checkpoint: the slot's confirmed position is still its start point (the reader
        // confirms past it only after a commit), the epoch of a run killed before its first.
        if position == nil { p.epoch = prepared.slotConfirmed ?? 0 }
        if p.exported && !p.pending.isEmpty {
            context.logger.info("the exported snapshot was interrupted; reading the rest while streaming", metadata: ["tables": "\(p.pending.count)"])
        }
        p.exported = false
        let replication = try await stream(from: p.lsn, context: context)
        context.logger.info("streaming changes", metadata: ["slot": "\(options.slot)", "from": "\(LSN.format(p.lsn))", "snapshots": "\(p.pending.count)"])
        return PostgresCDCReader(
            source: self, replication: replication, streaming: true, exported: nil,
            database: prepared.database, position: p, context: context)
    }

    func startCommand(from lsn: UInt64) -> String {
        "START_REPLICATION SLOT \(SQLText.identifier(options.slot)) LOGICAL \(LSN.format(lsn)) "
            + "(proto_version '1', publication_names \(SQLText.literal(SQLText.identifier(options.publication))), messages 'true')"
    }

    /// A replication connection streaming the slot from `lsn` (the server starts at the later of
    /// it and the slot's confirmed position).
    func stream(from lsn: UInt64, context: SourceContext) async throws -> PostgresConnection {
        let replication = try await PostgresConnection.connect(options.url.replication)
        try await context.hooks.hold(at: Self.holdStartReplication, logger: context.logger)
        let command = startCommand(from: lsn)
        try await replication.run { try $0.startReplication(command) }
        return replication
    }

    /// A connection in a read-only transaction on the snapshot `name` exported with the slot.
    func importSnapshot(_ name: String, context: SourceContext) async throws -> PostgresConnection {
        try await context.hooks.hold(at: Self.holdImportSnapshot, logger: context.logger)
        let snapshot = try await PostgresConnection.connect(options.url)
        try await snapshot.run { s in
            try s.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            try s.execute("SET TRANSACTION SNAPSHOT \(SQLText.literal(name))")
        }
        return snapshot
    }

    // Test hooks (``TestHooks``): the steps of a start at which a test breaks a connection.
    /// Before `CREATE_REPLICATION_SLOT`, on a connected replication connection.
    static let holdCreateSlot = "postgres_cdc.create_slot"
    /// After the slot is created, before its exported snapshot is imported.
    static let holdImportSnapshot = "postgres_cdc.import_snapshot"
    /// After the first chunk of the exported snapshot is handed over, before the next is read.
    static let holdExportedChunk = "postgres_cdc.exported_chunk"
    /// Before `START_REPLICATION` (the first stream, or the hand-over from the exported snapshot).
    static let holdStartReplication = "postgres_cdc.start_replication"
}
