import Foundation
import Logging
import SluiceCore
@testable import SluicePostgres
import SluiceTesting
import Testing

/// The watermark rule of snapshots taken while streaming, on hand-made pgoutput messages: a
/// change streamed between the low and the high watermark drops its row from the chunk (the
/// stream has the newer version); the rest of the chunk is emitted at the high watermark, and the
/// position moves past the chunk only then.
@Suite struct CDCWatermarkTests {
    let relation = PgRelation(
        oid: 7, namespace: "s", name: "t", replicaIdentity: UInt8(ascii: "d"),
        columns: [
            PgColumn(isKey: true, name: "id", typeOID: 23, typeModifier: -1),
            PgColumn(isKey: false, name: "v", typeOID: 25, typeModifier: -1),
        ])

    func row(_ id: Int, _ v: String) -> PgTuple { [.text(Array(String(id).utf8)), .text(Array(v.utf8))] }

    func reader() async throws -> PostgresCDCReader {
        let options = try PostgresCDCOptions(url: testServerURL(), slot: "wm_test", publication: "wm_test")
        let connection = try await PostgresConnection.connect(options.url)
        let context = SourceContext(pipeline: "p", state: MemoryStateStore(), logger: Logger(label: "t"))
        return PostgresCDCReader(
            source: PostgresCDCSource(options: options), replication: connection, streaming: true, exported: nil,
            database: "db", position: CDCPosition(lsn: 100, known: ["s.t"], pending: ["s.t"]), context: context)
    }

    /// A chunk read in a snapshot that sees every transaction below 1000 except `invisible`.
    func window(_ reader: PostgresCDCReader, ids: [Int], isLast: Bool, invisible: Set<UInt32> = []) -> PostgresCDCReader.Window {
        let table = SnapshotTable(name: "s.t", qualified: QualifiedName(schema: "s", name: "t"), keyColumns: ["id"], keyTypes: ["integer"])
        let changes = ids.map {
            ChangeEvents.Change(
                op: "r", table: "s.t", key: Array("{\"id\":\($0)}".utf8), before: nil, after: Array("{\"id\":\($0),\"v\":\"old\"}".utf8), seq: 0)
        }
        let chunk = SnapshotTable.Chunk(changes: changes, keys: ids.map { "{\"id\":\($0)}" }, last: [String(ids.last!)], isLast: isLast)
        return PostgresCDCReader.Window(id: "w1", table: table, chunk: chunk, visibility: TransactionSnapshot(xmax: 1000, inProgress: invisible))
    }

    @Test func changesBetweenTheWatermarksWinOverTheChunk() async throws {
        let r = try await reader()
        r.window = window(r, ids: [1, 2, 3, 4], isLast: false)
        try r.apply(.relation(relation))
        // Before the low watermark: a change of row 1 does not drop it (the chunk is newer).
        try r.apply(.begin(finalLSN: 110, commitTime: 0, xid: 1))
        try r.apply(.update(relation: 7, old: nil, oldIsKeyOnly: false, new: row(1, "before-low")))
        try r.apply(.commit(flags: 0, commitLSN: 110, endLSN: 111, commitTime: 0))
        try r.apply(.begin(finalLSN: 120, commitTime: 0, xid: 2))
        try r.apply(.message(transactional: true, lsn: 120, prefix: PostgresCDCSource.watermarkPrefix, content: Array("low:w1".utf8)))
        try r.apply(.commit(flags: 0, commitLSN: 120, endLSN: 121, commitTime: 0))
        // Between the watermarks: row 2 updated, row 3 deleted, row 9 (not in the chunk) inserted.
        try r.apply(.begin(finalLSN: 130, commitTime: 0, xid: 3))
        try r.apply(.update(relation: 7, old: nil, oldIsKeyOnly: false, new: row(2, "new")))
        try r.apply(.delete(relation: 7, old: [.text(Array("3".utf8)), .null], oldIsKeyOnly: true))
        try r.apply(.insert(relation: 7, new: row(9, "new")))
        try r.apply(.commit(flags: 0, commitLSN: 130, endLSN: 131, commitTime: 0))
        #expect(r.position.after == nil, "the position moves only at the high watermark")
        try r.apply(.begin(finalLSN: 140, commitTime: 0, xid: 4))
        try r.apply(.message(transactional: true, lsn: 140, prefix: PostgresCDCSource.watermarkPrefix, content: Array("high:w1".utf8)))
        try r.apply(.commit(flags: 0, commitLSN: 140, endLSN: 141, commitTime: 0))

        #expect(r.window == nil)
        #expect(r.ready.map(\.endLSN) == [111, 131, 141])
        let emitted = r.ready.last!.changes
        #expect(emitted.map(\.op) == ["r", "r"])
        #expect(emitted.compactMap { $0.key.map { String(decoding: $0, as: UTF8.self) } } == ["{\"id\":1}", "{\"id\":4}"])
        #expect(emitted.map(\.seq) == [0, 1])
        let position = try #require(r.ready.last!.position)
        #expect(position.lsn == 141 && position.pending == ["s.t"] && position.after == ["4"])
        // The transactions before the high watermark keep the position from before it.
        #expect(r.ready[1].position?.after == nil)
    }

