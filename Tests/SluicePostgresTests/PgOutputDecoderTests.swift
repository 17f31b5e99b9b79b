import Foundation
@testable import SluicePostgres
import Testing

/// The pgoutput decoder, byte for byte and against the real server's output.
@Suite struct PgOutputDecoderTests {
    /// Big-endian helpers to write messages by hand.
    func be<T: FixedWidthInteger>(_ v: T) -> [UInt8] { withUnsafeBytes(of: v.bigEndian) { Array($0) } }
    func str(_ s: String) -> [UInt8] { Array(s.utf8) + [0] }

    @Test func decodesEveryMessageTypeByteForByte() throws {
        // The Begin bytes from the notes: 42 00000000015172d0 0003041e51bd3135 000002d8
        let begin: [UInt8] = [0x42, 0, 0, 0, 0, 0x01, 0x51, 0x72, 0xD0, 0x00, 0x03, 0x04, 0x1E, 0x51, 0xBD, 0x31, 0x35, 0, 0, 0x02, 0xD8]
        #expect(try PgOutputDecoder.decode(begin) == .begin(finalLSN: 0x15172D0, commitTime: 0x0003_041E_51BD_3135, xid: 728))
        let commit = [UInt8(ascii: "C"), 0] + be(UInt64(10)) + be(UInt64(20)) + be(Int64(30))
        #expect(try PgOutputDecoder.decode(commit) == .commit(flags: 0, commitLSN: 10, endLSN: 20, commitTime: 30))
        let relation =
            [UInt8(ascii: "R")] + be(UInt32(16384)) + str("public") + str("orders") + [UInt8(ascii: "d")] + be(Int16(2))
            + [1] + str("id") + be(UInt32(20)) + be(Int32(-1)) + [0] + str("total") + be(UInt32(1700)) + be(Int32(786_438))
        #expect(
            try PgOutputDecoder.decode(relation)
                == .relation(
                    PgRelation(
                        oid: 16384, namespace: "public", name: "orders", replicaIdentity: UInt8(ascii: "d"),
                        columns: [
                            PgColumn(isKey: true, name: "id", typeOID: 20, typeModifier: -1),
                            PgColumn(isKey: false, name: "total", typeOID: 1700, typeModifier: 786_438),
                        ])))
        let tuple = be(Int16(3)) + [UInt8(ascii: "t")] + be(UInt32(2)) + Array("42".utf8) + [UInt8(ascii: "n"), UInt8(ascii: "u")]
        #expect(
            try PgOutputDecoder.decode([UInt8(ascii: "I")] + be(UInt32(16384)) + [UInt8(ascii: "N")] + tuple)
                == .insert(relation: 16384, new: [.text(Array("42".utf8)), .null, .unchangedToast]))
        #expect(
            try PgOutputDecoder.decode([UInt8(ascii: "U")] + be(UInt32(7)) + [UInt8(ascii: "O")] + tuple + [UInt8(ascii: "N")] + tuple)
                == .update(
                    relation: 7, old: [.text(Array("42".utf8)), .null, .unchangedToast], oldIsKeyOnly: false,
                    new: [.text(Array("42".utf8)), .null, .unchangedToast]))
        #expect(
            try PgOutputDecoder.decode([UInt8(ascii: "U")] + be(UInt32(7)) + [UInt8(ascii: "N")] + tuple)
                == .update(relation: 7, old: nil, oldIsKeyOnly: false, new: [.text(Array("42".utf8)), .null, .unchangedToast]))
        #expect(
            try PgOutputDecoder.decode([UInt8(ascii: "D")] + be(UInt32(7)) + [UInt8(ascii: "K")] + tuple)
                == .delete(relation: 7, old: [.text(Array("42".utf8)), .null, .unchangedToast], oldIsKeyOnly: true))
        #expect(
            try PgOutputDecoder.decode([UInt8(ascii: "T")] + be(UInt32(2)) + [3] + be(UInt32(5)) + be(UInt32(6)))
                == .truncate(relations: [5, 6], options: 3))
        #expect(
            try PgOutputDecoder.decode([UInt8(ascii: "Y")] + be(UInt32(16390)) + str("public") + str("mood"))
                == .type(oid: 16390, namespace: "public", name: "mood"))
        #expect(try PgOutputDecoder.decode([UInt8(ascii: "O")] + be(UInt64(99)) + str("node-a")) == .origin(commitLSN: 99, name: "node-a"))
        #expect(
            try PgOutputDecoder.decode([UInt8(ascii: "M"), 1] + be(UInt64(5)) + str("sluice") + be(UInt32(2)) + [0xFF, 0x00])
                == .message(transactional: true, lsn: 5, prefix: "sluice", content: [0xFF, 0x00]))
        #expect(
            try PgOutputDecoder.decode([UInt8(ascii: "I")] + be(UInt32(1)) + [UInt8(ascii: "N")] + be(Int16(1)) + [UInt8(ascii: "b")] + be(UInt32(1)) + [9])
                == .insert(relation: 1, new: [.binary([9])]))
    }

    @Test func everyTruncationAndCorruptionIsAnErrorNeverACrash() throws {
        let tuple = be(Int16(2)) + [UInt8(ascii: "t")] + be(UInt32(3)) + Array("abc".utf8) + [UInt8(ascii: "n")]
        let valid = [UInt8(ascii: "U")] + be(UInt32(7)) + [UInt8(ascii: "K")] + tuple + [UInt8(ascii: "N")] + tuple
        _ = try PgOutputDecoder.decode(valid)
        for n in 0..<valid.count {
            #expect(throws: PgOutputError.self) { _ = try PgOutputDecoder.decode(Array(valid.prefix(n))) }
        }
        #expect(throws: PgOutputError.self) { _ = try PgOutputDecoder.decode(valid + [0]) }
        #expect(throws: PgOutputError.self) { _ = try PgOutputDecoder.decode([UInt8(ascii: "Z")]) }
        // A length that points past the end.
        #expect(throws: PgOutputError.self) {
            _ = try PgOutputDecoder.decode([UInt8(ascii: "I")] + be(UInt32(1)) + [UInt8(ascii: "N")] + be(Int16(1)) + [UInt8(ascii: "t")] + be(UInt32.max))
        }
        #expect(throws: PgOutputError.self) { _ = try PgOutputDecoder.decode([UInt8(ascii: "T")] + be(UInt32.max) + [0]) }
    }

    /// Real pgoutput bytes from the test server (SQL interface), decoded in commit order.
    @Test func decodesTheServersOwnOutput() async throws {
        let db = try await TestDatabase.make("pgoutput")
        defer { Task { await db.drop() } }
        let slot = "s_\(db.schema)"
        defer { Task { _ = try? await db.rows("SELECT pg_drop_replication_slot('\(slot)')") } }
        try await db.execute(
            """
            CREATE TABLE t (id int PRIMARY KEY, note text, amount numeric(10,2));
            CREATE PUBLICATION p_\(db.schema) FOR TABLE t;
            """)
        _ = try await db.rows("SELECT pg_create_logical_replication_slot('\(slot)', 'pgoutput')")
        try await db.execute(
            """
            INSERT INTO t VALUES (1, 'a', 1.50), (2, NULL, 2);
            UPDATE t SET note = 'b' WHERE id = 1;
            DELETE FROM t WHERE id = 2;
            """)
        let rows = try await db.connection.run { session in
            let r = try session.query(
                "SELECT data FROM pg_logical_slot_peek_binary_changes($1, NULL, NULL, 'proto_version', '1', 'publication_names', $2)",
                [slot, "p_\(db.schema)"], binary: true)
            return (0..<r.rows).map { Array(r.bytes($0, 0)) }
        }
        let decoded = try rows.map(PgOutputDecoder.decode)
        // pgoutput sends a Relation message again whenever the relation's cache entry is
        // invalidated (a publication created or dropped by a concurrent test does that): the
        // protocol allows it at any time, so repeats after the first are set aside.
        var described = false
        let messages = decoded.filter { m in
            guard case .relation = m else { return true }
            defer { described = true }
            return !described
        }
        let kinds = messages.map { m -> String in
            switch m {
            case .begin: "B"
            case .commit: "C"
            case .relation: "R"
            case .insert: "I"
            case .update: "U"
            case .delete: "D"
            default: "?"
            }
        }
        #expect(kinds == ["B", "R", "I", "I", "U", "D", "C"], "\(kinds)")
        guard case let .relation(rel) = messages[1] else { Issue.record("no relation"); return }
        #expect(rel.name == "t" && rel.namespace == db.schema && rel.columns.map(\.name) == ["id", "note", "amount"])
        #expect(rel.columns.map(\.isKey) == [true, false, false])
        #expect(messages[2].insertValues == [.text(Array("1".utf8)), .text(Array("a".utf8)), .text(Array("1.50".utf8))])
        #expect(messages[3].insertValues == [.text(Array("2".utf8)), .null, .text(Array("2.00".utf8))])
        guard case let .delete(_, old, keyOnly) = messages[5] else { Issue.record("no delete"); return }
        #expect(keyOnly && old == [.text(Array("2".utf8)), .null, .null])
    }
}

