import Metrics
import Foundation
import Logging
import SluiceCore

/// Reads the replication stream (and snapshots). See ``PostgresCDCSource``.
///
/// Coordinates four parts, each owning its own state: the snapshot exported with a new slot
/// (``ExportedSnapshot``), the stream (``ReplicationStream``), snapshots taken while streaming
/// (``WatermarkSnapshots``) and the WAL the slot holds back (``SlotSafety``). The reader holds
/// the position and the replication connection, does the I/O and carries out what the parts
/// decide.
final class PostgresCDCReader: SourceReader {
    let source: PostgresCDCSource
    /// The replication connection (its state is ``stream``).
    var connection: PostgresConnection
    let partition: String
    let database: String
    let context: SourceContext
    /// Where the pipeline stands, as of the last transaction decoded (its LSN is the last
    /// transaction's end; its snapshot fields move at high watermarks).
    var position: CDCPosition
    /// The snapshot exported with the slot, while it is read.
    var exported: ExportedSnapshot?
    var stream: ReplicationStream
    var watermarks = WatermarkSnapshots()
    var slotSafety: SlotSafety
    /// This reader handed over snapshot rows (their epoch must not be given away before they
    /// are committed: see ``sendFeedbackIfDue()``).
    var snapshotRowsHandedOver = false
    /// Each captured table's columns in the schema registry (a DDL is drift), as pgoutput
    /// describes them: snapshot reads describe a table otherwise (domains as their base types,
    /// generated columns and columns outside a publication's column list included).
    let schemas: TableSchemaTracker
    /// Tables the stream described since they were last checked with the registry.
    var describedTables: [(String, PgRelation)] = []

    // The watermark tests set up and check these.
    typealias Window = WatermarkSnapshots.Window
    var window: Window? {
        get { watermarks.window }
        set { watermarks.window = newValue }
    }
    var rereads: Int { watermarks.rereads }
    var ready: [ChangeEvents.Transaction] { stream.ready }

    init(
        source: PostgresCDCSource, replication: PostgresConnection, streaming: Bool, exported: PostgresConnection?,
        database: String, position: CDCPosition, context: SourceContext
    ) {
        self.source = source
        self.connection = replication
        self.exported = exported.map { ExportedSnapshot(connection: $0) }
        self.partition = source.partition
        self.database = database
        self.context = context
        self.position = position
        stream = ReplicationStream(position: position, streaming: streaming)
        slotSafety = SlotSafety(pipeline: context.pipeline, slot: source.options.slot)
        schemas = TableSchemaTracker(
            state: context.state, pipeline: context.pipeline, settings: context.schema, detection: context.schemaDetection, logger: context.logger,
            onDrift: context.reportSchemaDrift)
    }

    /// Ends every connection now: the walsender lets the slot go at once, so the next reader
    /// (after a conflict, or a restart in the same process) can take it.
    func close() async {
        await connection.close()
        await exported?.connection.close()
        await watermarks.snapshotConnection?.close()
        exported = nil
        watermarks.snapshotConnection = nil
    }

    /// How far behind the server's commits the reader is: from the commit of the last
    /// transaction handed over to now (0 when caught up). `sluice_cdc_retained_wal_bytes` is the
    /// same lag in bytes.
    var slotLag: Gauge { Gauge(label: "sluice_cdc_lag_seconds", dimensions: [("pipeline", context.pipeline), ("slot", source.options.slot)]) }

    func next() async throws -> SourceBatch? {
        if let exported {
            if let batch = try await nextExportedChunk(exported) { return batch }
        }
        while true {
            try Task.checkCancellation()
            let frames: [[UInt8]]
            do {
                if stream.needsStream {
                    connection = try await source.stream(from: stream.emittedLSN, context: context)
                    stream.needsStream = false
                }
                if watermarks.windowDue(pending: !position.pending.isEmpty, transactionOpen: stream.open != nil) { try await openWindow() }
                // The next part of a large transaction is handed over without reading first: the
                // server has sent all of it, and a read would wait for frames that do not come.
                frames = stream.ready.first?.spill != nil ? [] : try await readFrames()
                for frame in frames { try handle(frame) }
                // Before any change of a new shape is handed over: a schema policy may stop here.
                for (name, relation) in describedTables { try await schemas.observe(table: name, schema: ChangeEvents.registrySchema(relation)) }
                describedTables = []
                try await sendFeedbackIfDue()
                try await checkRetainedWAL()
                stream.failures = 0
            } catch let e as SluiceError where e.isRetryable {
                try await reconnect(after: e)
                continue
            }
            if let batch = try stream.handOver(quiet: frames.isEmpty, position: position) {
                var out = SourceBatch(
                    records: ChangeEvents.batch(batch.transactions, database: database),
                    position: SourcePosition(partition: partition, value: stream.emittedPosition.text),
                    inputBytes: batch.changes * 64)
                // The origin of a change is its transaction's commit on the server.
                out.originTime = batch.transactions.map(\.commitTime).min().map(ChangeEvents.date)
                if let last = batch.transactions.last {
                    let behind = max(0, Date().timeIntervalSince(ChangeEvents.date(last.commitTime)))
                    slotLag.record(behind)
                    context.reportLag(behind, "seconds")
                }
                return out
            }
            // Caught up: nothing received and nothing held back.
            if frames.isEmpty, stream.open == nil {
                slotLag.record(0)
                context.reportLag(0, "seconds")
            }
        }
    }

