import Foundation
import Logging
import SluiceCore
@testable import SluicePostgres
import Testing

/// The PostgreSQL source against the real test server.
@Suite struct PostgresSourceTests {
    func options(_ db: TestDatabase, _ extra: [String: Any]) throws -> PostgresSourceOptions {
        var o: [String: Any] = ["url": db.url]
        o.merge(extra) { $1 }
        return try JSONDecoder().decode(PostgresSourceOptions.self, from: try JSONSerialization.data(withJSONObject: o))
    }

    func readAll(_ source: PostgresSource, from checkpoint: Checkpoint = .empty, stopAfter: Int = .max) async throws -> ([[Value]], [DeadLetter], Checkpoint) {
        let state = try temporaryStateStore()
        let reader = try await source.makeReader(resumingFrom: checkpoint, context: SourceContext(pipeline: "p", state: state, logger: Logger(label: "t")))
        var rows: [[Value]] = [], rejects: [DeadLetter] = [], cp = checkpoint
        var batches = 0
        while batches < stopAfter, let b = try await reader.next() {
            batches += 1
            for i in 0..<b.records.count { rows.append(b.records.row(i)) }
            rejects += b.rejects
            cp = Checkpoint(cp.partitions.merging([b.position.partition: b.position.value]) { $1 })
        }
        return (rows, rejects, cp)
    }

    @Test func mapsEveryTypeExactly() async throws {
        let db = try await TestDatabase.make("types")
        defer { Task { await db.drop() } }
        try await db.execute(
            """
            CREATE TYPE mood AS ENUM ('happy', 'sad');
            CREATE TABLE t (id int8 PRIMARY KEY, i2 int2, i4 int4, n numeric(20,4), nu numeric, f4 float4, f8 float8,
                tx text, vc varchar(5), ch char(3), ok bool, d date, ts timestamp, tz timestamptz, u uuid, j json, jb jsonb,
                b bytea, arr int4[], m mood);
            INSERT INTO t VALUES (1, -32768, 2147483647, -1234567890123456.7891, 0.000000000000000001, 1.5, 0.1,
                'héllo', 'abc', 'x', true, '2024-02-29', '1999-12-31 23:59:59.999999', '2024-01-02 03:04:05.123456+02',
                'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '{"a": [1, 2]}', '{"b": null}', '\\x00ff', '{1,NULL,3}', 'sad');
            INSERT INTO t (id) VALUES (2);
            """)
        let (rows, rejects, _) = try await readAll(PostgresSource(options: options(db, ["table": "\(db.schema).t"])))
        #expect(rejects.isEmpty)
        #expect(rows.count == 2)
        let r = rows[0]
        #expect(r[0] == .int64(1) && r[1] == .int64(-32768) && r[2] == .int64(2147483647))
        #expect(r[3] == .decimal(-12345678901234567891, scale: 4))
        #expect(r[4] == .decimal(1, scale: 18))
        #expect(r[5] == .float64(1.5) && r[6] == .float64(0.1))
        #expect(r[7] == .string("héllo") && r[8] == .string("abc") && r[9] == .string("x  "))
        #expect(r[10] == .bool(true))
        #expect(r[11] == .date(19782))  // 2024-02-29
        #expect(r[12] == .timestamp(946_684_799_999_999))
        #expect(r[13] == .timestamp(1_704_157_445_123_456))  // 2024-01-02 01:04:05.123456 UTC
        #expect(r[14] == .string("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"))
        #expect(r[15] == .json("{\"a\": [1, 2]}") && r[16] == .json("{\"b\": null}"))
        #expect(r[17] == .binary([0, 255]))
        #expect(r[18] == .json("[1,null,3]"))
        #expect(r[19] == .string("sad"))
        #expect(rows[1][1...].allSatisfy { $0 == .null })
    }