extension PgOutputMessage {
    var insertValues: PgTuple? {
        if case let .insert(_, new) = self { return new }
        return nil
    }
}

@Suite struct ReplicationFrameTests {
    func be<T: FixedWidthInteger>(_ v: T) -> [UInt8] { withUnsafeBytes(of: v.bigEndian) { Array($0) } }

    @Test func framesAndStandbyStatusByteForByte() throws {
        let payload: [UInt8] = [UInt8(ascii: "B"), 1, 2]
        #expect(
            try ReplicationFrame.decode([UInt8(ascii: "w")] + be(UInt64(0x16_B374_D848)) + be(UInt64(0x17_0000_0000)) + be(Int64(5)) + payload)
                == .xLogData(walStart: 0x16_B374_D848, walEnd: 0x17_0000_0000, sendTime: 5, payload: payload))
        #expect(
            try ReplicationFrame.decode([UInt8(ascii: "k")] + be(UInt64(42)) + be(Int64(7)) + [1]) == .keepalive(walEnd: 42, sendTime: 7, replyRequested: true))
        #expect(throws: PgOutputError.self) { _ = try ReplicationFrame.decode([UInt8(ascii: "k")] + be(UInt64(42))) }
        #expect(throws: PgOutputError.self) { _ = try ReplicationFrame.decode([UInt8(ascii: "x")]) }
        let status = ReplicationFrame.standbyStatus(written: 1, flushed: 2, applied: 3, clock: 4, replyNow: false)
        #expect(status == [UInt8(ascii: "r")] + be(UInt64(1)) + be(UInt64(2)) + be(UInt64(3)) + be(Int64(4)) + [0])
        #expect(status.count == 34)
    }

    @Test func lsnTextRoundTrips() {
        #expect(LSN.format(0x16_B374_D848) == "16/B374D848")
        #expect(LSN.parse("16/B374D848") == 0x16_B374_D848)
        #expect(LSN.parse("0/0") == 0)
        #expect(LSN.parse("x/1") == nil && LSN.parse("1") == nil)
    }
}
