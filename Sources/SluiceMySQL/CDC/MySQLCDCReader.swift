import Foundation
import Logging
import Metrics
import SluiceCore

/// Reads the binlog stream and the snapshot chunks. See ``MySQLCDCSource``.
///
/// The stream's state is ``MySQLBinlogStream`` (pure); this reader does the I/O: the replication
/// connection, a second connection for snapshot chunks and server facts, reconnects with
/// backoff, and when to hand over what is ready.
final class MySQLCDCReader: SourceReader {
    let source: MySQLCDCSource
    let context: SourceContext
    let mariaDB: Bool
    let collations: [Int: String]
    let method: MySQLSnapshot.Method
    /// The server writes CRC32 checksums (and sends them, told `@master_binlog_checksum`); read
    /// again on each replication connection (after a failover it may be another server).
    var checksummed: Bool
    /// The `server_id` of the server streamed from (the `source.server_id` of snapshot reads);
    /// snapshot chunks are read from the same server, or their positions would mean nothing.
    var serverID: UInt32
    /// The `server_id` of the server the snapshot connection reached.
    var snapshotServerID: UInt32?
    /// MySQL: the server streamed from has `gtid_mode=ON` (read again on each replication
    /// connection), so the stream can resume by GTID set.
    var gtidMode = false
    /// Whether the stream has reached the first event after its start: until then the server may
    /// be scanning its files for the GTID position, silently (no heartbeats), for a long time.
    var positioned = false
    /// Connection for snapshot chunks (and nothing else).
    var snapshotConnection: MySQLConnection?
    /// The replication connection; nil until (re)started.
    var replication: MySQLConnection?
    var decoder = MySQLBinlogDecoder()
    /// A compressed transaction being read, and the header of its payload event.
    var payload: (reader: MySQLTransactionPayloadReader, outer: MySQLBinlogEventHeader)?
    var stream: MySQLBinlogStream
    /// The checkpoint of the last batch handed over: where a broken stream starts again.
    var emitted: MySQLCDCPosition
    /// The snapshot progress as of the items placed in the stream so far.
    var snapshot: SnapshotProgress
    /// A chunk read and waiting for the stream to reach its position.
    var chunk: MySQLSnapshot.Chunk?
    /// When the oldest item in ``MySQLBinlogStream/ready`` became ready.
    var readySince: ContinuousClock.Instant?
    var failures = 0
    /// Each captured table's columns in the schema registry (a DDL is drift).
    let schemas: TableSchemaTracker

    /// Where the snapshots stand: the tables still to read and the key read up to.
    struct SnapshotProgress: Equatable {
        var pending: [String]
        var after: [String]?
        var known: [String]
    }

    /// Changes handed over per batch, at most (a transaction's part also ends a batch).
    static let batchChanges = 5_000
    /// A transaction with this many changes not handed over is handed over in parts.
    static let partChanges = 10_000
    /// How long a ready transaction may wait for others to join its batch.
    static let gathering: Duration = .milliseconds(50)

