import SluiceCore

/// Snapshots taken while streaming, with watermarks (DBLog's method, see ``PostgresCDCSource``):
/// the chunk being read (its ``Window``), the connection that reads it, the tables described so
/// far, the transactions streamed lately, and the chunks read again because their snapshot
/// missed one. Decides what a change or a watermark streaming past does to the window; the
/// reader reads the chunks (``read(_:described:after:limit:window:on:)``) and acts on the
/// decisions.
struct WatermarkSnapshots {
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

        /// The chunk's rows that no change touched in between (none after a truncate).
        var untouched: [ChangeEvents.Change] {
            guard !truncated else { return [] }
            return zip(chunk.changes, chunk.keys).filter { !dropped.contains($0.1) }.map(\.0)
        }
    }

    /// What a watermark streaming past calls for.
    enum Action {
        /// Nothing more (not the window's high watermark).
        case nothing
        /// The window closed, but its chunk missed a transaction streamed before it (rare: a
        /// commit racing the chunk's read): the same chunk is read again, from ``nextWindowAt``.
        case readAgain(table: String, xid: UInt32, attempt: Int)
        /// The window closed: its ``Window/untouched`` rows are current as of here, and the
        /// position moves past its chunk.
        case emit(Window)
    }

    /// Whether to open a window now: none is open, a table is `pending`, no transaction is open,
    /// and the wait after a re-read is over.
    func windowDue(pending: Bool, transactionOpen: Bool, at now: ContinuousClock.Instant = .now) -> Bool {
        window == nil && pending && !transactionOpen && now >= nextWindowAt
    }

    /// A change of `table` streamed past. Once the low watermark has, the stream has a newer
    /// version of the change's rows than the chunk: they are dropped from it (all of them after a
    /// truncate, op `t`).
    mutating func streamed(_ op: String, table: String, relation: PgRelation, before: PgTuple?, after: PgTuple?) {
        guard var w = window, w.isOpen, w.table.name == table else { return }
        // The stream has a newer version of these rows than the chunk.
        if op == "t" { w.truncated = true }
        for tuple in [before, after] { if let tuple, let key = w.table.key(of: tuple, relation: relation) { w.dropped.insert(key) } }
        window = w
    }

    /// A watermark message streamed past (`content`: `low:` or `high:` and a window's id).
    mutating func watermark(_ content: String, at now: ContinuousClock.Instant = .now) -> Action {
        guard var w = window else { return .nothing }
        if content == "low:" + w.id {
            w.isOpen = true
            w.unseen = recent.firstUnseen(by: w.visibility)
            window = w
        } else if content == "high:" + w.id {
            window = nil
            if let xid = w.unseen {
                // Rare (a commit racing the chunk's read): read the same chunk again.
                rereads += 1
                nextWindowAt = now + Self.rereadDelay(rereads)
                return .readAgain(table: w.table.name, xid: xid, attempt: rereads)
            }
            rereads = 0
            return .emit(w)
        }
        return .nothing
    }

    /// The wait before the `rereads`-th re-read in a row of a chunk: 40 ms, doubling up to 1 s.
    static func rereadDelay(_ rereads: Int) -> Duration {
        .milliseconds(min(1_000, 20 << min(rereads, 6)))
    }

    /// The stream broke: a chunk whose watermarks may be among what was dropped is read again
    /// (on a new connection).
    mutating func restart() {
        window = nil
        snapshotConnection = nil
    }

    /// Reads the chunk of `name` after `after` (at most `limit` rows) on `connection`, between
    /// the low and the high watermark of window `id` (`described`: the table, when known).
    static func read(
        _ name: String, described: SnapshotTable?, after: [String?]?, limit: Int, window id: String,
        on connection: PostgresConnection
    ) async throws -> (SnapshotTable, SnapshotTable.Chunk, TransactionSnapshot) {
        let prefix = PostgresCDCSource.watermarkPrefix
        return try await connection.run { s -> (SnapshotTable, SnapshotTable.Chunk, TransactionSnapshot) in
            let table = try described ?? SnapshotTable.describe(name, session: s)
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
    }
}
