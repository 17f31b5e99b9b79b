import Foundation
import SluiceCore
import SluiceMySQL

/// The throwaway MariaDB server scripts/test.sh starts (scripts/mariadb-test-server.sh).
func testMySQLURL() throws -> MySQLURL {
    guard let url = ProcessInfo.processInfo.environment["SLUICE_TEST_MYSQL_URL"] else {
        throw SluiceError(.configuration, "SLUICE_TEST_MYSQL_URL is not set: run the tests through scripts/test.sh, which starts a throwaway MariaDB server")
    }
    return try MySQLURL(url)
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
