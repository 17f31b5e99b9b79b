import GRDB
import SluiceCore

/// Trigger-based CDC for SQLite: a change table and insert/update/delete triggers that write each
/// change as an event (`op`, `table`, `key`, `before`, `after` as JSON text). An `sqlite` source in
/// `mode: changelog` with `processed_column: processed` reads it. SQLite has one writer at a time,
/// so change ids follow commit order.
public enum SQLiteTriggerCDC {
    /// Installs capture for `tables` in the database at `path` (one transaction); returns the SQL.
    public static func install(path: String, tables: [String], changeTable: String = "sluice_changes") throws -> [String] {
        let queue = try DatabaseQueue(path: path)
        return try queue.write { db in
            let ct = quote(changeTable)
            var statements = [
                """
                CREATE TABLE IF NOT EXISTS \(ct) (change_id INTEGER PRIMARY KEY AUTOINCREMENT, op TEXT NOT NULL, "table" TEXT NOT NULL,
                    key TEXT, before TEXT, after TEXT, changed_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
                    processed INTEGER NOT NULL DEFAULT 0)
                """
            ]
            for table in tables {
                let columns = try Row.fetchAll(db, sql: "SELECT name, pk FROM pragma_table_info(?)", arguments: [table])
                guard !columns.isEmpty else { throw SluiceError(.configuration, "table \(table) does not exist in \(path)", retryable: false) }
                let names: [String] = columns.map { $0["name"] }
                let key: [String] = columns.filter { ($0["pk"] as Int) > 0 }.sorted { ($0["pk"] as Int) < ($1["pk"] as Int) }.map { $0["name"] }
                guard !key.isEmpty else {
                    throw SluiceError(.configuration, "table \(table) has no primary key; change events name rows by it", retryable: false)
                }
                func object(_ row: String, _ cols: [String]) -> String {
                    // JSON cannot hold blobs: they are written as hex.
                    "json_object("
                        + cols.map {
                            "\(literal($0)), CASE WHEN typeof(\(row).\(quote($0))) = 'blob' THEN hex(\(row).\(quote($0))) ELSE \(row).\(quote($0)) END"
                        }
                        .joined(separator: ", ") + ")"
                }
                let t = quote(table), name = literal(table)
                for (event, op, keyRow, before, after) in [
                    ("INSERT", "c", "NEW", "NULL", object("NEW", names)),
                    ("UPDATE", "u", "NEW", object("OLD", names), object("NEW", names)),
                    ("DELETE", "d", "OLD", object("OLD", names), "NULL"),
                ] {
                    let trigger = quote("sluice_capture_\(event.lowercased())_\(table)")
                    statements.append("DROP TRIGGER IF EXISTS \(trigger)")
                    statements.append(
                        """
                        CREATE TRIGGER \(trigger) AFTER \(event) ON \(t) BEGIN
                            INSERT INTO \(ct) (op, "table", key, before, after) VALUES ('\(op)', \(name), \(object(keyRow, key)), \(before), \(after));
                        END
                        """)
                }
            }
            for statement in statements { try db.execute(sql: statement) }
            return statements
        }
    }

    static func quote(_ name: String) -> String { "\"" + name.replacingOccurrences(of: "\"", with: "\"\"") + "\"" }
    static func literal(_ text: String) -> String { "'" + text.replacingOccurrences(of: "'", with: "''") + "'" }
}
