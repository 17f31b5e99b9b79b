import Foundation
import Logging
import SluiceCore
import SluiceTesting
import Testing

@testable import SluiceMySQL

/// `binlog_row_image` MINIMAL and NOBLOB, set by the writing sessions of a real MariaDB: the
/// columns the server logged arrive exactly and the others are left out (never null), every
/// change names its key, and what the binlog does not carry stops the reader with the fix.
@Suite(.serialized) struct MySQLCDCRowImageTests {
    func context() -> SourceContext {
        SourceContext(pipeline: "images", state: MemoryStateStore(), logger: Logger(label: "images"))
    }

    func reader(_ db: TestMySQLDatabase, _ table: String) async throws -> any SourceReader {
        var options = try MySQLCDCOptions(url: try testMySQLURLText(), tables: ["\(db.name).\(table)"])
        options.snapshot = .never
        let source = MySQLCDCSource(options: options, pipeline: "images-\(UUID().uuidString)")
        return try await source.makeReader(resumingFrom: .empty, context: context())
    }

    /// `op key before after` of each change (and `partial` when `source` says so), until `count` have come (at most 30 s).
    func changes(_ reader: any SourceReader, count: Int) async throws -> [String] {
        var out: [String] = []
        let deadline = ContinuousClock.now + .seconds(30)
        while out.count < count, ContinuousClock.now < deadline {
            guard let batch = try await reader.next() else { break }
            let r = batch.records
            for row in 0..<r.count {
                func text(_ name: String) -> String {
                    let c = r.column(named: name)!
                    return c.isNull(row) ? "-" : c.withBytes(at: row) { String(decoding: $0, as: UTF8.self) }
                }
                let partial = text("source").contains(ChangeEnvelope.partialMarker) ? " partial" : ""
                out.append(["op", "key", "before", "after"].map(text).joined(separator: " ") + partial)
            }
        }
        return out
    }

