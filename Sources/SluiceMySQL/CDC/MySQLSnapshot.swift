import Foundation
import SluiceCore

/// Snapshot reads of existing rows, chunk by chunk in primary-key order. Each chunk is read in
/// its own consistent snapshot whose exact binlog position is known, so it can be handed over
/// at that place in the stream: every change before it is in the chunk's rows, every change
/// after it comes after them. No lock is held between chunks, and a crash resumes after the last
/// chunk handed over.
///
/// The position: MariaDB reports it with the snapshot (`binlog_snapshot_file` and
/// `binlog_snapshot_position` after `START TRANSACTION WITH CONSISTENT SNAPSHOT`, no lock);
/// other servers take it under a brief global read lock (`FLUSH TABLES WITH READ LOCK`, needs
/// the RELOAD privilege).
enum MySQLSnapshot {
    enum Method: Sendable { case snapshotStatus, readLock }

    struct Chunk: Sendable {
        var changes: [MySQLChange]
        /// The key of its last row, as SQL literals (nil when empty).
        var last: [String]?
        var isLast: Bool
        /// The binlog position its rows are current at.
        var at: BinlogCoordinates
        /// The GTID position there, when the server tells.
        var gtid: String? = nil
    }

    /// Prepares a connection for snapshot reads: UTC timestamps, UTF-8 text, no padding or
    /// escaping surprises in the SQL it runs.
    static func prepare(_ c: MySQLConnection) async throws {
        try await c.execute("SET NAMES utf8mb4", "SET time_zone = '+00:00'", "SET SESSION sql_mode = 'NO_ENGINE_SUBSTITUTION'")
    }

    /// The table's columns and primary key from `information_schema`, rendered as the binlog's.
    static func describe(_ name: String, on c: MySQLConnection) async throws -> MySQLTableShape {
        let parts = name.split(separator: ".", maxSplits: 1).map(String.init)
        guard parts.count == 2 else { throw SluiceError(.configuration, "'\(name)' is not database.table", retryable: false) }
        let columns = try await c.query(
            """
            SELECT COLUMN_NAME, DATA_TYPE, COLUMN_TYPE, CHARACTER_SET_NAME, NUMERIC_PRECISION, NUMERIC_SCALE, DATETIME_PRECISION, CHARACTER_OCTET_LENGTH
            FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = \(literal(parts[0])) AND TABLE_NAME = \(literal(parts[1])) ORDER BY ORDINAL_POSITION
            """)
        guard !columns.rows.isEmpty else {
            throw SluiceError(.configuration, "table \(name) does not exist (or the user cannot see it)", location: "source.mysql_cdc.tables", retryable: false)
        }
        let keyRows = try await c.query(
            """
            SELECT COLUMN_NAME FROM information_schema.STATISTICS
            WHERE TABLE_SCHEMA = \(literal(parts[0])) AND TABLE_NAME = \(literal(parts[1])) AND INDEX_NAME = 'PRIMARY' ORDER BY SEQ_IN_INDEX
            """)
        var out: [MySQLTableShape.Column] = []
        for r in 0..<columns.rows.count {
            let column = columns.string(r, 0) ?? ""
            let type = (columns.string(r, 1) ?? "").lowercased(), full = (columns.string(r, 2) ?? "").lowercased()
            let unsigned = full.contains("unsigned")
            let precision = columns.string(r, 4) ?? "", scale = columns.string(r, 5) ?? "", fsp = Int(columns.string(r, 6) ?? "") ?? 0
            let kind: MySQLTableShape.Kind, postgres: String
            switch type {
            case "tinyint": (kind, postgres) = (unsigned ? .unsigned : .signed, "smallint")
            case "smallint": (kind, postgres) = (unsigned ? .unsigned : .signed, unsigned ? "integer" : "smallint")
            case "mediumint": (kind, postgres) = (unsigned ? .unsigned : .signed, "integer")
            case "int", "integer": (kind, postgres) = (unsigned ? .unsigned : .signed, unsigned ? "bigint" : "integer")
            case "bigint": (kind, postgres) = (unsigned ? .unsigned : .signed, unsigned ? "numeric(20,0)" : "bigint")
            case "float": (kind, postgres) = (.float, "real")
            case "double", "real": (kind, postgres) = (.double, "double precision")
            case "decimal", "numeric": (kind, postgres) = (.decimal, "numeric(\(precision),\(scale))")
            case "year": (kind, postgres) = (.year, "smallint")
            case "date": (kind, postgres) = (.date, "date")
            case "datetime": (kind, postgres) = (.datetime(fsp: fsp), "timestamp(\(fsp)) without time zone")
            case "timestamp": (kind, postgres) = (.timestamp(fsp: fsp), "timestamp(\(fsp)) with time zone")
            case "time": (kind, postgres) = (.time(fsp: fsp), "interval")
            case "bit": (kind, postgres) = (.bit, "numeric(20,0)")
            case "json": (kind, postgres) = (.json, "jsonb")
            case "enum": (kind, postgres) = (.enumeration([], .utf8), "text")
            case "set": (kind, postgres) = (.set([], .utf8), "text")
            case "char", "varchar", "tinytext", "text", "mediumtext", "longtext":
                (kind, postgres) = (.text(.utf8), "text")
            case "binary": (kind, postgres) = (.binary(padTo: Int(columns.string(r, 7) ?? "")), "text")
            case "varbinary", "tinyblob", "blob", "mediumblob", "longblob": (kind, postgres) = (.binary(padTo: nil), "text")
            case "geometry", "point", "linestring", "polygon", "multipoint", "multilinestring", "multipolygon", "geometrycollection", "geomcollection":
                (kind, postgres) = (.geometry, "jsonb")
            default:
                throw SluiceError(
                    .unsupported, "column \(column) of \(name) has type \(type), which Sluice cannot capture yet", location: "source.mysql_cdc.tables",
                    retryable: false)
            }
            out.append(.init(name: column, kind: kind, postgresType: postgres))
        }
        let key = (0..<keyRows.rows.count).compactMap { k in out.firstIndex { $0.name == keyRows.string(k, 0) } }
        return MySQLTableShape(database: parts[0], table: parts[1], columns: out, key: key)
    }

