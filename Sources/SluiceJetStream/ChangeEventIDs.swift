import SluiceCore

/// The `Nats-Msg-Id` of a snapshot read (`op` `r`) of log-based CDC: its table's snapshot epoch
/// (`source.snapshot_lsn`), table and key, `<pipeline>:r:<snapshot_lsn>:<table>:<key JSON>`.
///
/// A change's commit LSN and index name it wherever it is read again, but a snapshot row's do
/// not: after a crash the rest of a snapshot is read with watermarks, in other chunks at other
/// LSNs than the first attempt's, and rows published but not committed would be stored twice.
/// Its key within its snapshot names it on every read; the epoch tells a new snapshot of the
/// table (a new slot, a table that joined again) from a replay of the same one.
enum ChangeEventIDs {
    /// The ids of a batch's snapshot reads by row (nil for other rows), or nil when the batch has
    /// no change-event columns.
    static func snapshotReads(_ batch: RecordBatch, pipeline: String) -> ((Int) -> String?)? {
        guard let op = batch.column(named: "op"), let table = batch.column(named: "table"), let key = batch.column(named: "key"),
            let source = batch.column(named: "source")
        else { return nil }
        return { row in
            guard op.withBytes(at: row, { $0.count == 1 && $0.first == UInt8(ascii: "r") }), !key.isNull(row),
                let epoch = source.withBytes(at: row, { snapshotLSN(in: $0) })
            else { return nil }
            let tableName = table.withBytes(at: row) { String(decoding: $0, as: UTF8.self) }
            let keyText = key.withBytes(at: row) { String(decoding: $0, as: UTF8.self) }
            return "\(pipeline):r:\(epoch):\(tableName):\(keyText)"
        }
    }

    static let marker = Array("\"snapshot_lsn\":\"".utf8)

    /// The value of `"snapshot_lsn":"…"` in a `source` object (an LSN: no escapes), if present.
    static func snapshotLSN(in source: UnsafeBufferPointer<UInt8>) -> String? {
        guard source.count > marker.count else { return nil }
        var i = 0
        while i + marker.count <= source.count {
            if source[i] == marker[0], (0..<marker.count).allSatisfy({ source[i + $0] == marker[$0] }) {
                let start = i + marker.count
                var end = start
                while end < source.count, source[end] != UInt8(ascii: "\"") { end += 1 }
                guard end < source.count, end > start else { return nil }
                return String(decoding: UnsafeBufferPointer(rebasing: source[start..<end]), as: UTF8.self)
            }
            i += 1
        }
        return nil
    }
}
