import Foundation
import SluiceCore
import SluiceMySQL

/// The throwaway MariaDB server scripts/test.sh starts (scripts/mariadb-test-server.sh).
func testMySQLURL() throws -> MySQLURL { try MySQLURL(try testMySQLURLText()) }

/// The test server's URL as written.
func testMySQLURLText() throws -> String {
    guard let url = ProcessInfo.processInfo.environment["SLUICE_TEST_MYSQL_URL"] else {
        throw SluiceError(.configuration, "SLUICE_TEST_MYSQL_URL is not set: run the tests through scripts/test.sh, which starts a throwaway MariaDB server")
    }
    return url
}

/// Runs `body` on a new connection, closed afterwards.
func withTestMySQL<T>(_ body: (MySQLConnection) async throws -> T) async throws -> T {
    let connection = try await MySQLConnection.connect(try testMySQLURL())
    do {
        let result = try await body(connection)
        await connection.close()
        return result
    } catch {
        await connection.close()
        throw error
    }
}

/// A database of one test's own on the test server (dropped by ``drop()``).
struct TestMySQLDatabase {
    let name: String

    /// Runs `body` with a new database, dropped afterwards.
    static func with<T>(_ prefix: String, _ body: (TestMySQLDatabase) async throws -> T) async throws -> T {
        let name = "\(prefix)_\(UInt32.random(in: 0...UInt32.max))"
        try await withTestMySQL { try await $0.execute("CREATE DATABASE \(name) CHARACTER SET utf8mb4") }
        let db = TestMySQLDatabase(name: name)
        do {
            let result = try await body(db)
            await db.drop()
            return result
        } catch {
            await db.drop()
            throw error
        }
    }

    /// Runs statements in this database, one connection, in order.
    func execute(_ statements: String...) async throws {
        try await withTestMySQL { c in
            try await c.execute("USE \(name)")
            for s in statements { try await c.execute(s) }
        }
    }

    func drop() async {
        _ = try? await withTestMySQL { try await $0.execute("DROP DATABASE IF EXISTS \(name)") }
    }
}
