import Foundation
import SluiceCore
@testable import SluicePostgres
import Testing

/// The decisions of the CDC reader's parts (``ReplicationStream``, ``WatermarkSnapshots``,
/// ``SlotSafety``, ``CDCPosition``), made on values alone: no server, no connection.
@Suite struct CDCReaderPartsTests {
    let relation = PgRelation(
        oid: 7, namespace: "s", name: "t", replicaIdentity: UInt8(ascii: "d"),
        columns: [
            PgColumn(isKey: true, name: "id", typeOID: 23, typeModifier: -1),
            PgColumn(isKey: false, name: "v", typeOID: 25, typeModifier: -1),
        ])

    func row(_ id: Int, _ v: String) -> PgTuple { [.text(Array(String(id).utf8)), .text(Array(v.utf8))] }

    func chunk(_ ids: [Int], isLast: Bool) -> SnapshotTable.Chunk {
        let changes = ids.map {
            ChangeEvents.Change(
                op: "r", table: "s.t", key: Array("{\"id\":\($0)}".utf8), before: nil, after: Array("{\"id\":\($0),\"v\":\"old\"}".utf8), seq: 0)
        }
        return SnapshotTable.Chunk(changes: changes, keys: ids.map { "{\"id\":\($0)}" }, last: [String(ids.last!)], isLast: isLast)
    }

    /// A window on `ids` of `s.t`, read in a snapshot that sees every transaction below 1000 except `invisible`.
    func window(_ ids: [Int], isLast: Bool = false, invisible: Set<UInt32> = []) -> WatermarkSnapshots.Window {
        let table = SnapshotTable(name: "s.t", qualified: QualifiedName(schema: "s", name: "t"), keyColumns: ["id"], keyTypes: ["integer"])
        return WatermarkSnapshots.Window(
            id: "w1", table: table, chunk: chunk(ids, isLast: isLast), visibility: TransactionSnapshot(xmax: 1000, inProgress: invisible))
    }

    func isNothing(_ action: WatermarkSnapshots.Action) -> Bool {
        if case .nothing = action { true } else { false }
    }

    func keys(_ changes: [ChangeEvents.Change]) -> [String] {
        changes.compactMap { $0.key.map { String(decoding: $0, as: UTF8.self) } }
    }

    // MARK: Watermark snapshots

    @Test func changesDropTheirRowsFromTheChunkOnlyAfterTheLowWatermark() {
        var w = WatermarkSnapshots()
        w.window = window([1, 2, 3])
        w.streamed("u", table: "s.t", relation: relation, before: nil, after: row(1, "before-low"))
        let low = w.watermark("low:w1")
        #expect(isNothing(low) && w.window?.isOpen == true)
        w.streamed("u", table: "s.t", relation: relation, before: nil, after: row(2, "new"))
        w.streamed("d", table: "other.t", relation: relation, before: row(3, ""), after: nil)
        let other = w.watermark("high:other")
        #expect(isNothing(other), "another reader's watermark")
        guard case let .emit(closed) = w.watermark("high:w1") else { Issue.record("the window should close"); return }
        #expect(keys(closed.untouched) == ["{\"id\":1}", "{\"id\":3}"])
        #expect(w.window == nil && w.rereads == 0)

        w.window = window([1, 2])
        _ = w.watermark("low:w1")
        w.streamed("t", table: "s.t", relation: relation, before: nil, after: nil)
        guard case let .emit(truncated) = w.watermark("high:w1") else { Issue.record("the window should close"); return }
        #expect(truncated.untouched.isEmpty, "a truncate between the watermarks empties the chunk")
    }