    @Test func unsupportedTypesNameTheColumnOrReadAsText() async throws {
        let db = try await TestDatabase.make("unsup")
        defer { Task { await db.drop() } }
        try await db.execute("CREATE TABLE t (id int PRIMARY KEY, span interval); INSERT INTO t VALUES (1, '1 day 2 hours')")
        await #expect(throws: SluiceError.self) {
            _ = try await readAll(PostgresSource(options: options(db, ["table": "\(db.schema).t"])))
        }
        do {
            _ = try await readAll(PostgresSource(options: options(db, ["table": "\(db.schema).t"])))
        } catch let e as SluiceError {
            #expect(e.message.contains("'span'") && e.message.contains("interval") && e.message.contains("unsupported_types"))
        }
        let (rows, _, _) = try await readAll(PostgresSource(options: options(db, ["table": "\(db.schema).t", "unsupported_types": "string"])))
        #expect(rows == [[.int64(1), .string("P1DT2H")]])
    }

    @Test func infinityAndOversizedNumbersGoToTheDeadLetterQueueWithTheirKey() async throws {
        let db = try await TestDatabase.make("inf")
        defer { Task { await db.drop() } }
        try await db.execute(
            "CREATE TABLE t (id int PRIMARY KEY, d date, n numeric); INSERT INTO t VALUES (1, 'infinity', 1), (2, '2024-01-01', 'NaN'), (3, '2024-01-01', 2)")
        let (rows, rejects, _) = try await readAll(PostgresSource(options: options(db, ["table": "\(db.schema).t"])))
        #expect(rows.map { $0[0] } == [.int64(3)])
        #expect(rejects.map(\.location) == ["postgres:\(db.schema).t@1", "postgres:\(db.schema).t@2"])
        #expect(rejects[0].message.contains("'d'"))
    }

    @Test func incrementalKeepsExactCursorValuesAndNeverSkipsTies() async throws {
        let db = try await TestDatabase.make("incr")
        defer { Task { await db.drop() } }
        // 50 rows share each microsecond timestamp; pages of 7 cut through them.
        try await db.execute(
            """
            CREATE TABLE t (id int PRIMARY KEY, ts timestamptz NOT NULL, v numeric(30,10));
            INSERT INTO t SELECT i, timestamptz '2026-01-01 00:00:00.000001+00' + (i / 50) * interval '1 microsecond', i / 3.0 FROM generate_series(1, 500) i;
            """)
        let source = PostgresSource(options: try options(db, ["table": "\(db.schema).t", "mode": "incremental", "cursor": ["ts"], "batch_rows": 7]))
        let (first, _, cp) = try await readAll(source, stopAfter: 30)
        let (rest, _, cp2) = try await readAll(source, from: cp)
        let ids = (first + rest).map { $0[0] }
        #expect(ids.count == 500 && Set(ids).count == 500)
        // The checkpoint keeps the microseconds (a float round trip would lose them).
        #expect(cp2.partitions.values.first?.contains("00:00:00.000011") == true)
        try await db.execute("INSERT INTO t VALUES (501, '2026-01-01 00:00:00.00001+00', 1), (502, '2030-01-01', 2), (503, '2020-01-01', 3)")
        let (more, _, _) = try await readAll(source, from: cp2)
        #expect(more.map { $0[0] } == [.int64(502)], "only rows past the cursor; 501 and 503 are older (the lookback test covers late rows)")
    }

    @Test func connectionErrorsAreClassified() async throws {
        let url = try testServerURL()
        let wrong = url.replacingOccurrences(of: "sluice:sluice@", with: "sluice:wrong@")
        do {
            _ = try await PostgresConnection.connect(try PostgresURL(wrong))
            Issue.record("a wrong password connected")
        } catch let e as SluiceError {
            #expect(e.code == .authentication && !e.isRetryable)
            #expect(!e.description.contains("wrong"), "the password must not appear: \(e)")
        }
        do {
            _ = try await PostgresConnection.connect(try PostgresURL("postgres://sluice:secret@127.0.0.1:1/postgres"))
            Issue.record("connected to a closed port")
        } catch let e as SluiceError {
            #expect(e.code == .connection && e.isRetryable)
            #expect(!e.description.contains("secret"))
        }
    }

    @Test func identifiersAreQuotedSoNamesCannotInjectSQL() async throws {
        let db = try await TestDatabase.make("inject")
        defer { Task { await db.drop() } }
        try await db.execute(
            """
            CREATE TABLE "odd; DROP TABLE x; --" ("id; --" int PRIMARY KEY, "we""ird" text);
            INSERT INTO "odd; DROP TABLE x; --" VALUES (1, 'a');
            CREATE TABLE x (id int);
            """)
        let source = PostgresSource(options: try options(db, ["table": "\(db.schema).\"odd; DROP TABLE x; --\""]))
        let (rows, _, _) = try await readAll(source)
        #expect(rows == [[.int64(1), .string("a")]])
        #expect(try await db.rows("SELECT count(*) FROM x") == [["0"]])
    }
}

