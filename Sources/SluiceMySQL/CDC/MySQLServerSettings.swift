import Foundation
import SluiceCore

/// What a server must have for `mysql_cdc`, each lack named with the statement that fixes it.
enum MySQLServerSettings {
    /// The variables that matter, by name (lower-case), as the server reports them.
    static func variables(_ c: MySQLConnection) async throws -> [String: String] {
        let r = try await c.query(
            """
            SHOW GLOBAL VARIABLES WHERE Variable_name IN ('log_bin', 'binlog_format', 'binlog_row_image', 'binlog_row_metadata',
            'binlog_expire_logs_seconds', 'expire_logs_days', 'gtid_mode', 'enforce_gtid_consistency', 'gtid_strict_mode', 'server_id',
            'binlog_checksum', 'binlog_row_value_options', 'version')
            """)
        var out: [String: String] = [:]
        for row in 0..<r.rows.count { out[(r.string(row, 0) ?? "").lowercased()] = r.string(row, 1) ?? "" }
        return out
    }

    /// The problems the server's variables show, each with its fix.
    static func problems(_ v: [String: String]) -> [String] {
        var problems: [String] = []
        if v["log_bin"]?.uppercased() != "ON" {
            problems.append(
                "the binary log is off (log_bin = \(v["log_bin"] ?? "?")): start the server with log_bin (in my.cnf: [mysqld] log_bin = binlog, server_id = 1) and restart it"
            )
        }
        if v["binlog_format"]?.uppercased() != "ROW" {
            problems.append("binlog_format is \(v["binlog_format"] ?? "?"), and CDC needs row events: SET GLOBAL binlog_format = 'ROW' (and in my.cnf)")
        }
        if !["FULL", "MINIMAL", "NOBLOB", "FULL_NODUP"].contains(v["binlog_row_image"]?.uppercased() ?? "") {
            problems.append(
                "binlog_row_image is \(v["binlog_row_image"] ?? "not shown by this server"), which Sluice does not know: SET GLOBAL binlog_row_image = 'FULL' (and in my.cnf)"
            )
        }
        if v["binlog_row_metadata"]?.uppercased() != "FULL" {
            problems.append(
                "binlog_row_metadata is \(v["binlog_row_metadata"] ?? "not supported by this server (MySQL 8.0.1+ and MariaDB 10.5+ have it)"): with FULL the binlog names each row's columns: SET GLOBAL binlog_row_metadata = 'FULL' (and in my.cnf)"
            )
        }
        // MySQL 8: an update of part of a JSON document is logged as the change alone (an event
        // Sluice refuses), not as the new document.
        if let options = v["binlog_row_value_options"], options.uppercased().contains("PARTIAL_JSON") {
            problems.append(
                "binlog_row_value_options is \(options): updates of part of a JSON document are logged as the change alone, which Sluice does not read: SET GLOBAL binlog_row_value_options = '' (and in my.cnf)"
            )
        }
        return problems
    }

    /// Problems that stop a pipeline before any data moves (empty: ready), each with its fix.
    static func check(_ c: MySQLConnection, tables: [String]) async throws -> [String] {
        var problems = Self.problems(try await variables(c))
        if !tables.isEmpty {
            let list = tables.map { MySQLSnapshot.literal($0) }.joined(separator: ", ")
            let found = try await c.query(
                "SELECT CONCAT(TABLE_SCHEMA, '.', TABLE_NAME) FROM information_schema.TABLES WHERE CONCAT(TABLE_SCHEMA, '.', TABLE_NAME) IN (\(list))")
            let existing = Set((0..<found.rows.count).compactMap { found.string($0, 0) })
            for t in tables where !existing.contains(t) {
                problems.append("table \(t) does not exist (or the user cannot see it: GRANT SELECT ON \(t) TO the user)")
            }
        }
        let grants = try await c.query("SHOW GRANTS").rows.compactMap { $0.first ?? nil }.map { String(decoding: $0, as: UTF8.self).uppercased() }
        let all = grants.contains { $0.contains("GRANT ALL PRIVILEGES ON *.*") }
        if !all && !grants.contains(where: { $0.contains("REPLICATION SLAVE") }) {
            problems.append("the user \(c.url.user) cannot read the binlog: GRANT REPLICATION SLAVE, REPLICATION CLIENT ON *.* TO '\(c.url.user)'")
        }
        return problems
    }

