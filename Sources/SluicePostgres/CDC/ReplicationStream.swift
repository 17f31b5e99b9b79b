import SluiceCore

/// The state of a ``PostgresCDCReader``'s replication stream: the relations and transactions
/// decoded from it (the open one, those ready to hand over), how far the runtime and the server
/// are, when the server was last told, and the breaks in a row. Values only, so its decisions
/// are testable without a server: the reader owns the connection and does the reading, the
/// feedback and the reconnects.
struct ReplicationStream {
    /// Whether the reader's `connection` streams yet (it does not while the exported snapshot is read).
    var streaming: Bool
    /// The reader's `connection` broke: the next read streams on a new one (from ``emittedLSN``).
    var needsStream = false
    /// Transactions ending at or below this were handed over before (skipped if sent again).
    var resumeLSN: UInt64
    /// The transaction after ``resumeLSN`` was handed over in parts, and these are committed:
    /// its changes delivered already are skipped when the server sends it again.
    var resumePartial: CDCPosition.Partial?
    /// Consecutive failed reconnects (for the backoff).
    var failures = 0
    var relations: [UInt32: PgRelation] = [:]
    /// `schema.table` of each relation, built once per Relation message (not per change).
    var tableNames: [UInt32: String] = [:]
    /// The column types of each relation, as change events carry them (built once per Relation message).
    var columnTypes: [UInt32: [UInt8]?] = [:]
    var open: ChangeEvents.Transaction?
    var ready: [ChangeEvents.Transaction] = []
    /// The newest LSN handed to the runtime, and the newest the server said it has (keepalives
    /// of the current connection).
    var emittedLSN: UInt64
    /// The reader's ``PostgresCDCReader/position`` as of the last batch handed over (restored
    /// when a broken stream drops what was read after it).
    var emittedPosition: CDCPosition
    var serverLSN: UInt64 = 0
    var lastFeedback = ContinuousClock.now
    var replyRequested = false

    /// Hand a batch over once this many changes are ready (or the stream goes quiet).
    static let batchChanges = 10_000
    /// An open transaction holds at most this many changes, or about ``spillBytes`` of them, in
    /// memory; the rest go to a file (``ChangeSpill``) until its commit arrives. Then it is
    /// handed over a batch at a time, each part checkpointed.
    static let spillChanges = 20_000
    static let spillBytes = 16 << 20
    /// The changes of one part of a spilled transaction: smaller than a batch, as the runtime
    /// queues several parts at once (the peak memory of a 5M-row transaction was 169 MB with
    /// parts of 10,000).
    static let partChanges = 5_000

    init(position: CDCPosition, streaming: Bool) {
        self.streaming = streaming
        resumeLSN = position.lsn
        resumePartial = position.partial
        emittedLSN = position.lsn
        emittedPosition = position
    }

    // MARK: Frames and messages

    /// Takes in what a frame says of the server (its end of WAL, whether it asks for a status
    /// update); returns the pgoutput message of an XLogData frame.
    mutating func receive(_ frame: ReplicationFrame) -> [UInt8]? {
        switch frame {
        case let .keepalive(walEnd, _, reply):
            serverLSN = max(serverLSN, walEnd)
            replyRequested = replyRequested || reply
            return nil
        case let .xLogData(_, walEnd, _, payload):
            serverLSN = max(serverLSN, walEnd)
            return payload
        }
    }

    /// A transaction starts. `finalLSN` (its commit record's LSN) names it: the one a crash
    /// interrupted while it was handed over in parts skips the changes delivered already.
    mutating func begin(finalLSN: UInt64 = 0, xid: UInt32, commitTime: Int64) {
        var t = ChangeEvents.Transaction(xid: xid, commitTime: commitTime, endLSN: 0, changes: [])
        t.commitLSN = finalLSN
        if let partial = resumePartial, finalLSN != 0, partial.commitLSN == finalLSN { t.skip = partial.delivered }
        open = t
    }

