import Foundation
import SluiceTesting

/// The throwaway MariaDB server scripts/test.sh starts (scripts/mariadb-test-server.sh).
func mysqlURL() throws -> String {
    guard let url = ProcessInfo.processInfo.environment["SLUICE_TEST_MYSQL_URL"] else {
        struct Missing: Error, CustomStringConvertible {
            var description: String { "SLUICE_TEST_MYSQL_URL is not set: run the tests through scripts/test.sh, which starts a throwaway MariaDB server" }
        }
        throw Missing()
    }
    return url
}

/// The `mariadb` client's connection arguments for the test server.
func mysqlClientArguments() throws -> [String] {
    struct BadURL: Error {}
    guard let url = URLComponents(string: try mysqlURL()) else { throw BadURL() }
    return ["--no-defaults", "-h", url.host ?? "127.0.0.1", "-P", String(url.port ?? 3306), "-u", url.user ?? "sluice", "-p\(url.password ?? "")"]
}

/// Runs SQL with the `mariadb` client (in `database`); returns the result rows, tab-separated.
func mysql(_ sql: String, database: String? = nil) throws -> [String] {
    try runTool("mariadb", try mysqlClientArguments() + ["-N", "-B"] + (database.map { [$0] } ?? []) + ["-e", sql])
}

@discardableResult
func mysqlAsync(_ sql: String, database: String? = nil) async throws -> [String] {
    try await offPool { try mysql(sql, database: database) }
}

/// Runs a command-line tool; its output lines, or an error with its stderr.
func runTool(_ tool: String, _ arguments: [String]) throws -> [String] {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    p.arguments = [tool] + arguments
    let out = ChildProcesses.pipe(), err = ChildProcesses.pipe()
    p.standardOutput = out
    p.standardError = err
    try ChildProcesses.run(p)
    nonisolated(unsafe) var errData = Data()
    let group = DispatchGroup()
    group.enter()
    Thread {
        errData = err.fileHandleForReading.readDataToEndOfFile(); group.leave()
    }.start()
    let data = out.fileHandleForReading.readDataToEndOfFile()
    p.waitUntilExit()
    group.wait()
    struct Failed: Error, CustomStringConvertible { var description: String }
    guard p.terminationStatus == 0 else {
        throw Failed(description: "\(tool) failed: \(String(decoding: errData, as: UTF8.self))\n\(arguments.last?.prefix(500) ?? "")")
    }
    return String(decoding: data, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false).dropLast().map(String.init)
}

/// Starts the `mariadb` client on `sql` in the background (a concurrent writer).
func startMysql(_ sql: String, database: String) throws -> Process {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    p.arguments = ["mariadb"] + (try mysqlClientArguments()) + [database, "-e", sql]
    p.standardOutput = FileHandle.nullDevice
    try ChildProcesses.run(p)
    return p
}
