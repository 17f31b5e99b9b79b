import Foundation
import SluiceMySQLProtocol
import Testing

@testable import SluiceMySQL

/// MySQL GTID sets: the text form servers print, the binary form of `COM_BINLOG_DUMP_GTID` and
/// `PREVIOUS_GTIDS` events (bytes written out from the format's description), and the set the
/// stream keeps for its checkpoint. No MySQL server could be installed here, so these are the
/// tests of MySQL's resume by GTID set.
@Suite struct MySQLGTIDSetTests {
    static let a = "3e11fa47-71ca-11e1-9e33-c80aa9429562"
    static let b = "00000000-0000-0000-0000-000000000001"
    static let aBytes: [UInt8] = [0x3e, 0x11, 0xfa, 0x47, 0x71, 0xca, 0x11, 0xe1, 0x9e, 0x33, 0xc8, 0x0a, 0xa9, 0x42, 0x95, 0x62]

    static func le(_ v: UInt64, _ width: Int) -> [UInt8] { (0..<width).map { UInt8((v >> (8 * UInt64($0))) & 0xFF) } }

    @Test func theTextFormIsReadAsServersPrintItAndWrittenCanonically() throws {
        // Upper case, a newline after the comma (as gtid_executed prints), intervals out of
        // order, adjacent and overlapping.
        let set = try MySQLGTIDSet(parsing: "\(Self.a.uppercased()):7:1-5:6:3-4,\n\(Self.b):3:10-12")
        #expect(set.description == "\(Self.b):3:10-12,\(Self.a):1-7")
        #expect(set.intervals[Self.aBytes] == [1..<8])
        #expect(set.contains(Self.aBytes, 7) && !set.contains(Self.aBytes, 8))
        #expect(try MySQLGTIDSet(parsing: set.description) == set)
        #expect(try MySQLGTIDSet(parsing: " ").isEmpty)
    }

    @Test func insertingMergesIntervals() throws {
        var set = try MySQLGTIDSet(parsing: "\(Self.a):1-3:7-9")
        set.insert(Self.aBytes, 4)  // extends the first interval
        #expect(set.description == "\(Self.a):1-4:7-9")
        set.insert(Self.aBytes, 6)  // joins the second
        #expect(set.description == "\(Self.a):1-4:6-9")
        set.insert(Self.aBytes, 5)  // fills the gap
        #expect(set.description == "\(Self.a):1-9")
        set.insert(Self.aBytes, 3)  // already held
        set.insert(Self.aBytes, 12)
        #expect(set.description == "\(Self.a):1-9:12")
        var other = try MySQLGTIDSet(parsing: "\(Self.b):1-2,\(Self.a):10-11")
        other.formUnion(set)
        #expect(other.description == "\(Self.b):1-2,\(Self.a):1-12")
    }

