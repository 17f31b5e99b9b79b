import Crypto
import SluiceCore

/// The `Nats-Msg-Id` of a snapshot read (`op` `r`) of log-based CDC:
/// `<pipeline>:r:<snapshot_epoch>:<SHA-256 of table, NUL, key JSON>`.
///
/// A change's commit LSN and index name it wherever it is read again, but a snapshot row's do
/// not: after a crash the rest of a snapshot is read with watermarks, in other chunks at other
/// LSNs than the first attempt's, and rows published but not committed would be stored twice.
/// Its table and key name it on every read, and the epoch (`source.snapshot_epoch`, the slot's
/// start point) tells a new snapshot (a new slot) from a replay of the same one. The table and
/// key are hashed: a header value must not hold a line break, and a quoted table name may.
///
/// The epoch is read from `source` as Sluice writes it; a transform that rewrites `source` or
/// drops `key` brings back the LSN and index.
enum ChangeEventIDs {
    /// The ids of a batch's snapshot reads by row (nil for other rows), or nil when the batch has
    /// no change-event columns.
    static func snapshotReads(_ batch: RecordBatch, pipeline: String) -> ((Int) -> String?)? {
        guard let op = batch.column(named: "op"), let table = batch.column(named: "table"), let key = batch.column(named: "key"),
            let source = batch.column(named: "source")
        else { return nil }
        return { row in
            guard op.withBytes(at: row, { $0.count == 1 && $0.first == UInt8(ascii: "r") }), !key.isNull(row),
                let epoch = source.withBytes(at: row, { snapshotEpoch(in: $0) })
            else { return nil }
            var hash = SHA256()
            table.withBytes(at: row) { hash.update(bufferPointer: UnsafeRawBufferPointer($0)) }
            hash.update(data: [0])
            key.withBytes(at: row) { hash.update(bufferPointer: UnsafeRawBufferPointer($0)) }
            let digest = hash.finalize().map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }.joined()
            return "\(pipeline):r:\(epoch):\(digest)"
        }
    }

    static let marker = Array("\"snapshot_epoch\":\"".utf8)

    /// The value of `"snapshot_epoch":"…"` in a `source` object (an LSN: no escapes), if present.
    static func snapshotEpoch(in source: UnsafeBufferPointer<UInt8>) -> String? {
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