    @Test func aTruncateBetweenTheWatermarksEmptiesTheChunkAndTheLastChunkEndsTheTable() async throws {
        let r = try await reader()
        r.window = window(r, ids: [1, 2], isLast: true)
        try r.apply(.relation(relation))
        try r.apply(.begin(finalLSN: 120, commitTime: 0, xid: 2))
        try r.apply(.message(transactional: true, lsn: 120, prefix: PostgresCDCSource.watermarkPrefix, content: Array("low:w1".utf8)))
        try r.apply(.truncate(relations: [7], options: 0))
        // Another reader's watermark is ignored.
        try r.apply(.message(transactional: true, lsn: 121, prefix: PostgresCDCSource.watermarkPrefix, content: Array("high:other".utf8)))
        try r.apply(.message(transactional: true, lsn: 122, prefix: PostgresCDCSource.watermarkPrefix, content: Array("high:w1".utf8)))
        try r.apply(.commit(flags: 0, commitLSN: 130, endLSN: 131, commitTime: 0))
        #expect(r.ready.count == 1 && r.ready[0].changes.map(\.op) == ["t"])
        #expect(r.position.pending.isEmpty && r.position.after == nil)
    }

    /// Commit order in the WAL is not visibility order: a transaction committed before the low
    /// watermark may be invisible to the chunk's read. The stream applied it already, so the older
    /// chunk must not be emitted over it: nothing of the chunk is emitted, the position stays,
    /// and the next window reads the same chunk again.
    @Test func aChunkThatMissedATransactionStreamedBeforeItsWindowIsReadAgain() async throws {
        let r = try await reader()
        r.window = window(r, ids: [1, 2], isLast: false, invisible: [5])
        try r.apply(.relation(relation))
        try r.apply(.begin(finalLSN: 110, commitTime: 0, xid: 5))
        try r.apply(.delete(relation: 7, old: [.text(Array("1".utf8)), .null], oldIsKeyOnly: true))
        try r.apply(.commit(flags: 0, commitLSN: 110, endLSN: 111, commitTime: 0))
        for (xid, mark) in [(UInt32(6), "low:w1"), (7, "high:w1")] {
            try r.apply(.begin(finalLSN: 120, commitTime: 0, xid: xid))
            try r.apply(.message(transactional: true, lsn: 120, prefix: PostgresCDCSource.watermarkPrefix, content: Array(mark.utf8)))
            try r.apply(.commit(flags: 0, commitLSN: 120, endLSN: 121, commitTime: 0))
        }
        #expect(r.window == nil && r.rereads == 1)
        #expect(r.ready.flatMap(\.changes).map(\.op) == ["d"], "the stale chunk (row 1 alive) must not follow the delete")
        #expect(r.position.after == nil && r.position.pending == ["s.t"])

        // Read again in a snapshot that sees it: emitted.
        r.window = window(r, ids: [2], isLast: false)
        for (xid, mark) in [(UInt32(8), "low:w1"), (9, "high:w1")] {
            try r.apply(.begin(finalLSN: 130, commitTime: 0, xid: xid))
            try r.apply(.message(transactional: true, lsn: 130, prefix: PostgresCDCSource.watermarkPrefix, content: Array(mark.utf8)))
            try r.apply(.commit(flags: 0, commitLSN: 130, endLSN: 131, commitTime: 0))
        }
        #expect(r.ready.last?.changes.map(\.op) == ["r"] && r.position.after == ["2"] && r.rereads == 0)
    }

    @Test func snapshotsParseAndCompareIdsModulo32Bits() throws {
        let s = try #require(TransactionSnapshot(parsing: "100:105:101,103"))
        #expect(s.sees(committed: 99) && s.sees(committed: 102) && s.sees(committed: 104))
        #expect(!s.sees(committed: 101) && !s.sees(committed: 103) && !s.sees(committed: 105) && !s.sees(committed: 4000))
        // Epoch-qualified ids (epoch 1) compare by their 32-bit part; wraparound is respected.
        let wrapped = try #require(TransactionSnapshot(parsing: "8589934590:8589934595:"))
        #expect(wrapped.sees(committed: UInt32.max) && wrapped.sees(committed: 2) && !wrapped.sees(committed: 3))
        #expect(TransactionSnapshot(parsing: "1:2") == nil && TransactionSnapshot(parsing: "a:b:") == nil)
        var recent = RecentTransactions(capacity: 2)
        for xid: UInt32 in [101, 50, 60] { recent.append(xid) }
        #expect(recent.firstUnseen(by: s) == nil, "101 fell out of the ring")
        recent.append(103)
        #expect(recent.firstUnseen(by: s) == 103)
    }

    @Test func positionsRoundTripAndBareLSNsStillParse() {
        let p = CDCPosition(lsn: 0x1_0000_00FF, known: ["a.b"], pending: ["a.b"], after: ["5", nil], exported: true)
        #expect(CDCPosition.parse(p.text) == p)
        #expect(CDCPosition.parse("1/FF") == CDCPosition(lsn: 0x1_0000_00FF))
        #expect(CDCPosition.parse("{\"lsn\": \"nope\"}") == nil)
    }
}
