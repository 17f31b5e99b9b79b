import Foundation
import Logging
import Metrics
import SluiceCore

/// Reads the replication stream (and snapshots). See ``PostgresCDCSource``.
final class PostgresCDCReader: SourceReader {
    let source: PostgresCDCSource
    var connection: PostgresConnection
    /// Whether `connection` streams yet (it does not while the exported snapshot is read).
    var streaming: Bool
    /// `connection` broke: the next read streams on a new one (from ``emittedLSN``).
    var needsStream = false
    /// The transaction holding the exported snapshot, while it is read.
    var exported: PostgresConnection?
    let partition: String
    let database: String
    let context: SourceContext
    /// Where the pipeline stands, as of the last transaction decoded (its LSN is the last
    /// transaction's end; its snapshot fields move at high watermarks).
    var position: CDCPosition
    /// Transactions ending at or below this were handed over before (skipped if sent again).
    var resumeLSN: UInt64
    /// Consecutive failed reconnects (for the backoff).
    var failures = 0
    var relations: [UInt32: PgRelation] = [:]
    /// `schema.table` of each relation, built once per Relation message (not per change).
    var tableNames: [UInt32: String] = [:]
    var open: ChangeEvents.Transaction?
    var ready: [ChangeEvents.Transaction] = []
    /// The newest LSN handed to the runtime, and the newest the server said it has (keepalives
    /// of the current connection).
    var emittedLSN: UInt64
    /// ``position`` as of the last batch handed over (restored when a broken stream drops what
    /// was read after it).
    var emittedPosition: CDCPosition
    var serverLSN: UInt64 = 0
    var lastFeedback = ContinuousClock.now
    var replyRequested = false
    /// Watermark snapshots: the chunk being read while streaming, and the connection that reads it.
    var window: Window?
    var snapshotConnection: PostgresConnection?
    var snapshotTables: [String: SnapshotTable] = [:]
    /// Transactions streamed lately, checked at a low watermark against the chunk's snapshot.
    var recent = RecentTransactions()
    /// Chunks read again in a row because their snapshot missed a transaction before the window,
    /// and when the next may be read (with backoff: the transaction may take a while to show).
    var rereads = 0
    var nextWindowAt = ContinuousClock.now
    /// Rows of the exported snapshot handed over by this reader (their `seq`).
    var exportedRows = 0
    /// Slot safety: WAL the slot holds back, measured every ``retainedCheckInterval``.
    let retainedWAL: Gauge
    var lastRetainedCheck = ContinuousClock.now - .seconds(3600)
    var retainedWarned = false
    static let retainedCheckInterval = Duration.seconds(15)

    /// A chunk read between a low and a high watermark.
    struct Window {
        var id: String
        var table: SnapshotTable
        var chunk: SnapshotTable.Chunk
        /// The snapshot the chunk was read in.
        var visibility: TransactionSnapshot
        /// The low watermark has streamed past: changes of the table now drop their rows.
        var isOpen = false
        var dropped: Set<String> = []
        var truncated = false
        /// A transaction streamed before the low watermark that the chunk's snapshot did not see:
        /// the chunk may be older than what the stream already applied, so it is read again.
        var unseen: UInt32?
    }

    /// Hand a batch over once this many changes are ready (or the stream goes quiet).
    static let batchChanges = 10_000

    init(source: PostgresCDCSource, replication: PostgresConnection, streaming: Bool, exported: PostgresConnection?,
         database: String, position: CDCPosition, context: SourceContext) {
        self.source = source
        self.connection = replication
        self.streaming = streaming
        self.exported = exported
        self.partition = source.partition
        self.database = database
        self.context = context
        self.position = position
        resumeLSN = position.lsn
        emittedLSN = position.lsn
        emittedPosition = position
        retainedWAL = Gauge(label: "sluice_cdc_retained_wal_bytes", dimensions: [("pipeline", context.pipeline), ("slot", source.options.slot)])
    }

    /// Ends every connection now: the walsender lets the slot go at once, so the next reader
    /// (after a conflict, or a restart in the same process) can take it.
    func close() async {
        await connection.close()
        await exported?.close()
        await snapshotConnection?.close()
        exported = nil
        snapshotConnection = nil
    }