    @Test func aChunkThatMissedATransactionStreamedBeforeItsWindowIsReadAgainWithBackoff() {
        var w = WatermarkSnapshots()
        w.recent.append(5)
        let start = ContinuousClock.now
        for attempt in 1...2 {
            w.window = window([1, 2], invisible: [5])
            _ = w.watermark("low:w1")
            #expect(w.window?.unseen == 5)
            guard case let .readAgain(table, xid, count) = w.watermark("high:w1", at: start) else { Issue.record("the chunk should be read again"); return }
            #expect(table == "s.t" && xid == 5 && count == attempt)
            #expect(w.nextWindowAt == start + WatermarkSnapshots.rereadDelay(attempt))
        }
        #expect(!w.windowDue(pending: true, transactionOpen: false, at: start + .milliseconds(79)))
        #expect(w.windowDue(pending: true, transactionOpen: false, at: start + .milliseconds(80)))
        #expect(!w.windowDue(pending: false, transactionOpen: false, at: start + .seconds(1)))
        #expect(!w.windowDue(pending: true, transactionOpen: true, at: start + .seconds(1)))

        // Read in a snapshot that sees it: emitted, and the count starts over.
        w.window = window([1, 2])
        _ = w.watermark("low:w1")
        guard case .emit = w.watermark("high:w1") else { Issue.record("the window should close"); return }
        #expect(w.rereads == 0)
        #expect([1, 2, 3, 6, 7, 20].map(WatermarkSnapshots.rereadDelay) == [40, 80, 160, 1_000, 1_000, 1_000].map { Duration.milliseconds($0) })
    }

    // MARK: The stream

    @Test func transactionsAreHandedOverWhenNoneIsOpenOrTheStreamGoesQuiet() throws {
        var s = ReplicationStream(position: CDCPosition(lsn: 100), streaming: true)
        var position = CDCPosition(lsn: 100)
        _ = s.describe(relation)
        for (xid, end) in [(UInt32(1), UInt64(100)), (2, 111), (3, 121)] {
            s.begin(xid: xid, commitTime: 0)
            _ = try s.change("c", 7, before: nil, after: row(Int(xid), "x"))
            let committed = s.commit(endLSN: end, commitTime: 0, position: &position)
            #expect(committed == xid)
        }
        #expect(s.ready.map(\.endLSN) == [111, 121], "a transaction ending at the resume point was handed over before")
        #expect(position.lsn == 121)
        s.begin(xid: 4, commitTime: 0)
        let early = try s.handOver(quiet: false, position: position)
        #expect(early == nil, "a transaction is open and frames keep coming")
        let quiet = try s.handOver(quiet: true, position: position)
        let handed = try #require(quiet)
        #expect(handed.transactions.map(\.xid) == [2, 3] && handed.changes == 2)
        #expect(s.ready.isEmpty && s.emittedLSN == 121 && s.emittedPosition == position)
        let again = try s.handOver(quiet: true, position: position)
        #expect(again == nil)
    }

    @Test func aChangeNeedsItsRelationAndAnOpenTransaction() throws {
        var s = ReplicationStream(position: CDCPosition(lsn: 0), streaming: true)
        #expect(throws: SluiceError.self) { _ = try s.change("c", 7, before: nil, after: row(1, "x")) }
        _ = s.describe(relation)
        let dropped = try s.change("c", 7, before: nil, after: row(1, "x"))
        #expect(dropped == nil, "no transaction open: dropped")
        // REPLICA IDENTITY FULL: an unchanged TOASTed value comes from the whole old row.
        s.begin(xid: 1, commitTime: 0)
        let change = try s.change("u", 7, before: row(1, "big"), after: [.text(Array("1".utf8)), .unchangedToast], beforeIsWholeRow: true)
        let appended = try #require(change)
        #expect(appended.table == "s.t" && appended.after == row(1, "big"))
        #expect(s.open?.changes.map(\.seq) == [0])
        // A whole row is not partial; with REPLICA IDENTITY DEFAULT the unchanged TOAST value is
        // left out, and the change says so in its source (`"partial":true`, the column types too).
        _ = try s.change("u", 7, before: nil, after: [.text(Array("2".utf8)), .unchangedToast])
        #expect(s.open?.changes.map(\.partial) == [false, true])
        var t = try #require(s.open)
        // The partial change first in its batch: its source carries the column types too.
        t.changes = [t.changes[1], t.changes[0]]
        t.changes[0].types = Array("{\"id\":\"integer\"}".utf8)
        let batch = ChangeEvents.batch([t], database: "db")
        let sources = (0..<batch.count).map { row in batch.column(named: "source")!.withBytes(at: row) { String(decoding: $0, as: UTF8.self) } }
        #expect(sources[0].hasSuffix(",\"partial\":true}") && sources[0].contains("\"column_types\":{\"id\":\"integer\"}"), "\(sources[0])")
        #expect((try? JSONSerialization.jsonObject(with: Data(sources[0].utf8))) != nil)
        #expect(!sources[1].contains("partial"))
        #expect(String(decoding: batch.column(named: "after")!.withBytes(at: 0) { Array($0) }, as: UTF8.self) == #"{"id":2}"#)
    }

