import SluiceCore
@testable import SluicePostgres
import Testing

/// A large transaction is held in a file, not in memory, until its commit, then handed over a
/// batch at a time with a checkpoint per part; after a crash the server sends it again and the
/// parts committed are skipped (``ReplicationStream``, ``ChangeSpill``).
@Suite struct CDCLargeTransactionTests {
    let relation = PgRelation(
        oid: 7, namespace: "s", name: "t", replicaIdentity: UInt8(ascii: "d"),
        columns: [
            PgColumn(isKey: true, name: "id", typeOID: 23, typeModifier: -1),
            PgColumn(isKey: false, name: "v", typeOID: 25, typeModifier: -1),
        ])

    func row(_ id: Int) -> PgTuple { [.text(Array(String(id).utf8)), .text(Array("value \(id)".utf8))] }

    /// Sends a transaction of `count` inserts (ids from `first`) ending at `end`; returns the
    /// most changes the open transaction held in memory meanwhile.
    func send(
        _ s: inout ReplicationStream, xid: UInt32, finalLSN: UInt64, end: UInt64, first: Int = 0, count: Int, position: inout CDCPosition
    ) throws -> Int {
        s.begin(finalLSN: finalLSN, xid: xid, commitTime: 0)
        var most = 0
        for id in first..<first + count {
            _ = try s.change("c", 7, before: nil, after: row(id))
            most = max(most, s.open?.changes.count ?? 0)
        }
        _ = s.commit(endLSN: end, commitTime: 0, position: &position)
        return most
    }

    /// Everything handed over until nothing is ready: (the ids of each part, the position after it).
    func drain(_ s: inout ReplicationStream, position: CDCPosition) throws -> [(ids: [Int], position: CDCPosition)] {
        var parts: [(ids: [Int], position: CDCPosition)] = []
        while let handed = try s.handOver(quiet: true, position: position) {
            let ids = handed.transactions.flatMap(\.changes).map { c -> Int in
                let text = String(decoding: c.key ?? [], as: UTF8.self)
                return Int(text.dropFirst(6).dropLast()) ?? -1
            }
            parts.append((ids, s.emittedPosition))
        }
        return parts
    }

    @Test func aLargeTransactionIsHeldInAFileAndHandedOverInCheckpointedParts() throws {
        let count = ReplicationStream.spillChanges * 2 + 5
        var s = ReplicationStream(position: CDCPosition(lsn: 100), streaming: true)
        var position = CDCPosition(lsn: 100)
        _ = s.describe(relation)
        _ = try send(&s, xid: 1, finalLSN: 105, end: 110, first: -1, count: 1, position: &position)
        let most = try send(&s, xid: 2, finalLSN: 200, end: 210, count: count, position: &position)
        #expect(most < ReplicationStream.spillChanges, "the open transaction held \(most) changes in memory")
        #expect(s.ready.last?.spill?.count == ReplicationStream.spillChanges * 2)
        _ = try send(&s, xid: 3, finalLSN: 300, end: 310, first: count, count: 1, position: &position)

        let parts = try drain(&s, position: position)
        #expect(parts.first?.ids == [-1] && parts.first?.position.lsn == 110, "the transaction before goes first, alone")
        let large = parts.dropFirst().dropLast()
        #expect(large.flatMap(\.ids) == Array(0..<count), "every change once, in order")
        #expect(large.allSatisfy { $0.ids.count <= ReplicationStream.partChanges })
        // Each part but the last is checkpointed inside the transaction, at the position before it.
        var delivered = 0
        for part in large.dropLast() {
            delivered += part.ids.count
            #expect(part.position.lsn == 110 && part.position.partial == CDCPosition.Partial(commitLSN: 200, delivered: delivered))
        }
        #expect(large.last?.position.lsn == 210 && large.last?.position.partial == nil)
        #expect(parts.last?.ids == [count] && parts.last?.position.lsn == 310)
        #expect(s.ready.isEmpty && large.count == count / ReplicationStream.partChanges + 1)
    }