    /// Reads the rows after `after` (key order), at most `limit`, in a consistent snapshot.
    static func readChunk(_ shape: MySQLTableShape, after: [String]?, limit: Int, method: Method, on c: MySQLConnection) async throws -> Chunk {
        guard !shape.key.isEmpty else {
            throw SluiceError(
                .configuration,
                "table \(shape.name) has no primary key, so its snapshot cannot be read in chunks; add one, or set snapshot: never",
                location: "source.mysql_cdc.tables", retryable: false)
        }
        for k in shape.key {
            switch shape.columns[k].kind {
            case .enumeration, .set, .float, .double, .json, .geometry:
                // ENUM sorts by its index but compares as text, FLOAT keys are not exact in text.
                throw SluiceError(
                    .unsupported,
                    "table \(shape.name)'s key column \(shape.columns[k].name) cannot be read in chunks in key order; set snapshot: never",
                    location: "source.mysql_cdc.tables", retryable: false)
            default: break
            }
        }
        let select = shape.columns.map { column -> String in
            let name = identifier(column.name)
            // FLOAT as DOUBLE: the text of a FLOAT is rounded to 6 digits, the DOUBLE is its exact value.
            return column.kind == .float ? "CAST(\(name) AS DOUBLE)" : name
        }.joined(separator: ", ")
        let keyNames = shape.key.map { identifier(shape.columns[$0].name) }
        var sql = "SELECT \(select) FROM \(identifier(shape.database)).\(identifier(shape.table))"
        if let after { sql += " WHERE " + keyAfter(keyNames, after) }
        sql += " ORDER BY \(keyNames.joined(separator: ", ")) LIMIT \(limit)"
        let at: BinlogCoordinates
        let rows: MySQLResultSet
        switch method {
        case .snapshotStatus:
            try await c.execute("START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY")
            let status = try await c.query("SHOW STATUS LIKE 'binlog_snapshot_%'")
            at = try coordinates(status)
            rows = try await c.query(sql)
            try await c.execute("COMMIT")
        case .readLock:
            try await c.execute("FLUSH TABLES WITH READ LOCK")
            do {
                try await c.execute("START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY")
                at = try await binlogStatus(c).at
                try await c.execute("UNLOCK TABLES")
            } catch {
                try? await c.execute("UNLOCK TABLES")
                throw error
            }
            rows = try await c.query(sql)
            try await c.execute("COMMIT")
        }
        let types = shape.columnTypes
        var changes: [MySQLChange] = []
        changes.reserveCapacity(rows.rows.count)
        for row in rows.rows {
            changes.append(
                MySQLChange(
                    op: "r", table: shape.name, key: try MySQLRowRenderer.json(text: row, shape, keyOnly: true), before: nil,
                    after: try MySQLRowRenderer.json(text: row, shape), types: types))
        }
        // The next chunk starts after this key: a key that cannot be written back exactly would
        // end the snapshot early (`k > NULL` holds for no row), so it stops the pipeline instead.
        let last = try rows.rows.last.map { row in
            try shape.key.map { k -> String in
                let kind = shape.columns[k].kind
                guard let bytes = row[k] else {
                    throw MySQLRowRenderer.failure(shape, k, "a NULL in the primary key")
                }
                switch kind {
                case .binary, .bit: return "X'\(MySQLJSON.hex(bytes))'"
                // Numbers unquoted: a DECIMAL compared with a quoted string is compared as a
                // DOUBLE, and neighbouring keys would look equal. (The text is checked to be a number.)
                case .signed, .unsigned, .decimal, .year:
                    return String(decoding: try MySQLRowRenderer.number(bytes, shape, k), as: UTF8.self)
                default: return literal(String(decoding: bytes, as: UTF8.self))
                }
            }
        }
        return Chunk(changes: changes, last: last, isLast: rows.rows.count < limit, at: at)
    }