    /// Ends the open transaction at `endLSN` and moves `position` there; the transaction is
    /// ready to hand over unless it is empty or was handed over before. Returns its id (nil
    /// when none was open).
    mutating func commit(endLSN: UInt64, commitTime: Int64, position: inout CDCPosition) -> UInt32? {
        guard var t = open else { return nil }
        open = nil
        t.endLSN = endLSN
        t.commitTime = commitTime
        t.before = position
        position.lsn = max(position.lsn, endLSN)
        position.partial = nil
        t.position = position
        if let partial = resumePartial, partial.commitLSN == t.commitLSN || endLSN > resumeLSN { resumePartial = nil }
        // Replayed after a crash: already committed downstream.
        if endLSN > resumeLSN && (!t.changes.isEmpty || t.spill != nil) { ready.append(t) }
        return t.xid
    }

    /// Remembers a relation (a Relation message); returns its `schema.table`.
    mutating func describe(_ r: PgRelation) -> String {
        relations[r.oid] = r
        let name = "\(r.namespace).\(r.name)"
        tableNames[r.oid] = name
        columnTypes[r.oid] = ChangeEvents.columnTypes(r)
        return name
    }

    /// Appends a row change to the open transaction. Returns its relation, its table and the new
    /// row as appended; nil when no transaction is open (the change is dropped).
    mutating func change(
        _ op: String, _ oid: UInt32, before: PgTuple?, after: PgTuple?,
        beforeIsWholeRow: Bool = false
    ) throws -> (relation: PgRelation, table: String, after: PgTuple?)? {
        guard let relation = relations[oid] else {
            throw SluiceError(.corruptState, "a change for relation \(oid) arrived before its description", retryable: true)
        }
        guard open != nil else { return nil }
        var after = after
        if beforeIsWholeRow, var new = after, let old = before, old.count == new.count {
            // REPLICA IDENTITY FULL sends the whole old row: an unchanged TOASTed value (not sent
            // in the new row) is carried over from it instead of being left out.
            for i in new.indices where new[i] == .unchangedToast && old[i] != .unchangedToast { new[i] = old[i] }
            after = new
        }
        let table = tableNames[oid] ?? "\(relation.namespace).\(relation.name)"
        // Delivered in parts before a crash: committed downstream already. (One in-place access
        // per step: reading `open!.field` copies the transaction, every reference in it retained.)
        guard let seq = open!.number() else { return (relation, table, after) }
        let keySource = after ?? before
        let key = relation.columns.contains(where: \.isKey) ? keySource.map { ChangeEvents.json($0, relation: relation, keyOnly: true) } : nil
        var change = ChangeEvents.Change(
            op: op, table: table, key: key,
            before: before.map { ChangeEvents.json($0, relation: relation) },
            after: after.map { ChangeEvents.json($0, relation: relation) },
            seq: seq, types: columnTypes[oid] ?? nil)
        change.partial = after?.contains(.unchangedToast) ?? false
        if open!.keep(change, spillingAt: Self.spillChanges, bytes: Self.spillBytes) { try spillOpen() }
        return (relation, table, after)
    }

    /// Moves the open transaction's changes in memory to its file.
    mutating func spillOpen() throws {
        guard var t = open else { return }
        open = nil  // the transaction is mutated alone, not copied
        defer { open = t }
        if t.spill == nil { t.spill = try ChangeSpill() }
        try t.spill!.append(t.changes)
        t.changes.removeAll(keepingCapacity: true)
        t.bytes = 0
    }

    /// Appends snapshot rows to the open transaction (if any), numbered after its changes.
    mutating func append(rows: [ChangeEvents.Change]) {
        guard open != nil, !rows.isEmpty else { return }
        open!.hasSnapshotRows = true
        for row in rows {
            var c = row
            c.seq = open!.seen
            open!.seen += 1
            open!.changes.append(c)
        }
    }

    // MARK: Handing over

