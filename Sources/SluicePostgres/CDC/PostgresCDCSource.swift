import Foundation
import Logging
import SluiceCore

/// Options of `source: {postgres_cdc: {...}}`.
///
/// ```yaml
/// source:
///   postgres_cdc:
///     url: ${PG_URL}
///     slot: sluice_orders          # created (pgoutput) when missing
///     publication: sluice_orders   # created for `tables` when missing
///     tables: [public.orders]
/// ```
public struct PostgresCDCOptions: Decodable, Sendable {
    public var url: PostgresURL
    public var slot: String
    public var publication: String
    public var tables: [QualifiedName] = []

    enum CodingKeys: String, CodingKey { case url, slot, publication, tables }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        do {
            url = try PostgresURL(try c.decode(String.self, forKey: .url))
        } catch let e as SluiceError {
            throw try c.superDecoder(forKey: .url).configError(e.message)
        }
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
    }
}

/// Log-based change data capture from PostgreSQL: reads a logical replication slot with the
/// built-in `pgoutput` plugin over the streaming replication protocol (libpq, CopyBoth) and
/// emits one change event per row change (see ``ChangeEvents``), transaction by transaction in
/// commit order. The checkpoint is the end LSN of the last committed transaction; the slot is
/// told that position (standby status update) only after the sink has committed it, so WAL is
/// released exactly as far as it is durable downstream. After a crash, transactions at or
/// below the checkpoint that the server sends again are skipped.
///
/// Not yet: the initial snapshot of existing rows (changes start when the slot is created).
public struct PostgresCDCSource: Source {
    public var options: PostgresCDCOptions

    public var isContinuous: Bool { true }

    public init(options: PostgresCDCOptions) { self.options = options }

    public static let factory = SourceFactory(
        type: "postgres_cdc",
        summary: "change data capture from a PostgreSQL logical replication slot (pgoutput), one event per row change",
        example: """
        source:
          postgres_cdc: { url: "${PG_URL}", slot: sluice_orders, publication: sluice_orders, tables: [public.orders] }
        """
    ) { config, _ in
        PostgresCDCSource(options: try config.decodeOptions(PostgresCDCOptions.self))
    }

    var partition: String { "cdc:\(options.slot)" }

    public func checkReachable() async throws {
        let connection = try await PostgresConnection.connect(options.url)
        _ = try await connection.run { try Self.checkSettings($0) }
    }

    static func checkSettings(_ s: PostgresSession) throws {
        let level = try s.query("SHOW wal_level").string(0, 0) ?? ""
        guard level == "logical" else {
            throw SluiceError(.configuration, "the server has wal_level = \(level); log-based CDC needs wal_level = logical "
                + "(ALTER SYSTEM SET wal_level = logical; then restart PostgreSQL)", retryable: false)
        }
    }

    /// Creates the publication and the slot when missing; refuses a slot whose WAL is lost.
    func prepare(_ s: PostgresSession) throws -> String {
        try Self.checkSettings(s)
        let o = options
        if try s.query("SELECT 1 FROM pg_publication WHERE pubname = $1", [o.publication]).rows == 0 {
            guard !o.tables.isEmpty else {
                throw SluiceError(.configuration, "publication \(o.publication) does not exist; name the `tables` to create it for", retryable: false)
            }
            try s.execute("CREATE PUBLICATION \(SQLText.identifier(o.publication)) FOR TABLE \(o.tables.map(SQLText.qualified).joined(separator: ", "))")
        }
        let slot = try s.query("SELECT plugin, wal_status FROM pg_replication_slots WHERE slot_name = $1", [o.slot])
        if slot.rows == 0 {
            try s.query("SELECT pg_create_logical_replication_slot($1, 'pgoutput')", [o.slot])
        } else {
            guard slot.string(0, 0) == "pgoutput" else {
                throw SluiceError(.configuration, "slot \(o.slot) uses the \(slot.string(0, 0) ?? "?") plugin; Sluice reads pgoutput slots", retryable: false)
            }
            if slot.string(0, 1) == "lost" {
                throw SluiceError(.corruptState, "slot \(o.slot) lost the WAL it needed (wal_status = lost): changes were missed. "
                    + "Drop the slot and take a new snapshot of the tables", retryable: false)
            }
        }
        return try s.query("SELECT current_database()").string(0, 0) ?? ""
    }