    init(source: MySQLCDCSource, checkpoint: MySQLCDCPosition?, context: SourceContext) async throws {
        self.source = source
        self.context = context
        schemas = TableSchemaTracker(
            state: context.state, pipeline: context.pipeline, settings: context.schema, detection: context.schemaDetection, logger: context.logger,
            onDrift: context.reportSchemaDrift)
        let c = try await MySQLConnection.connect(source.options.url)
        do {
            mariaDB = c.server.isMariaDB
            let problems = try await MySQLServerSettings.check(c, tables: source.options.tables)
            guard problems.isEmpty else { throw SluiceError(.configuration, problems.joined(separator: "; "), retryable: false) }
            let variables = try await MySQLServerSettings.variables(c)
            for warning in MySQLServerSettings.warnings(variables, resume: source.options.resume) { context.logger.warning("\(warning)") }
            checksummed = variables["binlog_checksum"]?.uppercased() == "CRC32"
            serverID = UInt32(variables["server_id"] ?? "") ?? 0
            let rows = try await c.query("SELECT ID, CHARACTER_SET_NAME FROM information_schema.COLLATIONS")
            var map: [Int: String] = [:]
            for r in 0..<rows.rows.count { if let id = rows.string(r, 0).flatMap(Int.init) { map[id] = rows.string(r, 1) } }
            collations = map
            method = mariaDB ? .snapshotStatus : .readLock
            try await MySQLSnapshot.prepare(c)
            var position: MySQLCDCPosition
            gtidMode = !mariaDB && variables["gtid_mode"]?.uppercased() == "ON"
            if let checkpoint {
                position = checkpoint
            } else {
                if mariaDB {
                    let status = try await MySQLSnapshot.binlogStatus(c)
                    position = MySQLCDCPosition(at: status.at)
                    position.gtid = try await c.query(
                        "SELECT BINLOG_GTID_POS(\(MySQLSnapshot.literal(status.at.file)), \(status.at.position))"
                    ).string(0, 0)
                } else if gtidMode, let status = try await MySQLSnapshot.lockedBinlogStatus(c) {
                    // The set there, known from the start (empty on a server that has run no
                    // GTID transaction yet): every later transaction is added to it.
                    position = MySQLCDCPosition(at: status.at)
                    position.executed = status.executed?.filter { !$0.isWhitespace } ?? ""
                } else {
                    position = MySQLCDCPosition(at: try await MySQLSnapshot.binlogStatus(c).at)
                }
                context.logger.info("starting from the server's current binlog position", metadata: ["at": "\(position.at)"])
            }
            // Tables not delivered yet (a first run, or tables added since) are snapshotted.
            let added = source.options.tables.filter { !position.known.contains($0) }
            position.known += added
            if source.options.snapshot == .initial {
                for t in added where !position.pending.contains(t) { position.pending.append(t) }
            }
            if !mariaDB, let text = position.executed, (try? MySQLGTIDSet(parsing: text)) == nil {
                context.logger.warning(
                    "the checkpoint's GTID set cannot be read; the stream resumes by binlog file and position until the next binlog file says the set",
                    metadata: ["gtid_set": "\(text.prefix(200))"])
            }
            emitted = position
            snapshot = SnapshotProgress(pending: position.pending, after: position.after, known: position.known)
            stream = MySQLBinlogStream(position: position, captured: Set(source.options.tables), collations: map, mariaDB: mariaDB)
            snapshotConnection = c
            snapshotServerID = serverID
        } catch {
            await c.close()
            throw error
        }
        if !snapshot.pending.isEmpty {
            context.logger.info("snapshotting tables while streaming", metadata: ["tables": "\(snapshot.pending)"])
        }
    }

    func close() async {
        await replication?.close()
        await snapshotConnection?.close()
        replication = nil
        snapshotConnection = nil
    }

    var lagGauge: Gauge { Gauge(label: "sluice_cdc_lag_seconds", dimensions: [("pipeline", context.pipeline), ("slot", "binlog")]) }

    func next() async throws -> SourceBatch? {
        while true {
            try Task.checkCancellation()
            do {
                if replication == nil { try await startStream() }
                if chunk == nil, !snapshot.pending.isEmpty {
                    try await readChunk()
                    // A chunk at a place the stream has read past already goes at once.
                    placeChunkIfReached()
                    if stream.ready.contains(where: \.snapshot) { return handOver(count: stream.ready.count) }
                }
                let timeout = positioned ? source.options.heartbeat * 20 + .seconds(10) : .seconds(600)
                let (header, event) = try await nextEvent(timeout: timeout)
                switch event {
                case .rotate, .formatDescription, .mysqlPreviousGTIDs, .other: break
                default: positioned = true
                }
                let note = try stream.receive(header, event)
                if !stream.newShapes.isEmpty {
                    // Before any row of a new shape is handed over: a policy may stop the pipeline here.
                    for shape in stream.newShapes { try await schemas.observe(table: shape.name, schema: shape.registrySchema) }
                    stream.newShapes = []
                }
                if case let .ddl(database, sql) = note {
                    context.logger.info("DDL in the binlog", metadata: ["database": "\(database)", "statement": "\(sql.prefix(300))"])
                }
                placeChunkIfReached()
                if let open = stream.open, open.changes.count >= Self.partChanges, stream.skip == nil {
                    placeChunkIfReached(before: open.start)
                    if let part = stream.takePart() { stream.ready.append(part) }
                    return handOver(count: stream.ready.count)
                }
                failures = 0
                if let batch = handOverIfDue(idle: note == .idle) { return batch }
            } catch let e as SluiceError where e.isRetryable {
                try await reconnect(after: e)
            }
        }
    }

    /// The next event: from the compressed transaction being read, else from the server. The
    /// events of a compressed transaction take the place of their payload event in the file
    /// (``MySQLBinlogDecoder/placed(_:in:)``).
    func nextEvent(timeout: Duration) async throws -> (MySQLBinlogEventHeader, MySQLBinlogEvent) {
        while true {
            if let (reader, outer) = payload {
                if let (inner, event) = try decoder.decodeInner(reader) {
                    return (MySQLBinlogDecoder.placed(inner, in: outer), event)
                }
                payload = nil
            }
            let bytes = try await replication!.nextBinlogEvent(timeout: timeout)
            let (header, event) = try decoder.decode(bytes)
            if case let .transactionPayload(compressed) = event {
                payload = (try MySQLTransactionPayloadReader(compressed), header)
                continue
            }
            return (header, event)
        }
    }