    /// The server's current binlog file and position, and on MySQL its executed GTID set there
    /// (empty with `gtid_mode` off). `SHOW BINARY LOG STATUS` on MySQL 8.2+ (8.4 has no
    /// `SHOW MASTER STATUS`), `SHOW MASTER STATUS` elsewhere.
    static func binlogStatus(_ c: MySQLConnection) async throws -> (at: BinlogCoordinates, executed: String?) {
        let statement = binlogStatusStatement(c.server.serverVersion)
        let status = try await c.query(statement)
        guard let file = status.string(0, 0), let pos = status.string(0, 1).flatMap(UInt64.init) else {
            throw SluiceError(.configuration, "\(statement) shows no binlog: turn on log_bin", retryable: false)
        }
        return (BinlogCoordinates(file: file, position: pos), c.server.isMariaDB ? nil : status.string(0, 4))
    }

    /// ``binlogStatus(_:)`` with commits held back (`FLUSH TABLES WITH READ LOCK`, which needs
    /// `RELOAD`): MySQL reads the executed GTID set before the position, so a transaction
    /// committing in between would be in the position and not in the set. Nil when the lock is
    /// not granted within 5 s (a long statement running holds it up, and writers would queue
    /// behind the wait) or not at all: the set is then learnt from the next binlog file.
    static func lockedBinlogStatus(_ c: MySQLConnection) async throws -> (at: BinlogCoordinates, executed: String?)? {
        // Only for this lock: the session goes on to read snapshots with the server's own.
        try await c.execute("SET SESSION lock_wait_timeout = 5")
        do {
            try await c.execute("FLUSH TABLES WITH READ LOCK")
            try await c.execute("SET SESSION lock_wait_timeout = DEFAULT")
        } catch {
            try? await c.execute("UNLOCK TABLES")
            try? await c.execute("SET SESSION lock_wait_timeout = DEFAULT")
            return nil
        }
        do {
            let status = try await binlogStatus(c)
            try await c.execute("UNLOCK TABLES")
            return status
        } catch {
            try? await c.execute("UNLOCK TABLES")
            throw error
        }
    }

    /// The statement that shows the binlog position on a server of this version.
    static func binlogStatusStatement(_ version: String) -> String {
        guard !version.contains("MariaDB") else { return "SHOW MASTER STATUS" }
        let numbers = version.split(whereSeparator: { !$0.isNumber }).prefix(2).compactMap { Int($0) }
        guard numbers.count == 2 else { return "SHOW MASTER STATUS" }
        return (numbers[0], numbers[1]) >= (8, 2) ? "SHOW BINARY LOG STATUS" : "SHOW MASTER STATUS"
    }

    static func coordinates(_ status: MySQLResultSet) throws -> BinlogCoordinates {
        var file: String?, position: UInt64?
        for r in 0..<status.rows.count {
            switch status.string(r, 0)?.lowercased() {
            case "binlog_snapshot_file": file = status.string(r, 1)
            case "binlog_snapshot_position": position = status.string(r, 1).flatMap(UInt64.init)
            default: break
            }
        }
        guard let file, !file.isEmpty, let position else {
            throw SluiceError(.configuration, "the server reports no binlog position with its snapshot: turn on log_bin", retryable: false)
        }
        return BinlogCoordinates(file: file, position: position)
    }

    /// `(k1, k2) > (v1, v2)` spelled out so that the optimizer reads the key's index as a range.
    static func keyAfter(_ keys: [String], _ values: [String]) -> String {
        (0..<keys.count).map { i in
            "(" + (0..<i).map { "\(keys[$0]) = \(values[$0])" }.joined(separator: " AND ") + (i > 0 ? " AND " : "") + "\(keys[i]) > \(values[i]))"
        }.joined(separator: " OR ")
    }

    static func identifier(_ name: String) -> String { "`" + name.replacingOccurrences(of: "`", with: "``") + "`" }

    /// A string literal (backslash escapes on: the session's sql_mode is set by ``prepare(_:)``).
    static func literal(_ text: String) -> String {
        "'" + text.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "'", with: "\\'") + "'"
    }
}