    public func makeReader(resumingFrom checkpoint: Checkpoint, context: SourceContext) async throws -> any SourceReader {
        let setup = try await PostgresConnection.connect(options.url)
        let database = try await setup.run { [self] in try prepare($0) }
        let start = checkpoint[partition].flatMap(LSN.parse) ?? 0
        let replication = try await stream(from: start)
        context.logger.info("streaming changes", metadata: ["slot": "\(options.slot)", "from": "\(LSN.format(start))"])
        return PostgresCDCReader(source: self, connection: replication, database: database, committedLSN: start, context: context)
    }

    /// A replication connection streaming the slot from `lsn` (the server starts at the later of
    /// it and the slot's confirmed position).
    func stream(from lsn: UInt64) async throws -> PostgresConnection {
        let replication = try await PostgresConnection.connect(options.url.replication)
        let command = "START_REPLICATION SLOT \(SQLText.identifier(options.slot)) LOGICAL \(LSN.format(lsn)) "
            + "(proto_version '1', publication_names \(SQLText.literal(SQLText.identifier(options.publication))))"
        try await replication.run { try $0.startReplication(command) }
        return replication
    }
}

/// Reads the replication stream. See ``PostgresCDCSource``.
final class PostgresCDCReader: SourceReader {
    let source: PostgresCDCSource
    var connection: PostgresConnection
    let partition: String
    let database: String
    let context: SourceContext
    /// Transactions ending at or below this were handed over before (skipped if sent again).
    var resumeLSN: UInt64
    /// Consecutive failed reconnects (for the backoff).
    var failures = 0
    var relations: [UInt32: PgRelation] = [:]
    var open: ChangeEvents.Transaction?
    var ready: [ChangeEvents.Transaction] = []
    /// The newest LSN handed to the runtime, and the newest the server said it has (keepalives).
    var emittedLSN: UInt64
    var serverLSN: UInt64 = 0
    var lastFeedback = ContinuousClock.now
    var replyRequested = false

    /// Hand a batch over once this many changes are ready (or the stream goes quiet).
    static let batchChanges = 10_000

    init(source: PostgresCDCSource, connection: PostgresConnection, database: String, committedLSN: UInt64, context: SourceContext) {
        self.source = source
        self.connection = connection
        self.partition = source.partition
        self.database = database
        self.context = context
        resumeLSN = committedLSN
        emittedLSN = committedLSN
    }

    func next() async throws -> SourceBatch? {
        while true {
            try Task.checkCancellation()
            let frames: [[UInt8]]
            do {
                frames = try await connection.run { session -> [[UInt8]] in
                    var frames: [[UInt8]] = []
                    while frames.count < 5_000, let frame = try session.readCopyData(timeoutMilliseconds: frames.isEmpty ? 200 : 0) {
                        frames.append(frame)
                    }
                    return frames
                }
                for frame in frames { try handle(frame) }
                try await sendFeedbackIfDue()
                failures = 0
            } catch let e as SluiceError where e.isRetryable {
                try await reconnect(after: e)
                continue
            }
            let changes = ready.reduce(0) { $0 + $1.changes.count }
            if changes >= Self.batchChanges || (!ready.isEmpty && frames.isEmpty) || (!ready.isEmpty && open == nil) {
                let transactions = ready
                ready.removeAll()
                emittedLSN = transactions.last!.endLSN
                return SourceBatch(records: ChangeEvents.batch(transactions, database: database),
                                   position: SourcePosition(partition: partition, value: LSN.format(emittedLSN)),
                                   inputBytes: changes * 64)
            }
        }
    }