    // MARK: The stream

    /// Whether the stream resumes after the GTID position of the checkpoint (`resume: gtid`;
    /// MariaDB: a GTID position recorded; MySQL: a GTID set recorded, on a server with
    /// `gtid_mode=ON`) rather than at its file and position.
    var resumesByGTID: Bool {
        // A partly delivered transaction recorded without its GTID (a checkpoint from before
        // GTID resumes) can only be found again by its place in the file.
        guard source.options.resume == .gtid, emitted.delivered == nil || emitted.part != nil else { return false }
        return mariaDB ? !(emitted.gtid ?? "").isEmpty : gtidMode && resumeSet != nil
    }

    /// MySQL: the checkpoint's GTID set, when it holds a transaction (an empty set would ask
    /// the server for its whole binlog).
    var resumeSet: MySQLGTIDSet? {
        guard !mariaDB, let text = emitted.executed, let set = try? MySQLGTIDSet(parsing: text), !set.isEmpty else { return nil }
        return set
    }

    func startStream() async throws {
        let c = try await MySQLConnection.connect(source.options.url)
        let byGTID: Bool
        do {
            // The server behind the URL may have changed (a failover): its own settings count.
            let facts = try await c.query("SELECT @@global.binlog_checksum, @@server_id" + (mariaDB ? "" : ", @@global.gtid_mode"))
            checksummed = facts.string(0, 0)?.uppercased() == "CRC32"
            serverID = UInt32(facts.string(0, 1) ?? "") ?? serverID
            if !mariaDB { gtidMode = facts.string(0, 2)?.uppercased() == "ON" }
            if let s = snapshotConnection, snapshotServerID != serverID {
                await s.close()
                snapshotConnection = nil
            }
            byGTID = resumesByGTID
            try await c.startBinlogDump(
                file: emitted.at.file, position: UInt32(clamping: emitted.at.position), gtid: byGTID && mariaDB ? emitted.gtid : nil,
                gtidSet: byGTID && !mariaDB ? resumeSet : nil, serverID: source.serverID, heartbeat: source.options.heartbeat)
        } catch {
            await c.close()
            throw error
        }
        replication = c
        positioned = false
        decoder = MySQLBinlogDecoder(checksummed: checksummed)
        payload = nil
        // Everything read so far is dropped: the stream starts again from the checkpoint.
        stream = MySQLBinlogStream(position: emitted, captured: stream.captured, collations: collations, mariaDB: mariaDB, byGTID: byGTID)
        let from = byGTID ? (mariaDB ? "GTID \(emitted.gtid ?? "")" : "GTID set \(emitted.executed ?? "")") : "\(emitted.at)"
        context.logger.info("streaming the binlog", metadata: ["from": "\(from)", "server_id": "\(source.serverID)"])
    }

    /// The stream broke (server restart, network): start again from the last batch handed over,
    /// with backoff. What was read after it is dropped and read again.
    func reconnect(after error: SluiceError) async throws {
        await replication?.close()
        replication = nil
        failures += 1
        let delay = Duration.milliseconds(min(30_000, 100 << min(failures, 9)))
        context.logger.warning(
            "the binlog stream broke; streaming again", metadata: ["error": "\(error)", "from": "\(emitted.at)", "attempt": "\(failures)", "delay": "\(delay)"])
        try await Task.sleep(for: delay)
        snapshot = SnapshotProgress(pending: emitted.pending, after: emitted.after, known: emitted.known)
        chunk = nil
        readySince = nil
        if let s = snapshotConnection {
            // The snapshot connection may have broken too (a server restart).
            await s.close()
            snapshotConnection = nil
        }
    }

    // MARK: Snapshot chunks