/// TLS through libpq's `sslmode` (the test server has a self-signed certificate).
@Suite struct PostgresTLSTests {
    @Test func tlsIsUsedWhenAskedAndVerificationFailuresAreNotRetried() async throws {
        let url = try testServerURL()
        guard let ca = ProcessInfo.processInfo.environment["SLUICE_TEST_PG_CA"] else {
            Issue.record("SLUICE_TEST_PG_CA is not set: the test server from scripts/pg-test-server.sh has TLS")
            return
        }
        for tls in ["?sslmode=require", "?sslmode=verify-full&sslrootcert=\(ca)"] {
            let connection = try await PostgresConnection.connect(try PostgresURL(url + tls))
            let ssl = try await connection.run { try $0.query("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()").string(0, 0) }
            #expect(ssl == "t", "\(tls)")
        }
        do {
            _ = try await PostgresConnection.connect(try PostgresURL(url + "?sslmode=verify-full&sslrootcert=/nonexistent/root.crt"))
            Issue.record("connected without the root certificate")
        } catch let e as SluiceError {
            #expect(e.code == .connection && !e.isRetryable && e.message.contains("TLS"), "\(e)")
        }
    }
}

/// Parallel pulls resume slice by slice from one consistent checkpoint.
@Suite struct PostgresParallelPullTests {
    @Test func aCheckpointHoldingOnlySomeSlicesResumesWithTheSameCut() async throws {
        let db = try await TestDatabase.make("parallel")
        defer { Task { await db.drop() } }
        try await db.execute("CREATE TABLE t (id int PRIMARY KEY, v text); INSERT INTO t SELECT i, 'v' || i FROM generate_series(1, 1000) i")
        let options = try JSONDecoder().decode(
            PostgresSourceOptions.self,
            from: JSONSerialization.data(withJSONObject: [
                "url": db.url, "table": "\(db.schema).t", "parallel": 3, "batch_rows": 100,
            ]))
        let source = PostgresSource(options: options)
        let context = SourceContext(pipeline: "p", state: try temporaryStateStore(), logger: Logger(label: "t"))
        // A crash after only the first slice's first page was committed.
        let first = try await source.makeReader(resumingFrom: .empty, context: context)
        let page = try #require(try await first.next())
        #expect(page.position.partition.hasSuffix("#01/3"))
        var ids = (0..<page.records.count).map { page.records.row($0)[0] }
        // Meanwhile the table grows: a new cut would differ from the first one.
        try await db.execute("INSERT INTO t SELECT i, 'w' || i FROM generate_series(1001, 1500) i")
        let resumed = try await source.makeReader(resumingFrom: Checkpoint([page.position.partition: page.position.value]), context: context)
        while let b = try await resumed.next() { ids += (0..<b.records.count).map { b.records.row($0)[0] } }
        #expect(ids.count == 1500 && Set(ids).count == 1500, "\(ids.count) rows, \(Set(ids).count) distinct")
    }
}
