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

/// A MariaDB server of one test's own (started by `scripts/mariadb-test-server.sh`, as the
/// shared one is), for what the shared one must not go through: restarts, purged binlogs.
struct PrivateMariaDB {
    let directory: String
    let url: String

    static let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("scripts/mariadb-test-server.sh").path

    struct Failed: Error, CustomStringConvertible { var description: String }

    /// - Parameter serverID: the server's `server_id` (servers of one replication topology differ).
    static func start(serverID: Int = 1) async throws -> PrivateMariaDB {
        let answer = FileManager.default.temporaryDirectory.appendingPathComponent("sluice-private-mariadb-\(UUID().uuidString).txt").path
        defer { try? FileManager.default.removeItem(atPath: answer) }
        let status = try await bash(
            "unset SLUICE_TEST_MYSQL_URL; export MARIADB_TEST_SERVER_ID=\(serverID); source \"$0\" >/dev/null && echo \"$MARIADB_TEST_DIR $SLUICE_TEST_MYSQL_URL\" > \"$1\"",
            script, answer)
        let fields = ((try? String(contentsOfFile: answer, encoding: .utf8)) ?? "").split(whereSeparator: \.isWhitespace).map(String.init)
        guard status == 0, fields.count == 2 else {
            throw Failed(description: "scripts/mariadb-test-server.sh could not start a private server (status \(status))")
        }
        return PrivateMariaDB(directory: fields[0], url: fields[1])
    }

    /// An outage: the server shuts down (clients are disconnected); its data stays for ``resume()``.
    func pause() async throws { try await function("mariadb_test_server_pause") }

    /// The end of the outage: the server starts again on the same port.
    func resume() async throws { try await function("mariadb_test_server_resume") }

    /// Stops the server and removes its directory.
    func stop() async { try? await function("mariadb_test_server_stop") }

    private func function(_ name: String) async throws {
        // Sourced with a URL set, the script starts nothing.
        let status = try await Self.bash("SLUICE_TEST_MYSQL_URL=private; source \"$0\"; MARIADB_TEST_DIR=\"$1\" \(name)", Self.script, directory)
        guard status == 0 else { throw Failed(description: "\(name) failed (status \(status))") }
    }

    static func bash(_ command: String, _ arguments: String...) async throws -> Int32 {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/bin/bash")
        p.arguments = ["-c", command] + arguments
        p.standardOutput = FileHandle.nullDevice
        try p.run()
        while p.isRunning { try await Task.sleep(for: .milliseconds(20)) }
        return p.terminationStatus
    }
}