    @Test func aTransactionInterruptedBetweenItsPartsSkipsTheCommittedOnesWhenSentAgain() throws {
        let count = ReplicationStream.spillChanges + 3_000
        // The checkpoint of a run killed after two parts: 20,000 changes committed.
        let committed = CDCPosition.Partial(commitLSN: 200, delivered: 4 * ReplicationStream.partChanges)
        var checkpoint = CDCPosition(lsn: 110)
        checkpoint.partial = committed
        let decoded = try #require(CDCPosition.parse(checkpoint.text))
        #expect(decoded == checkpoint, "the partial position survives the checkpoint's JSON: \(checkpoint.text)")

        var s = ReplicationStream(position: decoded, streaming: true)
        var position = decoded
        _ = s.describe(relation)
        // The server sends from the slot's confirmed position: the transaction before again (skipped), then the large one.
        _ = try send(&s, xid: 1, finalLSN: 105, end: 110, first: -1, count: 1, position: &position)
        _ = try send(&s, xid: 2, finalLSN: 200, end: 210, count: count, position: &position)
        #expect(s.ready.count == 1 && s.ready[0].spill == nil, "only its 3,000 last changes are kept, in memory")
        let parts = try drain(&s, position: position)
        #expect(parts.flatMap(\.ids) == Array(committed.delivered..<count))
        #expect(parts.last?.position.lsn == 210 && parts.last?.position.partial == nil)

        // A break after one part: the stream starts over and skips that part too.
        var again = ReplicationStream(position: CDCPosition(lsn: 110), streaming: true)
        var p2 = CDCPosition(lsn: 110)
        _ = again.describe(relation)
        _ = try send(&again, xid: 2, finalLSN: 200, end: 210, count: count, position: &p2)
        let first = try #require(try again.handOver(quiet: true, position: p2))
        #expect(first.changes == ReplicationStream.partChanges && again.emittedPosition.partial?.delivered == ReplicationStream.partChanges)
        _ = again.broke()
        let back = again.restart()
        #expect(back.lsn == 110 && back.partial == CDCPosition.Partial(commitLSN: 200, delivered: ReplicationStream.partChanges))
        p2 = back
        _ = again.describe(relation)
        _ = try send(&again, xid: 2, finalLSN: 200, end: 210, count: count, position: &p2)
        let rest = try drain(&again, position: p2)
        #expect(rest.flatMap(\.ids) == Array(ReplicationStream.partChanges..<count))
        // Another transaction with the same number of changes is not skipped: the commit LSN names it.
        var other = ReplicationStream(position: decoded, streaming: true)
        var p3 = decoded
        _ = other.describe(relation)
        _ = try send(&other, xid: 9, finalLSN: 900, end: 910, count: 5, position: &p3)
        #expect(try drain(&other, position: p3).flatMap(\.ids) == Array(0..<5))
    }

    @Test func theSpillFileGivesBackEveryFieldInOrder() throws {
        let spill = try ChangeSpill()
        var changes: [ChangeEvents.Change] = []
        for i in 0..<3_000 {
            var c = ChangeEvents.Change(
                op: ["c", "u", "d", "r"][i % 4], table: "s.t\(i % 3)", key: i % 5 == 0 ? nil : Array("{\"id\":\(i)}".utf8),
                before: i % 2 == 0 ? nil : Array("{\"id\":\(i),\"v\":\"ö\"}".utf8),
                after: Array(repeating: UInt8(ascii: "x"), count: i == 7 ? 3 << 20 : i % 50),
                seq: i, types: i % 7 == 0 ? Array("{\"id\":\"integer\"}".utf8) : nil)
            c.snapshotEpoch = i % 4 == 3 ? UInt64(i) : nil
            // Partial (an unchanged TOAST value) with and without an epoch: both flags kept.
            c.partial = i % 3 == 1
            changes.append(c)
        }
        try spill.append(Array(changes[..<1_000]))
        var back = try spill.next(400)
        try spill.append(Array(changes[1_000...]))
        while !spill.isDrained { back += try spill.next(999) }
        #expect(back.count == changes.count)
        for (a, b) in zip(back, changes) {
            #expect(
                a.op == b.op && a.table == b.table && a.key == b.key && a.before == b.before && a.after == b.after && a.seq == b.seq
                    && a.types == b.types && a.snapshotEpoch == b.snapshotEpoch && a.partial == b.partial, "change \(b.seq)")
        }
        #expect(try spill.next(10).isEmpty)
    }
}
