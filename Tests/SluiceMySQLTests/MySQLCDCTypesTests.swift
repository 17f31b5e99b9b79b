import Foundation
import Logging
import SluiceCore
import SluiceTesting
import Testing

@testable import SluiceMySQL

/// Every common column type, captured from a real MariaDB: the same rows read by the snapshot
/// (the server's own text rendering) and decoded from the binlog render the same JSON, and the
/// tricky values render as expected.
@Suite(.serialized) struct MySQLCDCTypesTests {
    static let columns = """
        id INT PRIMARY KEY, ti TINYINT, tu TINYINT UNSIGNED, si SMALLINT, su SMALLINT UNSIGNED, mi MEDIUMINT, mu MEDIUMINT UNSIGNED,
        i INT, iu INT UNSIGNED, bi BIGINT, bu BIGINT UNSIGNED, d DECIMAL(20,6), d0 DECIMAL(5,0), f FLOAT, fu FLOAT UNSIGNED, db DOUBLE,
        dt DATE, tm TIME(3), tm0 TIME, dtm DATETIME(6), dtm0 DATETIME, ts TIMESTAMP(2) NULL, yr YEAR,
        c CHAR(5), vc VARCHAR(40), l1 VARCHAR(20) CHARACTER SET latin1, tx TEXT, bn BINARY(4), vb VARBINARY(8), bl BLOB,
        e ENUM('small','medium','large'), st SET('a','b','c','d'), bt BIT(12), b64 BIT(64), js JSON, g GEOMETRY
        """

    /// Rows with the edges of each type.
    static let rows = [
        """
        (1, -128, 255, -32768, 65535, -8388608, 16777215, -2147483648, 4294967295, -9223372036854775808, 18446744073709551615,
         -12345678901234.567891, 99999, 1.2345678, 3.5, 2.718281828459045, '1000-01-01', '-838:59:58.999', '838:59:59',
         '9999-12-31 23:59:59.999999', '2024-02-29 12:00:00', '2038-01-19 03:14:07.99', 2155,
         'abc', 'emoji 😀 and "quotes" \\\\ back', 'café €', 'line\\nbreak\\ttab', x'0102', x'00ff00', x'deadbeef',
         'large', 'a,d', b'101010101010', b'1111111111111111111111111111111111111111111111111111111111111111', '{"k": [1, 2.5, "x"]}',
         ST_GeomFromText('POINT(1.5 -2)', 4326))
        """,
        """
        (2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, '2024-01-02', '00:00:00', '-00:00:01', '1970-01-01 00:00:01.000001',
         '2000-01-01 00:00:00', '1970-01-01 00:00:01.01', 1901, '', '', '', '', x'', x'', x'', 'small', '', b'0', b'0', '[]',
         ST_GeomFromText('LINESTRING(0 0, 1 1)'))
        """,
        "(3, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL)",
    ]

    func context() -> SourceContext {
        SourceContext(pipeline: "types", state: MemoryStateStore(), logger: Logger(label: "types"))
    }

    /// Reads batches until `count` changes have come (at most 30 s).
    func changes(_ reader: any SourceReader, count: Int) async throws -> [(op: String, key: String, after: String?, before: String?)] {
        var out: [(String, String, String?, String?)] = []
        let deadline = ContinuousClock.now + .seconds(30)
        while out.count < count, ContinuousClock.now < deadline {
            guard let batch = try await reader.next() else { break }
            let r = batch.records
            for row in 0..<r.count {
                func text(_ name: String) -> String? {
                    let c = r.column(named: name)!
                    return c.isNull(row) ? nil : c.withBytes(at: row) { String(decoding: $0, as: UTF8.self) }
                }
                out.append((text("op")!, text("key") ?? "", text("after"), text("before")))
            }
        }
        return out
    }

    @Test func snapshotAndBinlogRenderEveryTypeTheSame() async throws {
        try await TestMySQLDatabase.with("types") { db in
            try await roundTrip(url: try testMySQLURLText(), database: db.name) { try await db.execute($0) }
        }
    }

    /// MariaDB's compressed binlog (`log_bin_compress`): the same values from compressed row
    /// and query events.
    @Test func aCompressedBinlogRendersEveryTypeTheSame() async throws {
        let server = try await PrivateMariaDB.start()
        do {
            try await compressed(server)
            await server.stop()
        } catch {
            await server.stop()
            throw error
        }
    }