    @Test func theServersPositionIsConfirmedOnlyWithNothingInFlight() throws {
        var s = ReplicationStream(position: CDCPosition(lsn: 100), streaming: true)
        let keepalive = s.receive(.keepalive(walEnd: 500, sendTime: 0, replyRequested: true))
        #expect(keepalive == nil)
        #expect(s.serverLSN == 500 && s.feedbackDue(at: s.lastFeedback))
        #expect(s.confirmable(committed: nil, snapshotsIdle: true) == 500)
        #expect(s.confirmable(committed: nil, snapshotsIdle: false) == 100, "a watermark window or a pending table is in flight")
        s.emittedLSN = 200
        #expect(s.confirmable(committed: 150, snapshotsIdle: true) == 150, "handed over but not committed yet")
        #expect(s.confirmable(committed: 200, snapshotsIdle: true) == 500)
        s.begin(xid: 1, commitTime: 0)
        #expect(s.confirmable(committed: 200, snapshotsIdle: true) == 200, "a transaction is open")

        s.feedbackSent(at: s.lastFeedback)
        #expect(!s.replyRequested && !s.feedbackDue(at: s.lastFeedback + .seconds(5)) && s.feedbackDue(at: s.lastFeedback + .seconds(6)))
        let payload = s.receive(.xLogData(walStart: 0, walEnd: 600, sendTime: 0, payload: [1]))
        #expect(payload == [1])
        #expect(s.serverLSN == 600)
    }

    @Test func aBreakDropsWhatWasNotHandedOverAndBacksOff() {
        let handedOver = CDCPosition(lsn: 200, known: ["s.t"], pending: ["s.t"], after: ["4"])
        var s = ReplicationStream(position: CDCPosition(lsn: 100), streaming: true)
        s.emittedLSN = 200
        s.emittedPosition = handedOver
        s.serverLSN = 900
        s.replyRequested = true
        s.begin(xid: 1, commitTime: 0)
        s.ready = [ChangeEvents.Transaction(xid: 2, commitTime: 0, endLSN: 250, changes: [])]
        let delays = (1...7).map { _ in s.broke() }
        #expect(delays == [1, 2, 4, 8, 16, 30, 30].map { Duration.seconds($0) })
        let back = s.restart()
        #expect(back == handedOver)
        #expect(s.open == nil && s.ready.isEmpty && s.needsStream)
        #expect(s.resumeLSN == 200 && s.serverLSN == 0 && !s.replyRequested, "the old connection's position is not confirmed on the new one")
    }

    // MARK: Slot safety

    @Test func theRetainedWALIsCheckedAtOnceThenEvery15Seconds() {
        var slot = SlotSafety(pipeline: "p", slot: "s")
        let start = ContinuousClock.now
        let due = [0, 15, 16, 17, 31, 32].map { slot.checkDue(at: start + .seconds($0)) }
        #expect(due == [true, false, true, false, false, true])
    }