    /// Warnings that do not stop a pipeline: binlog retention shorter than a day; row images that
    /// leave columns out (MINIMAL, NOBLOB); on MariaDB, GTIDs that cannot carry a checkpoint
    /// across a failover (when the stream resumes by GTID).
    static func warnings(_ v: [String: String], resume: MySQLCDCOptions.ResumeMode = .gtid) -> [String] {
        var out: [String] = []
        let seconds = Int(v["binlog_expire_logs_seconds"] ?? "") ?? 0
        let days = Double(v["expire_logs_days"] ?? "") ?? 0
        let retention = seconds > 0 ? seconds : Int(days * 86_400)
        if retention > 0, retention < 86_400 {
            out.append(
                "the server keeps binlogs for only \(retention) s: a pipeline stopped longer than that loses its place and needs a new snapshot; SET GLOBAL binlog_expire_logs_seconds = 604800 keeps a week"
            )
        }
        // MINIMAL, NOBLOB (and MariaDB's FULL_NODUP after images) leave columns out: what is left is exact, what is missing
        // from an insert (or from a row moved to a new key) is not in the binlog at all.
        if let image = v["binlog_row_image"], ["MINIMAL", "NOBLOB", "FULL_NODUP"].contains(image.uppercased()) {
            out.append(
                "binlog_row_image is \(image): updates carry only the columns the server logged (the others are left out of after, and mode: apply keeps them, but does not insert a row it does not hold from such an update), and an insert that leaves a column to its default, or an update that changes a row's key without setting every column, stops the pipeline, because the binlog does not carry those values; SET GLOBAL binlog_row_image = 'FULL' (and in my.cnf) avoids that"
            )
        }
        // Resuming by GTID takes each domain's latest GTID as the place: right when sequence
        // numbers only grow, which strict mode enforces.
        if isMariaDB(v), resume == .gtid, v["gtid_strict_mode"]?.uppercased() != "ON" {
            out.append(
                "gtid_strict_mode is \(v["gtid_strict_mode"] ?? "?"): a checkpoint follows a failover by GTID only if each domain's sequence numbers grow; SET GLOBAL gtid_strict_mode = ON (and in my.cnf), or set resume: position"
            )
        }
        return out
    }

    /// What `sluice cdc setup` says about GTIDs (not a problem either way).
    static func gtidNote(_ v: [String: String], resume: MySQLCDCOptions.ResumeMode = .gtid) -> String {
        if isMariaDB(v) {
            return resume == .gtid
                ? "GTIDs: the stream resumes after the checkpoint's GTID position; after a failover, point url at the new primary (a replica with log_slave_updates = ON)"
                : "GTIDs: recorded; the stream resumes by binlog file and position (resume: position), on this server only"
        }
        guard resume == .gtid, v["gtid_mode"]?.uppercased() == "ON" else {
            return
                "GTIDs: gtid_mode = \(v["gtid_mode"] ?? "?"), resume: \(resume.rawValue); the stream resumes by binlog file and position, on this server only (with gtid_mode = ON and resume: gtid it resumes by GTID set and follows a failover)"
        }
        return
            "GTIDs: the stream resumes with the checkpoint's GTID set (every transaction before it), wherever the server holds it; after a failover, point url at the new primary (a replica with log_replica_updates = ON)"
    }

    static func isMariaDB(_ v: [String: String]) -> Bool { (v["version"] ?? "").lowercased().contains("mariadb") }
}