    @Test func partialImagesCarryWhatTheServerLoggedAndEveryChangeItsKey() async throws {
        try await TestMySQLDatabase.with("images") { db in
            try await db.execute("CREATE TABLE t (id INT PRIMARY KEY, n INT, note VARCHAR(20) DEFAULT 'd', big TEXT)")
            let reader = try await reader(db, "t")
            try await db.execute(
                "INSERT INTO t VALUES (1, 1, 'one', 'text')",
                "SET SESSION binlog_row_image = 'MINIMAL'",
                // Every column named: the insert is whole.
                "INSERT INTO t (id, n, note, big) VALUES (2, 2, 'two', NULL)",
                "UPDATE t SET n = 10 WHERE id = 1",
                "DELETE FROM t WHERE id = 2",
                "SET SESSION binlog_row_image = 'NOBLOB'",
                "UPDATE t SET note = NULL WHERE id = 1")
            let read = try await changes(reader, count: 5)
            await reader.close()
            #expect(
                read == [
                    #"c {"id":1} - {"id":1,"n":1,"note":"one","big":"text"}"#,
                    #"c {"id":2} - {"id":2,"n":2,"note":"two","big":null}"#,
                    // The key, unchanged and not logged in the after image, is carried into it.
                    #"u {"id":1} {"id":1} {"id":1,"n":10} partial"#,
                    #"d {"id":2} {"id":2} -"#,
                    // NOBLOB: the unchanged TEXT column is in neither image (not null).
                    #"u {"id":1} {"id":1,"n":10,"note":"one"} {"id":1,"n":10,"note":null} partial"#,
                ], "\(read)")
        }
    }

    @Test func anInsertLeavingColumnsToTheirDefaultsStopsWithTheFix() async throws {
        try await TestMySQLDatabase.with("images") { db in
            try await db.execute("CREATE TABLE t (id INT PRIMARY KEY, n INT, note VARCHAR(20) DEFAULT 'd')")
            let reader = try await reader(db, "t")
            try await db.execute("SET SESSION binlog_row_image = 'MINIMAL'", "INSERT INTO t (id, n) VALUES (1, 5)")
            await #expect {
                _ = try await self.changes(reader, count: 1)
            } throws: { error in
                let message = (error as? SluiceError)?.message ?? ""
                return message.contains("an insert into \(db.name).t at ") && message.contains("leaves out columns note")
                    && message.contains("binlog_row_image = 'FULL'") && message.contains("sluice cdc resnapshot")
            }
            await reader.close()
        }
    }

    @Test func aKeyChangeWithoutTheWholeRowStopsAndOneWithItPasses() async throws {
        try await TestMySQLDatabase.with("images") { db in
            try await db.execute("CREATE TABLE u (k VARCHAR(10) PRIMARY KEY, v INT, w INT)")
            let reader = try await reader(db, "u")
            try await db.execute(
                "INSERT INTO u VALUES ('a', 1, 1)",
                "SET SESSION binlog_row_image = 'MINIMAL'",
                "UPDATE u SET k = 'b', v = 2, w = 2 WHERE k = 'a'")
            let read = try await changes(reader, count: 2)
            #expect(read.last == #"u {"k":"b"} {"k":"a"} {"k":"b","v":2,"w":2}"#, "\(read)")
            try await db.execute("SET SESSION binlog_row_image = 'MINIMAL'", "UPDATE u SET k = 'c' WHERE k = 'b'")
            await #expect {
                _ = try await self.changes(reader, count: 1)
            } throws: { error in
                let message = (error as? SluiceError)?.message ?? ""
                return message.contains("an update of \(db.name).u at ") && message.contains("changes the key (k)")
                    && message.contains("other columns (v, w)")
            }
            await reader.close()
        }
    }

    /// MariaDB logs a REPLACE that replaces a row, under MINIMAL, as an update of the columns it
    /// names, while the others took their defaults: its SQL (the ANNOTATE_ROWS event) gives it
    /// away, and it is refused. An INSERT … ON DUPLICATE KEY UPDATE keeps the others, and passes.
    @Test func aReplaceLoggedAsAPartialUpdateIsRefused() async throws {
        try await TestMySQLDatabase.with("images") { db in
            try await db.execute("CREATE TABLE r (id INT PRIMARY KEY, n INT, m INT DEFAULT 5)")
            let reader = try await reader(db, "r")
            try await db.execute(
                "INSERT INTO r VALUES (1, 1, 1)", "SET SESSION binlog_row_image = 'MINIMAL'",
                "INSERT INTO r (id, n) VALUES (1, 2) ON DUPLICATE KEY UPDATE n = 3")
            let read = try await changes(reader, count: 2)
            #expect(read.last == #"u {"id":1} {"id":1} {"id":1,"n":3} partial"#, "\(read)")
            try await db.execute("SET SESSION binlog_row_image = 'MINIMAL'", "/* app */ REPLACE INTO r (id, n) VALUES (1, 7)")
            await #expect {
                _ = try await self.changes(reader, count: 1)
            } throws: { error in
                let message = (error as? SluiceError)?.message ?? ""
                return message.contains("a REPLACE into \(db.name).r at ") && message.contains("the others (m) took their defaults")
            }
            await reader.close()
        }
    }

    /// MySQL logs a table without a primary key with its whole before image and, under MINIMAL,
    /// only the set columns after (MariaDB logs both whole): the columns the update did not set
    /// are its old values, so the after image is whole, not partial. With a key, the unchanged
    /// key is carried and the rest stays out.
    @Test func anUpdatesUnsetColumnsAreItsOldValues() throws {
        let int = MySQLTableShape.Column(name: "n", kind: .signed, postgresType: "integer")
        var keyless = MySQLTableShape(database: "d", table: "t", columns: [int, int, int], key: [])
        let start = BinlogCoordinates(file: "binlog.000001", position: 4)
        let before: [MySQLValue?] = [.integer(1, width: 4), .integer(2, width: 4), .integer(3, width: 4)]
        let filled = try MySQLBinlogStream.images(before, [nil, .integer(9, width: 4), nil], .update, keyless, at: start)
        #expect(filled.after == [.integer(1, width: 4), .integer(9, width: 4), .integer(3, width: 4)])
        #expect(!filled.partial)
        keyless.key = [0]
        let keyed = try MySQLBinlogStream.images([.integer(1, width: 4), nil, nil], [nil, .integer(9, width: 4), nil], .update, keyless, at: start)
        #expect(keyed.after == [.integer(1, width: 4), .integer(9, width: 4), nil])
        #expect(keyed.partial)
    }
}