    /// The stream broke (server restart, failover, the backend terminated): stream again from
    /// the last transaction handed over, with backoff. What was read after it is dropped and
    /// read again; what was handed over is skipped if the server sends it again.
    func reconnect(after error: SluiceError) async throws {
        failures += 1
        let delay = Duration.seconds(min(30, 1 << min(failures - 1, 5)))
        context.logger.warning("the replication stream broke; streaming again", metadata: [
            "error": "\(error)", "from": "\(LSN.format(emittedLSN))", "attempt": "\(failures)", "delay": "\(delay)",
        ])
        try await Task.sleep(for: delay)
        open = nil
        ready.removeAll()
        resumeLSN = emittedLSN
        // The old connection's position may lie past transactions that were read but not
        // handed over (dropped above): confirming it on the new connection would make the
        // server skip them after the next break. Only this connection's keepalives count.
        serverLSN = 0
        replyRequested = false
        do {
            connection = try await source.stream(from: emittedLSN)
        } catch let e as SluiceError where e.isRetryable {
            context.logger.warning("reconnecting failed; will retry", metadata: ["error": "\(e)"])
        }
    }

    func handle(_ bytes: [UInt8]) throws {
        switch try ReplicationFrame.decode(bytes) {
        case let .keepalive(walEnd, _, reply):
            serverLSN = max(serverLSN, walEnd)
            replyRequested = replyRequested || reply
        case let .xLogData(_, walEnd, _, payload):
            serverLSN = max(serverLSN, walEnd)
            try apply(PgOutputDecoder.decode(payload))
        }
    }

    func apply(_ message: PgOutputMessage) throws {
        switch message {
        case let .begin(_, commitTime, xid):
            open = ChangeEvents.Transaction(xid: xid, commitTime: commitTime, endLSN: 0, changes: [])
        case let .commit(_, _, endLSN, commitTime):
            guard var t = open else { return }
            open = nil
            t.endLSN = endLSN
            t.commitTime = commitTime
            // Replayed after a crash: already committed downstream.
            if endLSN > resumeLSN && !t.changes.isEmpty { ready.append(t) }
        case let .relation(r):
            relations[r.oid] = r
        case let .insert(relation, new):
            try change("c", relation, before: nil, after: new)
        case let .update(relation, old, keyOnly, new):
            try change("u", relation, before: old, after: new, beforeIsWholeRow: !keyOnly)
        case let .delete(relation, old, _):
            try change("d", relation, before: old, after: nil)
        case let .truncate(relations, _):
            for oid in relations { try change("t", oid, before: nil, after: nil) }
        case .origin, .type, .message:
            break
        }
    }

    func change(_ op: String, _ oid: UInt32, before: PgTuple?, after: PgTuple?, beforeIsWholeRow: Bool = false) throws {
        guard let relation = relations[oid] else {
            throw SluiceError(.corruptState, "a change for relation \(oid) arrived before its description", retryable: true)
        }
        guard open != nil else { return }
        var after = after
        if beforeIsWholeRow, var new = after, let old = before, old.count == new.count {
            // REPLICA IDENTITY FULL sends the whole old row: an unchanged TOASTed value (not sent
            // in the new row) is carried over from it instead of being left out.
            for i in new.indices where new[i] == .unchangedToast && old[i] != .unchangedToast { new[i] = old[i] }
            after = new
        }
        let keySource = after ?? before
        let key = relation.columns.contains(where: \.isKey) ? keySource.map { ChangeEvents.json($0, relation: relation, keyOnly: true) } : nil
        open!.changes.append(ChangeEvents.Change(
            op: op, table: "\(relation.namespace).\(relation.name)", key: key,
            before: before.map { ChangeEvents.json($0, relation: relation) },
            after: after.map { ChangeEvents.json($0, relation: relation) },
            seq: open!.changes.count))
    }

    /// Tells the server how far the sink has committed, at least every 5 s and when asked. With
    /// nothing in flight, the server's own position is confirmed too, so an idle slot does not
    /// hold WAL back while the rest of the database is busy.
    func sendFeedbackIfDue() async throws {
        guard replyRequested || ContinuousClock.now - lastFeedback > .seconds(5) else { return }
        var flushed = context.commits.committed(partition).flatMap(LSN.parse) ?? resumeLSN
        if flushed >= emittedLSN && open == nil && ready.isEmpty { flushed = max(flushed, serverLSN) }
        let micros = Int64((Date().timeIntervalSince1970 - 946_684_800) * 1_000_000)
        let status = ReplicationFrame.standbyStatus(written: flushed, flushed: flushed, applied: flushed, clock: micros, replyNow: false)
        try await connection.run { try $0.sendCopyData(status) }
        lastFeedback = .now
        replyRequested = false
    }
}