    func next() async throws -> SourceBatch? {
        if let exported {
            if let batch = try await nextExportedChunk(exported) { return batch }
        }
        while true {
            try Task.checkCancellation()
            let frames: [[UInt8]]
            do {
                if needsStream {
                    connection = try await source.stream(from: emittedLSN, context: context)
                    needsStream = false
                }
                if window == nil, !position.pending.isEmpty, open == nil, ContinuousClock.now >= nextWindowAt { try await openWindow() }
                frames = try await connection.run { session -> [[UInt8]] in
                    // Whatever has arrived, up to 5,000 frames or 20 ms of reading: under a steady
                    // stream, reading on until the socket is empty would hold changes back.
                    var frames: [[UInt8]] = []
                    let deadline = ContinuousClock.now + .milliseconds(20)
                    while frames.count < 5_000, let frame = try session.readCopyData(timeoutMilliseconds: frames.isEmpty ? 200 : 0) {
                        frames.append(frame)
                        if frames.count % 64 == 0 && ContinuousClock.now > deadline { break }
                    }
                    return frames
                }
                for frame in frames { try handle(frame) }
                try await sendFeedbackIfDue()
                try await checkRetainedWAL()
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
                emittedPosition = transactions.last!.position ?? position
                return SourceBatch(records: ChangeEvents.batch(transactions, database: database),
                                   position: SourcePosition(partition: partition, value: emittedPosition.text),
                                   inputBytes: changes * 64)
            }
        }
    }

    // MARK: The exported snapshot

    /// The next chunk of the snapshot exported with the slot; when it is all read, the stream
    /// starts at the slot's start point (nil: go on streaming).
    func nextExportedChunk(_ snapshot: PostgresConnection) async throws -> SourceBatch? {
        let limit = source.options.snapshotChunk
        if exportedRows > 0 { try await context.hooks.hold(at: PostgresCDCSource.holdExportedChunk, logger: context.logger) }
        while let name = position.pending.first {
            let after = position.after
            let table: SnapshotTable, chunk: SnapshotTable.Chunk
            do {
                (table, chunk) = try await snapshot.run { [snapshotTables] s -> (SnapshotTable, SnapshotTable.Chunk) in
                    let table = try snapshotTables[name] ?? SnapshotTable.describe(name, session: s)
                    return (table, try table.chunk(after: after, limit: limit, session: s))
                }
            } catch let e as SluiceError where e.isRetryable {
                // The connection holding the exported snapshot broke, and the snapshot cannot be
                // imported again: the rest is read while streaming, with watermarks, from the
                // last chunk handed over (as after a crash in the middle of the snapshot).
                context.logger.warning("the connection reading the exported snapshot broke; reading the rest while streaming",
                                       metadata: ["error": "\(e)", "table": "\(name)", "tables": "\(position.pending.count)"])
                try await handOverToStream()
                return nil
            }
            snapshotTables[name] = table
            if chunk.isLast {
                position.pending.removeFirst()
                position.after = nil
                context.logger.info("table snapshotted", metadata: ["table": "\(name)"])
            } else {
                position.after = chunk.last
            }
            guard !chunk.changes.isEmpty else { continue }
            var t = ChangeEvents.Transaction(xid: 0, commitTime: Self.postgresNow(), endLSN: position.lsn, changes: chunk.changes)
            // Snapshot rows share the slot's start LSN: number them across chunks (lsn + seq is unique).
            for i in t.changes.indices { t.changes[i].seq = exportedRows + i }
            exportedRows += t.changes.count
            t.position = position
            emittedPosition = position
            return SourceBatch(records: ChangeEvents.batch([t], database: database),
                               position: SourcePosition(partition: partition, value: position.text), inputBytes: t.changes.count * 64)
        }
        try await handOverToStream()
        context.logger.info("snapshot read; streaming changes", metadata: ["slot": "\(source.options.slot)", "from": "\(LSN.format(position.lsn))"])
        return nil
    }

