import SluiceCore

/// The snapshot exported with a new slot, while a ``PostgresCDCReader`` reads it: the connection
/// whose transaction holds it, and the rows handed over so far. Reads chunks, numbers their rows
/// and ends the transaction; the reader moves the position and, once every chunk is read, hands
/// over to the stream (``PostgresCDCReader/handOverToStream()``).
struct ExportedSnapshot {
    /// The transaction holding the exported snapshot, while it is read.
    let connection: PostgresConnection
    /// Rows of the exported snapshot handed over by this reader (their `seq`).
    var rows = 0

    /// The chunk of `name` after `after`, at most `limit` rows (`described`: the table, when known).
    func read(_ name: String, described: SnapshotTable?, after: [String?]?, limit: Int) async throws -> (SnapshotTable, SnapshotTable.Chunk) {
        try await connection.run { s -> (SnapshotTable, SnapshotTable.Chunk) in
            let table = try described ?? SnapshotTable.describe(name, session: s)
            return (table, try table.chunk(after: after, limit: limit, session: s))
        }
    }

    /// A chunk's rows as one transaction at `position`, numbered after the rows handed over before.
    mutating func transaction(of changes: [ChangeEvents.Change], at position: CDCPosition, commitTime: Int64) -> ChangeEvents.Transaction {
        var t = ChangeEvents.Transaction(xid: 0, commitTime: commitTime, endLSN: position.lsn, changes: changes)
        // Snapshot rows share the slot's start LSN: number them across chunks (lsn + seq is unique).
        for i in t.changes.indices { t.changes[i].seq = rows + i }
        rows += t.changes.count
        t.position = position
        return t
    }

    /// Ends the transaction holding the snapshot (a broken connection is no matter).
    func end() async {
        _ = try? await connection.run { try $0.execute("COMMIT") }
    }
}