    @Test func aWarningOncePerCrossingOfTheLimit() {
        var slot = SlotSafety(pipeline: "p", slot: "s")
        let warnings = [5, 20, 30, 10, 5, 11, 12].map { slot.record($0, warningAt: 10) }
        #expect(warnings == [false, true, false, false, false, true, false])
    }

    // MARK: The position

    @Test func thePositionMovesPastChunksAndQueuesTablesThatJoinThePublication() {
        var p = CDCPosition(lsn: 1, known: ["s.t"], pending: ["s.t", "s.u"])
        var done = p.advance(past: chunk([1, 2], isLast: false))
        #expect(!done && p.after == ["2"] && p.pending == ["s.t", "s.u"])
        done = p.advance(past: chunk([3], isLast: true))
        #expect(done && p.after == nil && p.pending == ["s.u"])

        var queued = p.noteTable("s.t", snapshotting: true)
        #expect(!queued && p.known == ["s.t"], "known already")
        queued = p.noteTable("s.v", snapshotting: true)
        #expect(queued && p.known == ["s.t", "s.v"] && p.pending == ["s.u", "s.v"])
        queued = p.noteTable("s.w", snapshotting: false)
        #expect(!queued && p.known == ["s.t", "s.v", "s.w"] && p.pending == ["s.u", "s.v"])
        var old = CDCPosition(lsn: 1)
        queued = old.noteTable("s.t", snapshotting: true)
        #expect(!queued && old.known == nil, "an old bare-LSN checkpoint snapshots nothing again")
    }

    /// The slot's snapshot epoch names its snapshot events wherever they are read again
    /// (`source.snapshot_epoch`): kept in the checkpoint, 0 for one written before it was.
    @Test func theSnapshotEpochIsKeptInTheCheckpoint() throws {
        var p = CDCPosition(lsn: 0x20, known: ["s.t"], pending: ["s.t"])
        p.epoch = 0x10
        let joined = p.noteTable("s.u", snapshotting: true)
        p.queue(["s.t"])  // queued already
        #expect(joined && p.pending == ["s.t", "s.u"])
        #expect(p.text == #"{"epoch":"0\/10","known":["s.t","s.u"],"lsn":"0\/20","pending":["s.t","s.u"]}"#)
        #expect(try #require(CDCPosition.parse(p.text)) == p)
        let old = try #require(CDCPosition.parse(#"{"lsn":"0/30","known":["s.t"],"pending":["s.t"]}"#))
        #expect(old.epoch == 0)
        #expect(CDCPosition.parse(#"{"lsn":"0/30","epoch":"nope"}"#) == nil)
    }

    /// Snapshot reads carry their epoch in `source`; other changes do not.
    @Test func snapshotReadsCarryTheirEpochInTheirSource() {
        let t = ChangeEvents.Transaction(
            xid: 0, commitTime: 0, endLSN: 0x40,
            changes: [
                .init(op: "r", table: "s.t", key: Array(#"{"id":1}"#.utf8), after: Array(#"{"id":1}"#.utf8), seq: 0, snapshotEpoch: 0x10),
                .init(op: "c", table: "s.t", key: Array(#"{"id":2}"#.utf8), after: Array(#"{"id":2}"#.utf8), seq: 1),
            ])
        let batch = ChangeEvents.batch([t], database: "db")
        let sources = (0..<2).map { row in batch.columns[5].withBytes(at: row) { String(decoding: $0, as: UTF8.self) } }
        #expect(sources[0] == #"{"db":"db","schema":"s","table":"t","snapshot_epoch":"0/10","lsn":"0/40","txId":0,"ts_ms":946684800000}"#)
        #expect(sources[1] == #"{"db":"db","schema":"s","table":"t","lsn":"0/40","txId":0,"ts_ms":946684800000}"#)
    }
}