    /// Ends the exported snapshot and streams from the slot's start point: on the connection
    /// that created the slot, or on a new one when that broke meanwhile (a restart, the backend
    /// terminated). Every chunk read has been handed over, so the position as of now is the
    /// one to go back to.
    func handOverToStream() async throws {
        if let exported { _ = try? await exported.run { try $0.execute("COMMIT") } }
        exported = nil
        position.exported = false
        emittedPosition = position
        let start = position.lsn
        do {
            try await context.hooks.hold(at: PostgresCDCSource.holdStartReplication, logger: context.logger)
            try await connection.run { [source] in try $0.startReplication(source.startCommand(from: start)) }
        } catch let e as SluiceError where e.isRetryable {
            try await reconnect(after: e)
        }
        streaming = true
    }

    /// Now in PostgreSQL's clock (microseconds since 2000-01-01).
    static func postgresNow() -> Int64 {
        Int64((Date().timeIntervalSince1970 - 946_684_800) * 1_000_000)
    }

    // MARK: Watermark snapshots

    /// Reads the next chunk of `pending[0]` between a low and a high watermark.
    func openWindow() async throws {
        guard let name = position.pending.first else { return }
        if snapshotConnection == nil { snapshotConnection = try await PostgresConnection.connect(source.options.url) }
        let id = "\(source.options.slot):\(UUID().uuidString)"
        let after = position.after, limit = source.options.snapshotChunk, prefix = PostgresCDCSource.watermarkPrefix
        let (table, chunk, visibility) = try await snapshotConnection!.run { [snapshotTables] s -> (SnapshotTable, SnapshotTable.Chunk, TransactionSnapshot) in
            let table = try snapshotTables[name] ?? SnapshotTable.describe(name, session: s)
            try s.query("SELECT pg_logical_emit_message(true, $1, $2)", [prefix, "low:" + id])
            // One snapshot for the chunk and the record of what it sees.
            try s.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            do {
                let text = try s.query("SELECT txid_current_snapshot()::text").string(0, 0) ?? ""
                guard let visibility = TransactionSnapshot(parsing: text) else {
                    throw SluiceError(.internalError, "txid_current_snapshot() returned '\(text)'")
                }
                let chunk = try table.chunk(after: after, limit: limit, session: s)
                try s.execute("COMMIT")
                try s.query("SELECT pg_logical_emit_message(true, $1, $2)", [prefix, "high:" + id])
                return (table, chunk, visibility)
            } catch {
                _ = try? s.execute("ROLLBACK")
                throw error
            }
        }
        snapshotTables[name] = table
        window = Window(id: id, table: table, chunk: chunk, visibility: visibility)
    }

    /// A watermark message streamed past.
    func watermark(_ content: String) {
        guard var w = window else { return }
        if content == "low:" + w.id {
            w.isOpen = true
            w.unseen = recent.firstUnseen(by: w.visibility)
            window = w
        } else if content == "high:" + w.id {
            window = nil
            if let xid = w.unseen {
                // Rare (a commit racing the chunk's read): read the same chunk again.
                rereads += 1
                nextWindowAt = .now + .milliseconds(min(1_000, 20 << min(rereads, 6)))
                context.logger.info("reading a snapshot chunk again: a transaction streamed before it was not visible to its read",
                                    metadata: ["table": "\(w.table.name)", "xid": "\(xid)", "attempt": "\(rereads)"])
                return
            }
            rereads = 0
            // The chunk's rows that no change touched in between are current as of here.
            if !w.truncated {
                for (i, change) in w.chunk.changes.enumerated() where !w.dropped.contains(w.chunk.keys[i]) {
                    var c = change
                    c.seq = open?.changes.count ?? 0
                    open?.changes.append(c)
                }
            }
            if w.chunk.isLast {
                position.pending.removeFirst()
                position.after = nil
                context.logger.info("table snapshotted", metadata: ["table": "\(w.table.name)"])
            } else {
                position.after = w.chunk.last
            }
        }
    }

