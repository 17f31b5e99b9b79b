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
        // On the primary, the checkpoint's position is the start of the transaction it is inside.
        let here = try await p.query("SHOW BINLOG EVENTS IN '\(checkpoint.at.file)' FROM \(checkpoint.at.position) LIMIT 1").string(0, 5)
        #expect(here?.contains("GTID \(try #require(checkpoint.part))") == true, "\(here ?? "nothing")")
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
        // The control: by file and position, the primary's place means nothing on the replica:
        // it is no event there, or not the start of the transaction the checkpoint is inside.
        let check = try await MySQLConnection.connect(try MySQLURL(replica.url))
        let there: String?
        do {
            let events = try await check.query("SHOW BINLOG EVENTS IN '\(checkpoint.at.file)' FROM \(checkpoint.at.position) LIMIT 1")
            there = events.rows.isEmpty ? nil : (events.string(0, 5) ?? "")
        } catch {
            there = nil
        }
        await check.close()
        let part = try #require(checkpoint.part)
        #expect(there?.contains("GTID \(part)") != true, "the primary's position \(checkpoint.at) names \(there ?? "nothing") on the replica")
    }
}

extension MySQLCDCReaderTests {
    /// Resumed by GTID inside a transaction delivered in part, a transaction of another domain
    /// may come first (on a new primary, domains need not keep their old order). Its checkpoint
    /// goes on holding the changes to skip, so a crash right after it does not deliver them twice.
    @Test func aPendingSkipSurvivesAnotherDomainsTransactionFirst() async throws {
        try await TestMySQLDatabase.with("domains") { db in
            try await db.execute("CREATE TABLE t (id INT PRIMARY KEY, v VARCHAR(20))", "CREATE TABLE u (id INT PRIMARY KEY)")
            let s = try source(try testMySQLURLText(), ["\(db.name).t", "\(db.name).u"])
            let reader = try await s.makeReader(resumingFrom: .empty, context: context())
            // A transaction in a domain of its own (its first), then a large one in domain 0.
            let domain = Int.random(in: 1_000...60_000)
            try await withTestMySQL { c in
                try await c.execute("SET SESSION gtid_domain_id = \(domain)", "INSERT INTO \(db.name).u VALUES (1)")
            }
            try await db.execute("INSERT INTO t SELECT seq, 'big' FROM seq_1_to_25000")
            var firstPart: SourceBatch?
            var seen = 0
            while firstPart == nil {
                guard let batch = try await reader.next() else { break }
                seen += batch.records.count
                if let p = MySQLCDCPosition.parse(batch.position.value), p.delivered != nil { firstPart = batch }
            }
            await reader.close()
            var checkpoint = try #require(firstPart.flatMap { MySQLCDCPosition.parse($0.position.value) })
            let delivered = try #require(checkpoint.delivered)
            #expect(seen == 1 + delivered)
            // As a new primary might hold it: the other domain's transaction not yet in the state.
            let state = try #require(checkpoint.gtid)
            checkpoint.gtid = state.split(separator: ",").filter { !$0.hasPrefix("\(domain)-") }.joined(separator: ",")
            #expect(checkpoint.gtid != state)
            let resumed = try await s.makeReader(resumingFrom: Checkpoint([s.partition: checkpoint.text]), context: context())
            let other = try await read(resumed, count: 1)
            await resumed.close()
            #expect(other.ids == [1])
            // A crash right after it: the checkpoint still skips the delivered part.
            let lastPosition = try #require(other.positions.last)
            let after = try #require(MySQLCDCPosition.parse(lastPosition))
            #expect(after.delivered == delivered)
            #expect(after.part == checkpoint.part)
            let again = try await s.makeReader(resumingFrom: Checkpoint([s.partition: after.text]), context: context())
            let rest = try await read(again, count: 25_000 - delivered)
            await again.close()
            #expect(rest.ids == Array((delivered + 1)...25_000))
        }
    }
}