    /// The transactions to hand over now, and their changes: once ``batchChanges`` changes are
    /// ready, or some are and either the stream went quiet (`quiet`: the last read brought no
    /// frame) or no transaction is open. They set ``emittedLSN`` and ``emittedPosition``
    /// (`position` when the last one has none). A spilled transaction goes alone, a part at a
    /// time (``handOverPart()``), after the transactions before it.
    mutating func handOver(quiet: Bool, position: CDCPosition) throws -> (transactions: [ChangeEvents.Transaction], changes: Int)? {
        if let first = ready.first, first.spill != nil { return try handOverPart() }
        let end = ready.firstIndex { $0.spill != nil } ?? ready.count
        let changes = ready[..<end].reduce(0) { $0 + $1.changes.count }
        let some = end > 0
        guard changes >= Self.batchChanges || (some && quiet) || (some && open == nil) || (some && end < ready.count) else { return nil }
        let transactions = Array(ready[..<end])
        ready.removeFirst(end)
        emittedLSN = transactions.last!.endLSN
        emittedPosition = transactions.last!.position ?? position
        return (transactions, changes)
    }

    /// The next part of the spilled transaction first in ``ready``: up to ``batchChanges`` of its
    /// changes, checkpointed as ``CDCPosition/partial`` of the position before it; the last part
    /// (its changes still in memory) with the transaction's own position. One that cannot be
    /// handed over in parts (``ChangeEvents/Transaction/inParts``) goes whole.
    mutating func handOverPart() throws -> (transactions: [ChangeEvents.Transaction], changes: Int) {
        var t = ready.removeFirst()
        var part = t
        part.spill = nil
        let spill = t.spill!
        let last: Bool
        if !t.inParts {
            part.changes = try spill.next(Int.max) + t.changes
            last = true
        } else if !spill.isDrained {
            part.changes = try spill.next(Self.partChanges)
            t.handedOver += part.changes.count
            last = spill.isDrained && t.changes.isEmpty
        } else {
            part.changes = t.changes
            t.changes = []
            last = true
        }
        if last {
            emittedLSN = t.endLSN
            emittedPosition = t.position!
        } else {
            var before = t.before!
            before.partial = CDCPosition.Partial(commitLSN: t.commitLSN, delivered: t.skip + t.handedOver)
            emittedLSN = before.lsn
            emittedPosition = before
            ready.insert(t, at: 0)
        }
        return ([part], part.changes.count)
    }

    // MARK: Feedback

    /// Whether to send a standby status update: when the server asked, and at least every 5 s.
    func feedbackDue(at now: ContinuousClock.Instant = .now) -> Bool {
        replyRequested || now - lastFeedback > .seconds(5)
    }

    /// The LSN to confirm to the server: what the sink has committed (`committed`; nil before the
    /// first commit: where this reader resumed). With nothing in flight (everything handed over
    /// committed, no transaction open or ready, `snapshotsIdle`), the server's own position.
    func confirmable(committed: UInt64?, snapshotsIdle: Bool) -> UInt64 {
        var flushed = committed ?? resumeLSN
        if flushed >= emittedLSN && open == nil && ready.isEmpty && snapshotsIdle {
            flushed = max(flushed, serverLSN)
        }
        return flushed
    }

    mutating func feedbackSent(at now: ContinuousClock.Instant = .now) {
        lastFeedback = now
        replyRequested = false
    }

    // MARK: Breaks

    /// The wait before streaming again after `failures` breaks in a row: 1 s, doubling up to 30 s.
    static func backoff(failures: Int) -> Duration {
        .seconds(min(30, 1 << min(failures - 1, 5)))
    }

    /// Counts a break; returns the wait before streaming again.
    mutating func broke() -> Duration {
        failures += 1
        return Self.backoff(failures: failures)
    }

    /// Drops what was read after the last batch handed over (it is read again, on a new
    /// connection); returns the position to go back to.
    mutating func restart() -> CDCPosition {
        open = nil
        ready.removeAll()
        resumeLSN = emittedLSN
        resumePartial = emittedPosition.partial
        // The old connection's position may lie past transactions that were read but not
        // handed over (dropped above): confirming it on the new connection would make the
        // server skip them after the next break. Only this connection's keepalives count.
        serverLSN = 0
        replyRequested = false
        // The next read connects (a failure there comes back here, with a longer delay).
        needsStream = true
        return emittedPosition
    }
}