    // MARK: The stream

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
        position = emittedPosition
        // The old connection's position may lie past transactions that were read but not
        // handed over (dropped above): confirming it on the new connection would make the
        // server skip them after the next break. Only this connection's keepalives count.
        serverLSN = 0
        replyRequested = false
        // A chunk whose watermarks may be among what was dropped is read again.
        window = nil
        snapshotConnection = nil
        // The next read connects (a failure there comes back here, with a longer delay).
        needsStream = true
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
            recent.append(t.xid)
            t.endLSN = endLSN
            t.commitTime = commitTime
            position.lsn = max(position.lsn, endLSN)
            t.position = position
            // Replayed after a crash: already committed downstream.
            if endLSN > resumeLSN && !t.changes.isEmpty { ready.append(t) }
        case let .relation(r):
            relations[r.oid] = r
            let name = "\(r.namespace).\(r.name)"
            tableNames[r.oid] = name
            if var known = position.known, !known.contains(name) {
                // A table joined the publication: its existing rows are snapshotted too.
                known.append(name)
                position.known = known
                if source.options.snapshot == .initial && !position.pending.contains(name) {
                    position.pending.append(name)
                    context.logger.info("a table joined the publication; snapshotting it while streaming", metadata: ["table": "\(name)"])
                }
            }
        case let .insert(relation, new):
            try change("c", relation, before: nil, after: new)
        case let .update(relation, old, keyOnly, new):
            try change("u", relation, before: old, after: new, beforeIsWholeRow: !keyOnly)
        case let .delete(relation, old, _):
            try change("d", relation, before: old, after: nil)
        case let .truncate(relations, _):
            for oid in relations { try change("t", oid, before: nil, after: nil) }
        case let .message(_, _, prefix, content):
            if prefix == PostgresCDCSource.watermarkPrefix { watermark(String(decoding: content, as: UTF8.self)) }
        case .origin, .type:
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
        let table = tableNames[oid] ?? "\(relation.namespace).\(relation.name)"
        if var w = window, w.isOpen, w.table.name == table {
            // The stream has a newer version of these rows than the chunk.
            if op == "t" { w.truncated = true }
            for tuple in [before, after] { if let tuple, let key = w.table.key(of: tuple, relation: relation) { w.dropped.insert(key) } }
            window = w
        }
        let keySource = after ?? before
        let key = relation.columns.contains(where: \.isKey) ? keySource.map { ChangeEvents.json($0, relation: relation, keyOnly: true) } : nil
        open!.changes.append(ChangeEvents.Change(
            op: op, table: table, key: key,
            before: before.map { ChangeEvents.json($0, relation: relation) },
            after: after.map { ChangeEvents.json($0, relation: relation) },
            seq: open!.changes.count))
    }

    /// Measures the WAL the slot holds back (`pg_current_wal_lsn() - confirmed_flush_lsn`) into
    /// the gauge, and warns (once per crossing) above `retained_wal_warning`: a slot that is not
    /// read fills the server's disk.
    func checkRetainedWAL() async throws {
        guard ContinuousClock.now - lastRetainedCheck > Self.retainedCheckInterval else { return }
        lastRetainedCheck = .now
        if snapshotConnection == nil { snapshotConnection = try await PostgresConnection.connect(source.options.url) }
        let slot = source.options.slot
        guard let bytes = try await snapshotConnection!.run({ try CDCAdmin.retainedBytes(slot: slot, session: $0) }) else { return }
        retainedWAL.record(bytes)
        let limit = source.options.retainedWALWarning
        if bytes > limit && !retainedWarned {
            context.logger.warning("the replication slot holds back more WAL than retained_wal_warning: the pipeline is behind (or was stopped); the server keeps this WAL on disk until it catches up",
                                   metadata: ["slot": "\(slot)", "retained_bytes": "\(bytes)", "warning_at": "\(limit)"])
        }
        retainedWarned = bytes > limit
    }

    /// Tells the server how far the sink has committed, at least every 5 s and when asked. With
    /// nothing in flight, the server's own position is confirmed too, so an idle slot does not
    /// hold WAL back while the rest of the database is busy.
    func sendFeedbackIfDue() async throws {
        guard replyRequested || ContinuousClock.now - lastFeedback > .seconds(5) else { return }
        var flushed = context.commits.committed(partition).flatMap(CDCPosition.parse)?.lsn ?? resumeLSN
        if flushed >= emittedLSN && open == nil && ready.isEmpty && window == nil && position.pending.isEmpty {
            flushed = max(flushed, serverLSN)
        }
        let status = ReplicationFrame.standbyStatus(written: flushed, flushed: flushed, applied: flushed, clock: Self.postgresNow(), replyNow: false)
        try await connection.run { try $0.sendCopyData(status) }
        lastFeedback = .now
        replyRequested = false
    }
}