    @Test func badAndTaggedSetsAreRefusedWithTheReason() {
        for (text, reason) in [
            ("\(Self.a):mytag:1-5", "tagged GTIDs"), ("\(Self.a):5-3", "not a transaction number"), ("\(Self.a):0", "not a transaction number"),
            ("\(Self.a)", "not uuid:interval"), ("3e11fa47:1-5", "not uuid:interval"), ("\(Self.a):1-", "not a transaction number"),
        ] {
            #expect {
                _ = try MySQLGTIDSet(parsing: text)
            } throws: { error in
                (error as? MySQLProtocolError)?.message.contains(reason) == true
            }
        }
    }

    @Test func theBinaryFormIsMySQLs() throws {
        let set = try MySQLGTIDSet(parsing: "\(Self.a):1-5:7")
        // One source, its 16 bytes, two intervals: [1, 6) and [7, 8).
        let expected = Self.le(1, 8) + Self.aBytes + Self.le(2, 8) + Self.le(1, 8) + Self.le(6, 8) + Self.le(7, 8) + Self.le(8, 8)
        #expect(set.encoded == expected)
        #expect(try MySQLGTIDSet(decoding: expected) == set)
        #expect(MySQLGTIDSet().encoded == Self.le(0, 8))
        // Trailing bytes, an empty interval, a count beyond the bytes, the tagged format: refused.
        for bad in [
            expected + [0], Self.le(1, 8) + Self.aBytes + Self.le(1, 8) + Self.le(5, 8) + Self.le(5, 8),
            Self.le(2, 8) + Self.aBytes + Self.le(0, 8), Self.le(1 << 56 | 1 << 8 | 1, 8) + Self.aBytes + [0] + Self.le(0, 8),
        ] {
            #expect(throws: MySQLProtocolError.self) { try MySQLGTIDSet(decoding: bad) }
        }
    }

    @Test func theDumpCommandCarriesTheSet() throws {
        let set = try MySQLGTIDSet(parsing: "\(Self.a):1-5")
        let packet = MySQLCommand.binlogDumpGTID(gtids: set, serverID: 4242)
        // COM_BINLOG_DUMP_GTID, no flags, server id, no file name, position 4, the set's length
        // and bytes.
        #expect(packet == [0x1E, 0x00, 0x00] + Self.le(4242, 4) + Self.le(0, 4) + Self.le(4, 8) + Self.le(UInt64(set.encoded.count), 4) + set.encoded)
    }

    /// An event without checksum: header (timestamp, type, server id, size, next position,
    /// flags) and body.
    static func event(_ type: UInt8, _ body: [UInt8], at next: UInt32, flags: UInt16 = 0) -> [UInt8] {
        le(1_700_000_000, 4) + [type] + le(1, 4) + le(UInt64(19 + body.count), 4) + le(UInt64(next), 4) + le(UInt64(flags), 2) + body
    }

    @Test func previousGTIDsEventsAreDecodedAndTheTaggedFormLeftAlone() throws {
        let set = try MySQLGTIDSet(parsing: "\(Self.a):1-100")
        var decoder = MySQLBinlogDecoder()
        #expect(try decoder.decode(Self.event(35, set.encoded, at: 200)).event == .mysqlPreviousGTIDs(set))
        let tagged = Self.le(1 << 56 | 1 << 8 | 1, 8) + Self.aBytes + [0] + Self.le(0, 8)
        #expect(try decoder.decode(Self.event(35, tagged, at: 200)).event == .other(type: 35))
    }

    /// Feeds the stream a MySQL transaction: GTID, BEGIN, XID.
    static func transaction(_ stream: inout MySQLBinlogStream, _ number: UInt64, at: UInt32) throws {
        var decoder = MySQLBinlogDecoder()
        let gtid = [0x01] + aBytes + le(number, 8) + [UInt8](repeating: 0, count: 25)
        let (gtidHeader, gtidEvent) = try decoder.decode(event(33, gtid, at: at))
        _ = try stream.receive(gtidHeader, gtidEvent)
        // A query event's layout depends on the format description: given decoded.
        _ = try stream.receive(try MySQLBinlogEventHeader(parsing: event(2, [], at: at + 100)), .query(database: "", sql: "BEGIN", errorCode: 0))
        let (xidHeader, xid) = try decoder.decode(event(16, le(number, 8), at: at + 200))
        _ = try stream.receive(xidHeader, xid)
    }

    @Test func theStreamAddsEachCommittedTransactionToTheCheckpointsSet() throws {
        var start = MySQLCDCPosition(at: BinlogCoordinates(file: "binlog.000003", position: 1000))
        start.executed = "\(Self.a):1-10"
        var stream = MySQLBinlogStream(position: start, captured: [], collations: [:], mariaDB: false)
        try Self.transaction(&stream, 11, at: 1300)
        try Self.transaction(&stream, 13, at: 1600)
        #expect(stream.position.executed == "\(Self.a):1-11:13")
        #expect(stream.position.gtid == "\(Self.a):13")
        // A new file's PREVIOUS_GTIDS adds what it holds, and takes nothing away.
        var decoder = MySQLBinlogDecoder()
        let previous = try MySQLGTIDSet(parsing: "\(Self.b):1-4,\(Self.a):1-9")
        let (header, decoded) = try decoder.decode(Self.event(35, previous.encoded, at: 300))
        _ = try stream.receive(header, decoded)
        #expect(stream.position.executed == "\(Self.b):1-4,\(Self.a):1-11:13")
        // The checkpoint keeps it under its own key.
        let saved = try #require(MySQLCDCPosition.parse(stream.position.text))
        #expect(saved.executed == stream.position.executed && stream.position.text.contains("\"gtid_set\""))
    }

    @Test func aCheckpointWithoutASetLearnsItFromTheNextFile() throws {
        var stream = MySQLBinlogStream(
            position: MySQLCDCPosition(at: BinlogCoordinates(file: "binlog.000003", position: 1000)), captured: [], collations: [:], mariaDB: false)
        try Self.transaction(&stream, 11, at: 1300)
        // Not known: one transaction's GTID is not the set of everything before it.
        #expect(stream.position.executed == nil)
        var decoder = MySQLBinlogDecoder()
        let (header, decoded) = try decoder.decode(Self.event(35, try MySQLGTIDSet(parsing: "\(Self.a):1-11").encoded, at: 300))
        _ = try stream.receive(header, decoded)
        try Self.transaction(&stream, 12, at: 400)
        #expect(stream.position.executed == "\(Self.a):1-12")
        // A server that has run no GTID transaction yet: an empty set is known, and grows.
        var fresh = MySQLCDCPosition(at: BinlogCoordinates(file: "binlog.000001", position: 4))
        fresh.executed = ""
        var first = MySQLBinlogStream(position: fresh, captured: [], collations: [:], mariaDB: false)
        try Self.transaction(&first, 1, at: 100)
        #expect(first.position.executed == "\(Self.a):1")
    }

    @Test func mySQL82AndLaterAreAskedForTheirBinaryLogStatus() {
        for (version, statement) in [
            ("8.0.36", "SHOW MASTER STATUS"), ("5.7.44-log", "SHOW MASTER STATUS"), ("8.2.0", "SHOW BINARY LOG STATUS"),
            ("8.4.3", "SHOW BINARY LOG STATUS"), ("9.1.0-commercial", "SHOW BINARY LOG STATUS"), ("10.11.6-MariaDB-0+deb12u1-log", "SHOW MASTER STATUS"),
            ("11.4.2-MariaDB", "SHOW MASTER STATUS"),
        ] {
            #expect(MySQLSnapshot.binlogStatusStatement(version) == statement, "\(version)")
        }
    }
}