    // MARK: The exported snapshot

    /// The next chunk of the snapshot exported with the slot; when it is all read, the stream
    /// starts at the slot's start point (nil: go on streaming).
    func nextExportedChunk(_ snapshot: ExportedSnapshot) async throws -> SourceBatch? {
        let limit = source.options.snapshotChunk
        if snapshot.rows > 0 { try await context.hooks.hold(at: PostgresCDCSource.holdExportedChunk, logger: context.logger) }
        while let name = position.pending.first {
            let table: SnapshotTable, chunk: SnapshotTable.Chunk
            do {
                (table, chunk) = try await snapshot.read(name, described: watermarks.snapshotTables[name], after: position.after, limit: limit)
            } catch let e as SluiceError where e.isRetryable {
                // The connection holding the exported snapshot broke, and the snapshot cannot be
                // imported again: the rest is read while streaming, with watermarks, from the
                // last chunk handed over (as after a crash in the middle of the snapshot).
                context.logger.warning(
                    "the connection reading the exported snapshot broke; reading the rest while streaming",
                    metadata: ["error": "\(e)", "table": "\(name)", "tables": "\(position.pending.count)"])
                try await handOverToStream()
                return nil
            }
            watermarks.snapshotTables[name] = table
            guard !chunk.changes.isEmpty else {
                if position.advance(past: chunk) { context.logger.info("table snapshotted", metadata: ["table": "\(name)"]) }
                continue
            }
            let epoch = position.epoch
            if position.advance(past: chunk) { context.logger.info("table snapshotted", metadata: ["table": "\(name)"]) }
            let rows = chunk.changes.map {
                var c = $0; c.snapshotEpoch = epoch; return c
            }
            snapshotRowsHandedOver = true
            let t = exported!.transaction(of: rows, at: position, commitTime: Self.postgresNow())
            stream.emittedPosition = position
            return SourceBatch(
                records: ChangeEvents.batch([t], database: database),
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
        if let exported { await exported.end() }
        exported = nil
        position.exported = false
        stream.emittedPosition = position
        let start = position.lsn
        do {
            try await context.hooks.hold(at: PostgresCDCSource.holdStartReplication, logger: context.logger)
            try await connection.run { [source] in try $0.startReplication(source.startCommand(from: start)) }
        } catch let e as SluiceError where e.isRetryable {
            try await reconnect(after: e)
        }
        stream.streaming = true
    }

    /// Now in PostgreSQL's clock (microseconds since 2000-01-01).
    static func postgresNow() -> Int64 {
        Int64((Date().timeIntervalSince1970 - 946_684_800) * 1_000_000)
    }

    // MARK: Watermark snapshots

    /// Reads the next chunk of `pending[0]` between a low and a high watermark.
    func openWindow() async throws {
        guard let name = position.pending.first else { return }
        let snapshot = try await snapshotConnection()
        let id = "\(source.options.slot):\(UUID().uuidString)"
        let (table, chunk, visibility) = try await WatermarkSnapshots.read(
            name, described: watermarks.snapshotTables[name], after: position.after,
            limit: source.options.snapshotChunk, window: id, on: snapshot)
        watermarks.snapshotTables[name] = table
        watermarks.window = Window(id: id, table: table, chunk: chunk, visibility: visibility)
    }

    /// The connection that reads watermark chunks and checks the slot, connected when first needed.
    func snapshotConnection() async throws -> PostgresConnection {
        if let connection = watermarks.snapshotConnection { return connection }
        let connection = try await PostgresConnection.connect(source.options.url)
        watermarks.snapshotConnection = connection
        return connection
    }

    /// A watermark message streamed past.
    func watermark(_ content: String) {
        switch watermarks.watermark(content) {
        case .nothing:
            break
        case let .readAgain(table, xid, attempt):
            context.logger.info(
                "reading a snapshot chunk again: a transaction streamed before it was not visible to its read",
                metadata: ["table": "\(table)", "xid": "\(xid)", "attempt": "\(attempt)"])
        case let .emit(w):
            // The chunk's rows that no change touched in between are current as of here.
            let epoch = position.epoch
            let rows = w.untouched.map {
                var c = $0; c.snapshotEpoch = epoch; return c
            }
            if !rows.isEmpty { snapshotRowsHandedOver = true }
            stream.append(rows: rows)
            if position.advance(past: w.chunk) { context.logger.info("table snapshotted", metadata: ["table": "\(w.table.name)"]) }
        }
    }

    // MARK: The stream

    /// Whatever has arrived, up to 5,000 frames or 20 ms of reading: under a steady stream,
    /// reading on until the socket is empty would hold changes back.
    func readFrames() async throws -> [[UInt8]] {
        try await connection.run { session -> [[UInt8]] in
            var frames: [[UInt8]] = []
            let deadline = ContinuousClock.now + .milliseconds(20)
            while frames.count < 5_000, let frame = try session.readCopyData(timeoutMilliseconds: frames.isEmpty ? 200 : 0) {
                frames.append(frame)
                if frames.count % 64 == 0 && ContinuousClock.now > deadline { break }
            }
            return frames
        }
    }

    /// The stream broke (server restart, failover, the backend terminated): stream again from
    /// the last transaction handed over, with backoff. What was read after it is dropped and
    /// read again; what was handed over is skipped if the server sends it again.
    func reconnect(after error: SluiceError) async throws {
        // The broken connection goes now, not when a new stream replaces it: a walsender whose
        // socket stays open waits for this client's confirmations, and a server shutting down
        // (`pg_ctl stop -m fast`) waited for it until `wal_sender_timeout`.
        await connection.close()
        let delay = stream.broke()
        context.logger.warning(
            "the replication stream broke; streaming again",
            metadata: [
                "error": "\(error)", "from": "\(LSN.format(stream.emittedLSN))", "attempt": "\(stream.failures)", "delay": "\(delay)",
            ])
        try await Task.sleep(for: delay)
        position = stream.restart()
        watermarks.restart()
    }

    func handle(_ bytes: [UInt8]) throws {
        if let payload = try stream.receive(ReplicationFrame.decode(bytes)) { try apply(PgOutputDecoder.decode(payload)) }
    }

    func apply(_ message: PgOutputMessage) throws {
        switch message {
        case let .begin(finalLSN, commitTime, xid):
            stream.begin(finalLSN: finalLSN, xid: xid, commitTime: commitTime)
        case let .commit(_, _, endLSN, commitTime):
            if let xid = stream.commit(endLSN: endLSN, commitTime: commitTime, position: &position) { watermarks.recent.append(xid) }
        case let .relation(r):
            let name = stream.describe(r)
            describedTables.append((name, r))
            if position.noteTable(name, snapshotting: source.options.snapshot == .initial) {
                context.logger.info("a table joined the publication; snapshotting it while streaming", metadata: ["table": "\(name)"])
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
        guard let appended = try stream.change(op, oid, before: before, after: after, beforeIsWholeRow: beforeIsWholeRow) else { return }
        watermarks.streamed(op, table: appended.table, relation: appended.relation, before: before, after: appended.after)
    }

    /// Tells the server how far the sink has committed, at least every 5 s and when asked. With
    /// nothing in flight, the server's own position is confirmed too, so an idle slot does not
    /// hold WAL back while the rest of the database is busy.
    func sendFeedbackIfDue() async throws {
        guard stream.feedbackDue() else { return }
        let committed = context.commits.committed(partition).flatMap(CDCPosition.parse)
        // Snapshots are idle once none is read and the sink has committed the last of them (or,
        // before any commit, when this reader handed over no snapshot row: empty tables): a
        // slot confirmed past its start point while snapshot rows wait for their first commit
        // would give their epoch away after a crash (a run without a checkpoint takes the
        // slot's confirmed position as the epoch).
        let snapshotsCommitted = committed.map { $0.pending.isEmpty } ?? !snapshotRowsHandedOver
        let flushed = stream.confirmable(
            committed: committed?.lsn, snapshotsIdle: watermarks.window == nil && position.pending.isEmpty && snapshotsCommitted)
        let status = ReplicationFrame.standbyStatus(written: flushed, flushed: flushed, applied: flushed, clock: Self.postgresNow(), replyNow: false)
        try await connection.run { try $0.sendCopyData(status) }
        stream.feedbackSent()
    }

    // MARK: Slot safety

    /// Measures the WAL the slot holds back (`pg_current_wal_lsn() - confirmed_flush_lsn`) into
    /// the gauge, and warns (once per crossing) above `retained_wal_warning`: a slot that is not
    /// read fills the server's disk.
    func checkRetainedWAL() async throws {
        guard slotSafety.checkDue() else { return }
        let connection = try await snapshotConnection()
        let slot = source.options.slot
        guard let bytes = try await connection.run({ try CDCAdmin.retainedBytes(slot: slot, session: $0) }) else { return }
        let limit = source.options.retainedWALWarning
        if slotSafety.record(bytes, warningAt: limit) {
            context.logger.warning(
                "the replication slot holds back more WAL than retained_wal_warning: the pipeline is behind (or was stopped); the server keeps this WAL on disk until it catches up",
                metadata: ["slot": "\(slot)", "retained_bytes": "\(bytes)", "warning_at": "\(limit)"])
        }
    }
}