    func compressed(_ server: PrivateMariaDB) async throws {
        let c = try await MySQLConnection.connect(try MySQLURL(server.url))
        try await c.execute("SET GLOBAL log_bin_compress = ON", "SET GLOBAL log_bin_compress_min_len = 10", "FLUSH BINARY LOGS")
        await c.close()
        func execute(_ sql: String) async throws {
            let c = try await MySQLConnection.connect(try MySQLURL(server.url))
            try await c.execute("USE sluice_test", sql)
            await c.close()
        }
        try await roundTrip(url: server.url, database: "sluice_test", execute: execute)
        // Updates (two compressed images a row), a delete and a TRUNCATE (a compressed statement).
        var options = try MySQLCDCOptions(url: server.url, tables: ["sluice_test.live"])
        options.snapshot = .never
        let source = MySQLCDCSource(options: options, pipeline: "compressed")
        let reader = try await source.makeReader(resumingFrom: .empty, context: context())
        try await execute("UPDATE live SET tx = CONCAT(IFNULL(tx, ''), ' updated and long enough to compress')")
        try await execute("DELETE FROM live WHERE id = 2")
        try await execute("TRUNCATE TABLE live")
        let later = try await changes(reader, count: 5)
        await reader.close()
        #expect(later.map(\.op) == ["u", "u", "u", "d", "t"])
        #expect(later.first?.after?.contains(#""tx":"line\nbreak\ttab updated and long enough to compress""#) == true)
        #expect(later.first?.before?.contains(#""bu":18446744073709551615"#) == true)
        // The binlog held compressed events: the test read what it means to.
        let check = try await MySQLConnection.connect(try MySQLURL(server.url))
        let logs = try await check.query("SHOW BINARY LOGS")
        var types = Set<String>()
        for f in 0..<logs.rows.count {
            let events = try await check.query("SHOW BINLOG EVENTS IN '\(logs.string(f, 0)!)'")
            for e in 0..<events.rows.count { types.insert(events.string(e, 2) ?? "") }
        }
        await check.close()
        #expect(
            types.isSuperset(of: ["Write_rows_compressed_v1", "Update_rows_compressed_v1", "Delete_rows_compressed_v1", "Query_compressed"]),
            "\(types.sorted())")
    }

    func roundTrip(url: String, database: String, execute: (String) async throws -> Void) async throws {
        try await execute("CREATE TABLE snap (\(Self.columns))")
        try await execute("CREATE TABLE live (\(Self.columns))")
        try await execute("INSERT INTO snap VALUES " + Self.rows.joined(separator: ", "))
        let source = MySQLCDCSource(
            options: try MySQLCDCOptions(url: url, tables: ["\(database).snap", "\(database).live"]), pipeline: "types")
        let reader = try await source.makeReader(resumingFrom: .empty, context: context())
        let snapshot = try await changes(reader, count: 3)
        #expect(snapshot.map(\.op) == ["r", "r", "r"])
        try await execute("INSERT INTO live VALUES " + Self.rows.joined(separator: ", "))
        // The inserts, and (the table's snapshot being read after them) its rows as snapshot reads.
        let all = try await changes(reader, count: 6)
        await reader.close()
        let streamed = all.filter { $0.op == "c" }
        #expect(all.map(\.op) == ["c", "c", "c", "r", "r", "r"])
        for (s, b) in zip(snapshot, streamed) {
            let sj = try JSONSerialization.jsonObject(with: Data(s.after!.utf8)) as! [String: Any]
            let bj = try JSONSerialization.jsonObject(with: Data(b.after!.utf8)) as! [String: Any]
            // Each value as canonical JSON (an object's keys sorted: a dictionary's description
            // follows its hash order, which differs between two equal dictionaries).
            func canonical(_ value: Any?) -> String {
                guard let value else { return "absent" }
                let data = try? JSONSerialization.data(withJSONObject: [value], options: [.sortedKeys, .fragmentsAllowed])
                return data.map { String(decoding: $0, as: UTF8.self) } ?? "\(value)"
            }
            for name in sj.keys.sorted() {
                #expect(canonical(sj[name]) == canonical(bj[name]), "\(name): snapshot \(sj[name]!), binlog \(bj[name] ?? "absent")")
            }
            // Byte for byte, too (numbers keep their digits).
            #expect(s.after == b.after)
            #expect(s.key == b.key)
        }
        let first = streamed[0].after!
        for expected in [
            #""bu":18446744073709551615"#, #""bi":-9223372036854775808"#, #""d":-12345678901234.567891"#, #""f":1.2345678"#,
            #""tm":"-838:59:58.999""#, #""dtm":"9999-12-31 23:59:59.999999""#, #""ts":"2038-01-19T03:14:07.99Z""#, #""yr":2155"#,
            #""vc":"emoji 😀 and \"quotes\" \\ back""#, #""l1":"café €""#, #""tx":"line\nbreak\ttab""#, #""bn":"AQIAAA==""#,
            #""e":"large""#, #""st":"a,d""#, #""bt":2730"#, #""b64":18446744073709551615"#, #""js":"{\"k\": [1, 2.5, \"x\"]}""#,
            #""g":{"srid":4326,"wkb":"0101000000000000000000f83f00000000000000c0"}"#,
        ] {
            #expect(first.contains(expected), "\(expected) not in \(first)")
        }
        #expect(streamed[1].after!.contains(#""tm0":"-00:00:01""#))
        #expect(streamed[2].after!.contains(#""ti":null"#))
    }
}
