import Foundation
import SluiceCore
import Testing

@testable import SluiceMySQL

/// The client against a real MariaDB server: authentication, TLS, queries, errors.
@Suite struct MySQLConnectionTests {
    @Test func queriesReturnTheServersTextAndNulls() async throws {
        try await withTestMySQL { c in
            let r = try await c.query("SELECT 1 AS one, NULL AS nothing, 'é' AS e, REPEAT('x', 300) AS long_text")
            #expect(r.columns.map(\.name) == ["one", "nothing", "e", "long_text"])
            #expect(r.rows.count == 1)
            #expect(r.string(0, 0) == "1")
            #expect(r.rows[0][1] == nil)
            #expect(r.string(0, "e") == "é")
            #expect(r.string(0, 3) == String(repeating: "x", count: 300))
            let empty = try await c.query("SELECT 1 FROM DUAL WHERE 1 = 0")
            #expect(empty.rows.isEmpty && empty.columns.count == 1)
        }
    }

    @Test func aWrongPasswordIsRefusedWithoutRetrying() async throws {
        var url = try testMySQLURL()
        url.password = "wrong-secret"
        await #expect {
            _ = try await MySQLConnection.connect(url)
        } throws: { error in
            guard let e = error as? SluiceError else { return false }
            return !e.isRetryable && e.message.contains("Access denied") && !e.message.contains("wrong-secret")
        }
    }

    @Test func aFailingStatementNamesTheServersError() async throws {
        try await withTestMySQL { c in
            await #expect {
                try await c.query("SELECT * FROM no_such_table")
            } throws: { error in
                "\(error)".contains("1146") && "\(error)".contains("no_such_table")
            }
            // The connection is still usable after an error.
            let after = try await c.query("SELECT 2")
            #expect(after.string(0, 0) == "2")
        }
    }

    @Test func bigResultsArriveWhole() async throws {
        try await withTestMySQL { c in
            let r = try await c.query("SELECT seq, REPEAT('y', 1000) FROM seq_1_to_20000")
            #expect(r.rows.count == 20_000)
            #expect(r.string(19_999, 0) == "20000")
        }
    }
}

extension MySQLConnectionTests {
    @Test func tlsIsUsedWhenAskedFor() async throws {
        var url = try testMySQLURL()
        url.tls = .require
        let c = try await MySQLConnection.connect(url)
        let cipher = try await c.query("SHOW SESSION STATUS LIKE 'Ssl_cipher'")
        #expect(c.isTLS)
        #expect(!(cipher.string(0, 1) ?? "").isEmpty)
        await c.close()
        // verify-full against the test server's own certificate (named 127.0.0.1).
        if let dir = ProcessInfo.processInfo.environment["MARIADB_TEST_DIR"] {
            url.tls = .verifyFull
            url.caFile = dir + "/server.crt"
            let verified = try await MySQLConnection.connect(url)
            #expect(verified.isTLS)
            await verified.close()
        }
        // The plain connection is plain.
        url.tls = .disable
        let plain = try await MySQLConnection.connect(url)
        let none = try await plain.query("SHOW SESSION STATUS LIKE 'Ssl_cipher'")
        #expect(!plain.isTLS && (none.string(0, 1) ?? "") == "")
        await plain.close()
    }

    @Test func theURLIsReadAsUsersWriteIt() throws {
        let url = try MySQLURL("mysql://repl%40x:p%40ss%3Aw@db.example.com:3307/shop?tls=require")
        #expect(url.user == "repl@x" && url.password == "p@ss:w" && url.host == "db.example.com" && url.port == 3307)
        #expect(url.database == "shop" && url.tls == .require)
        #expect(!url.description.contains("p%40ss"))
        #expect(try MySQLURL("mariadb://root@localhost").port == 3306)
        #expect(throws: SluiceError.self) { try MySQLURL("postgres://x@y/z") }
        #expect(throws: SluiceError.self) { try MySQLURL("mysql://x@y/z?tls=sometimes") }
        #expect(throws: SluiceError.self) { try MySQLURL("mysql://x@y/z?colour=red") }
    }
}