    func readChunk() async throws {
        guard let table = snapshot.pending.first else { return }
        if snapshotConnection == nil {
            let c = try await MySQLConnection.connect(source.options.url)
            let id: UInt32?
            do {
                id = try await c.query("SELECT @@server_id").string(0, 0).flatMap { UInt32($0) }
                guard id == serverID else {
                    throw SluiceError(
                        .unavailable,
                        "the snapshot connection reached server \(id.map(String.init) ?? "?"), the stream reads server \(serverID) (a failover under way?)",
                        retryable: true)
                }
                try await MySQLSnapshot.prepare(c)
            } catch {
                await c.close()
                throw error
            }
            snapshotConnection = c
            snapshotServerID = id
        }
        let c = snapshotConnection!
        do {
            // Described for each chunk: an ALTER TABLE during the snapshot changes its columns.
            let shape = try await MySQLSnapshot.describe(table, on: c)
            var read = try await MySQLSnapshot.readChunk(shape, after: snapshot.after, limit: source.options.snapshotChunk, method: method, on: c)
            if mariaDB {
                // The GTID position the chunk's rows are current at.
                read.gtid = try await c.query("SELECT BINLOG_GTID_POS(\(MySQLSnapshot.literal(read.at.file)), \(read.at.position))").string(0, 0)
            }
            chunk = read
        } catch let e as SluiceError where e.isRetryable {
            await c.close()
            snapshotConnection = nil
            throw e
        }
    }

    /// Places the waiting chunk into the stream once everything before its position has been
    /// read: before the first ready transaction that ends after it, or at the end when the
    /// stream has read up to it (`boundary`: where the open transaction starts, if any).
    func placeChunkIfReached(before boundary: BinlogCoordinates? = nil) {
        guard let c = chunk else { return }
        let reached = boundary ?? stream.open?.start ?? stream.seen
        let index: Int
        if let later = stream.ready.firstIndex(where: { !$0.snapshot && $0.end > c.at && $0.start >= c.at }) {
            index = later
        } else if c.at <= reached {
            index = stream.ready.count
        } else {
            return
        }
        var progress = snapshot
        let table = progress.pending[0]
        if c.isLast {
            progress.pending.removeFirst()
            progress.after = nil
            context.logger.info("table snapshotted", metadata: ["table": "\(table)"])
        } else {
            progress.after = c.last
        }
        snapshot = progress
        var item = MySQLTransaction(
            start: c.at, end: c.at, gtid: c.gtid, serverID: serverID, timestamp: UInt32(Date().timeIntervalSince1970), changes: c.changes, snapshot: true,
            position: MySQLCDCPosition(at: c.at))
        item.position.pending = progress.pending
        item.position.after = progress.after
        item.position.known = progress.known
        stream.ready.insert(item, at: index)
        chunk = nil
        if snapshot.pending.isEmpty { context.logger.info("snapshot complete; streaming changes") }
    }

    // MARK: Handing over

    func handOverIfDue(idle: Bool) -> SourceBatch? {
        guard !stream.ready.isEmpty else {
            readySince = nil
            if idle {
                lagGauge.record(0)
                context.reportLag(0, "seconds")
            }
            return nil
        }
        let now = ContinuousClock.now
        if readySince == nil { readySince = now }
        let changes = stream.ready.reduce(0) { $0 + $1.changes.count }
        let waited = now - readySince!
        // Snapshot rows do not wait for company: the next chunk is read once this one is handed over.
        let snapshotRows = stream.ready.contains { $0.snapshot }
        let due = changes >= Self.batchChanges || idle || snapshotRows || (changes > 0 && waited >= Self.gathering) || waited >= .seconds(1)
        return due ? handOver(count: stream.ready.count) : nil
    }

    /// Hands over the first `count` ready items as one batch, checkpointed after the last.
    func handOver(count: Int) -> SourceBatch {
        let items = Array(stream.ready.prefix(count))
        stream.ready.removeFirst(count)
        readySince = stream.ready.isEmpty ? nil : .now
        var checkpoint = emitted
        for item in items {
            if item.snapshot {
                checkpoint.pending = item.position.pending
                checkpoint.after = item.position.after
                checkpoint.known = item.position.known
            } else {
                checkpoint.at = item.position.at
                checkpoint.gtid = item.position.gtid
                checkpoint.executed = item.position.executed
                checkpoint.delivered = item.position.delivered
                checkpoint.part = item.position.part
            }
        }
        emitted = checkpoint
        let changes = items.reduce(0) { $0 + $1.changes.count }
        var out = SourceBatch(
            records: MySQLChangeEvents.batch(items), position: SourcePosition(partition: source.partition, value: checkpoint.text),
            inputBytes: changes * 64)
        let commits = items.filter { !$0.snapshot }.map(\.timestamp)
        if let oldest = commits.min() { out.originTime = Date(timeIntervalSince1970: TimeInterval(oldest)) }
        if let newest = commits.max() {
            let behind = max(0, Date().timeIntervalSince1970 - TimeInterval(newest))
            lagGauge.record(behind)
            context.reportLag(behind, "seconds")
        }
        return out
    }
}
