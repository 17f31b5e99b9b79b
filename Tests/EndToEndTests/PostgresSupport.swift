import Foundation
import SluiceTesting
import Testing

/// The throwaway server `scripts/test.sh` starts. Tests fail without it (they never skip).
func postgresURL() throws -> String {
    guard let url = ProcessInfo.processInfo.environment["SLUICE_TEST_PG_URL"] else {
        struct NoServer: Error, CustomStringConvertible {
            var description: String { "SLUICE_TEST_PG_URL is not set: run the tests through scripts/test.sh, which starts a throwaway PostgreSQL server" }
        }
        throw NoServer()
    }
    return url
}

/// Runs SQL with `psql` (an independent client) and returns its unaligned output lines.
@discardableResult
func psql(_ sql: String, url: String? = nil) throws -> [String] {
    try runTool("psql", ["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", try url ?? postgresURL(), "-c", sql]).filter { !$0.isEmpty }
}

/// A schema of its own for one test.
func makeSchema(_ name: String) throws -> String {
    let schema = "e2e_\(name)_\(UUID().uuidString.prefix(6).lowercased())"
    try psql("CREATE SCHEMA \(schema)")
    return schema
}

/// `count:md5` of a table's rows, each rendered as its columns' text joined by `|` (NULL as ∅)
/// in key order: equal fingerprints mean equal tables, whatever the column types.
func tableFingerprint(_ schema: String, _ table: String, columns: [String], orderBy key: String) throws -> [String] {
    let cols = columns.map { "coalesce(\($0)::text, '∅')" }.joined(separator: ", ")
    return try psql("SELECT count(*) || ':' || coalesce(md5(string_agg(concat_ws('|', \(cols)), E'\\n' ORDER BY \(key)::text)), '') FROM \(schema).\(table)")
}

/// Drops what a CDC test made: its slots (those no process streams from), its publication and
/// its schemas. For `defer`: failures are ignored.
func dropCDCObjects(slots: [String], publication: String, schemas: [String]) {
    for slot in slots {
        _ = try? psql("SELECT pg_drop_replication_slot('\(slot)') FROM pg_replication_slots WHERE slot_name = '\(slot)' AND NOT active")
    }
    _ = try? psql("DROP PUBLICATION IF EXISTS \(publication); " + schemas.map { "DROP SCHEMA IF EXISTS \($0) CASCADE; " }.joined())
}

/// Waits until the replication slots exist and are ready: a slot is listed while it still waits
/// for running transactions to finish, and changes committed before it is ready are part of its
/// starting snapshot, not changes of its stream (a loaded server made a test count them as lost).
func waitForReadySlots(_ slots: [String], seconds: Double = 90) async throws -> Bool {
    let names = slots.map { "'\($0)'" }.joined(separator: ", ")
    return try await waitUntil(seconds: seconds) {
        try psql("SELECT count(*) FROM pg_replication_slots WHERE slot_name IN (\(names)) AND confirmed_flush_lsn IS NOT NULL") == ["\(slots.count)"]
    }
}

/// Starts `psql -c sql` without waiting for it (a transaction that stays open while the test
/// goes on); wait for it with ``waitForExit(_:)``.
func startPsql(_ sql: String) throws -> Process {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    p.arguments = ["psql", "-X", "-q", try postgresURL(), "-c", sql]
    p.standardOutput = FileHandle.nullDevice
    try ChildProcesses.run(p)
    return p
}

/// ``psql(_:url:)`` for async tests: run on a thread of its own (see ``offPool(_:)``).
@discardableResult
func psqlAsync(_ sql: String) async throws -> [String] {
    try await offPool { try psql(sql) }
}

/// A PostgreSQL server of one test's own (started by `scripts/pg-test-server.sh`, as the shared
/// one is), for server settings the shared server must not get. ``stop()`` throws it away.
struct PrivatePostgresServer {
    let directory: String
    let url: String

    static let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("scripts/pg-test-server.sh").path

    static func start() async throws -> PrivatePostgresServer {
        // The script's answer goes to a file, not a pipe, and the wait is on a thread of its own.
        let answer = FileManager.default.temporaryDirectory.appendingPathComponent("sluice-private-pg-\(UUID().uuidString).txt").path
        defer { try? FileManager.default.removeItem(atPath: answer) }
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/bin/bash")
        p.arguments = ["-c", "unset SLUICE_TEST_PG_URL; source \"$0\" >/dev/null && echo \"$PG_TEST_DIR $SLUICE_TEST_PG_URL\" > \"$1\"", script, answer]
        p.standardOutput = FileHandle.nullDevice
        try ChildProcesses.run(p)
        await waitForExit(p)
        let fields = ((try? String(contentsOfFile: answer, encoding: .utf8)) ?? "").split(whereSeparator: \.isWhitespace).map(String.init)
        struct StartFailed: Error, CustomStringConvertible { var description: String }
        guard p.terminationStatus == 0, fields.count == 2 else {
            throw StartFailed(description: "scripts/pg-test-server.sh could not start a private server (status \(p.terminationStatus))")
        }
        return PrivatePostgresServer(directory: fields[0], url: fields[1])
    }

    /// An outage: stops the server (clients are disconnected at once); its data stays for ``resume()``.
    func pause() async throws { try await script("pg_test_server_pause", "stop") }

    /// The end of an outage: starts the paused server again, on the same port.
    func resume() async throws { try await script("pg_test_server_resume", "start") }

    /// Runs one of the script's functions on this server's directory.
    private func script(_ function: String, _ what: String) async throws {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/bin/bash")
        // Sourced with a URL set, the script starts nothing.
        p.arguments = ["-c", "SLUICE_TEST_PG_URL=private; source \"$0\"; PG_TEST_DIR=\"$1\" \(function)", Self.script, directory]
        p.standardOutput = FileHandle.nullDevice
        try ChildProcesses.run(p)
        await waitForExit(p)
        struct Failed: Error, CustomStringConvertible { var description: String }
        guard p.terminationStatus == 0 else { throw Failed(description: "could not \(what) the private server (status \(p.terminationStatus))") }
    }

    /// Stops the server at once and removes its directory. For `defer`.
    func stop() {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/bin/bash")
        // Sourced with a URL set, the script starts nothing; its stop function removes the server.
        p.arguments = ["-c", "SLUICE_TEST_PG_URL=private; source \"$0\"; PG_TEST_DIR=\"$1\" pg_test_server_stop", Self.script, directory]
        try? ChildProcesses.run(p)
        p.waitUntilExit()
    }
}
