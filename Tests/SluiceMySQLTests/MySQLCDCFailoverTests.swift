import Foundation
import SluiceCore
import Testing

@testable import SluiceMySQL

/// A checkpoint holds across a failover: the pipeline, pointed at the replica that took over,
/// resumes after the checkpoint's GTID position there, even inside a transaction handed over in
/// parts. By file and position (another server's place) it cannot.
extension MySQLCDCReaderTests {
    @Test func aCheckpointFollowsAFailoverToAReplicaByGTID() async throws {
        let primary = try await PrivateMariaDB.start(serverID: 1)
        let replica: PrivateMariaDB
        do {
            replica = try await PrivateMariaDB.start(serverID: 2)
        } catch {
            await primary.stop()
            throw error
        }
        do {
            try await failover(from: primary, to: replica)
            await primary.stop()
            await replica.stop()
        } catch {
            await primary.stop()
            await replica.stop()
            throw error
        }
    }

    func failover(from primary: PrivateMariaDB, to replica: PrivateMariaDB) async throws {
        let primaryURL = try MySQLURL(primary.url)
        let p = try await MySQLConnection.connect(primaryURL)
        let r = try await MySQLConnection.connect(try MySQLURL(replica.url))
        // The replica follows the primary from here on, by GTID, logging what it applies.
        let start = try #require(try await p.query("SELECT @@gtid_binlog_pos").string(0, 0))
        try await r.execute(
            "RESET MASTER", "SET GLOBAL gtid_slave_pos = '\(start)'",
            "CHANGE MASTER TO MASTER_HOST = '127.0.0.1', MASTER_PORT = \(primaryURL.port), MASTER_USER = 'sluice', MASTER_PASSWORD = 'sluice', MASTER_USE_GTID = slave_pos",
            "START SLAVE")
        try await p.execute(
            "CREATE TABLE sluice_test.t (id INT PRIMARY KEY, v VARCHAR(20))",
            "INSERT INTO sluice_test.t SELECT seq, CONCAT('s', seq) FROM seq_1_to_100")
        let s = try source(primary.url, ["sluice_test.t"], snapshot: .initial)
        let reader = try await s.makeReader(resumingFrom: .empty, context: context())
        let snapshot = try await read(reader, count: 100)
        #expect(snapshot.ids == Array(1...100))
        #expect(Set(snapshot.ops) == ["r"])
        for id in 101...110 { try await p.execute("INSERT INTO sluice_test.t VALUES (\(id), 'c')") }
        let single = try await read(reader, count: 10)
        #expect(single.ids == Array(101...110))
        // A transaction of 25,000 changes: its first part is delivered, then the primary is lost.
        try await p.execute("INSERT INTO sluice_test.t SELECT seq, 'big' FROM seq_111_to_25110")
        var firstPart: SourceBatch?
        while firstPart == nil {
            guard let batch = try await reader.next() else { break }
            if batch.records.count > 0 { firstPart = batch }
        }
        await reader.close()
        let checkpoint = try #require(firstPart.flatMap { MySQLCDCPosition.parse($0.position.value) })
        let delivered = try #require(checkpoint.delivered)
        #expect(delivered >= 10_000 && delivered < 25_000)
        #expect(checkpoint.part != nil)
        try await p.execute("UPDATE sluice_test.t SET v = 'u' WHERE id <= 50", "DELETE FROM sluice_test.t WHERE id = 60")
        let last = try #require(try await p.query("SELECT @@gtid_binlog_pos").string(0, 0))
        #expect(try await r.query("SELECT MASTER_GTID_WAIT('\(last)', 120)").string(0, 0) == "0")
        await p.close()
        // The failover: the primary is gone, the replica takes writes.
        await primary.stop()
        try await r.execute("STOP SLAVE", "RESET SLAVE ALL", "INSERT INTO sluice_test.t VALUES (30000, 'after')")
        await r.close()
        let expected = Array((111 + delivered)...25_110) + Array(1...50) + [60, 30_000]
        let moved = try source(replica.url, ["sluice_test.t"], snapshot: .initial)
        let resumed = try await moved.makeReader(resumingFrom: Checkpoint([moved.partition: checkpoint.text]), context: context())
        let rest = try await read(resumed, count: expected.count, seconds: 120)
        await resumed.close()
        #expect(rest.ids == expected)
        #expect(rest.ops == Array(repeating: "c", count: 25_000 - delivered) + Array(repeating: "u", count: 50) + ["d", "c"])
        #expect(rest.seqs.prefix(3) == [delivered, delivered + 1, delivered + 2])
        // The control: by file and position, the primary's place means nothing on the replica.
        var byPosition = try MySQLCDCOptions(url: replica.url, tables: ["sluice_test.t"])
        byPosition.resume = .position
        let stale = MySQLCDCSource(options: byPosition, pipeline: "reader-control")
        var controlIDs: [Int]?
        do {
            let controlReader = try await stale.makeReader(resumingFrom: Checkpoint([stale.partition: checkpoint.text]), context: context())
            controlIDs = try? await read(controlReader, count: expected.count, seconds: 10).ids
            await controlReader.close()
        } catch {
            controlIDs = nil
        }
        #expect(controlIDs != expected)
    }
}
