import GRDB
import GRDBSQLite

/// SQLite's incremental blob I/O, which GRDB does not wrap: a value overwritten where it is
/// stored, with no page freed or allocated.
enum SQLiteBlob {
    /// Writes `bytes` over the whole of the BLOB in `column` of the row `rowID` of `table`, in
    /// place, inside the caller's transaction. The stored value must have `bytes.count` bytes
    /// (a blob cannot change size in place): anything else throws before a byte is written.
    static func overwrite(_ db: Database, table: String, column: String, rowID: Int64, with bytes: UnsafeRawBufferPointer) throws {
        var blob: OpaquePointer?
        defer { sqlite3_blob_close(blob) }
        func check(_ code: CInt, _ what: String) throws {
            guard code == SQLITE_OK else {
                let message = db.sqliteConnection.map { String(cString: sqlite3_errmsg($0)) } ?? "no connection"
                throw DatabaseError(resultCode: ResultCode(rawValue: code), message: "\(what) \(table).\(column) of row \(rowID): \(message)")
            }
        }
        try check(sqlite3_blob_open(db.sqliteConnection, "main", table, column, rowID, 1, &blob), "opening the blob")
        guard Int(sqlite3_blob_bytes(blob)) == bytes.count else {
            throw DatabaseError(
                resultCode: .SQLITE_ERROR,
                message: "\(table).\(column) of row \(rowID) holds \(sqlite3_blob_bytes(blob)) bytes, not the \(bytes.count) to write in place")
        }
        guard let base = bytes.baseAddress, !bytes.isEmpty else { return }
        try check(sqlite3_blob_write(blob, base, CInt(bytes.count), 0), "writing the blob")
    }
}
