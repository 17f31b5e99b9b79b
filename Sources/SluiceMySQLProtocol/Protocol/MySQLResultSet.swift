/// A column of a result set (`ColumnDefinition41`).
public struct MySQLColumnDefinition: Equatable, Sendable {
    public var name: String
    public var table: String
    public var collation: UInt16
    public var length: UInt32
    public var type: UInt8
    public var flags: UInt16
    public var decimals: UInt8

    public static let unsignedFlag: UInt16 = 32
    public static let binaryFlag: UInt16 = 128

    public var isUnsigned: Bool { flags & Self.unsignedFlag != 0 }

    public init(parsing payload: [UInt8]) throws {
        var r = MySQLByteReader(payload)
        for what in ["catalog", "schema"] { _ = try r.lengthEncodedBytes(what) }
        table = String(decoding: try r.lengthEncodedBytes("table") ?? [], as: UTF8.self)
        _ = try r.lengthEncodedBytes("original table")
        name = String(decoding: try r.lengthEncodedBytes("column name") ?? [], as: UTF8.self)
        _ = try r.lengthEncodedBytes("original column name")
        _ = try r.lengthEncodedInteger("fixed fields length")
        collation = try r.uint16("character set")
        length = try r.uint32("column length")
        type = try r.uint8("column type")
        flags = try r.uint16("column flags")
        decimals = try r.uint8("decimals")
    }
}

/// The rows of a text-protocol result set: each value as the server renders it (nil for NULL).
public struct MySQLResultSet: Sendable {
    public var columns: [MySQLColumnDefinition] = []
    public var rows: [[[UInt8]?]] = []

    public init(columns: [MySQLColumnDefinition] = [], rows: [[[UInt8]?]] = []) {
        self.columns = columns
        self.rows = rows
    }

    /// The value at `row`, `column` as text (nil for NULL or out of range).
    public func string(_ row: Int, _ column: Int) -> String? {
        guard row < rows.count, column < rows[row].count, let bytes = rows[row][column] else { return nil }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// The value at `row` of the column named `name` as text.
    public func string(_ row: Int, _ name: String) -> String? {
        guard let column = columns.firstIndex(where: { $0.name.lowercased() == name.lowercased() }) else { return nil }
        return string(row, column)
    }
}

/// Reads the packets that answer a `COM_QUERY` (`CLIENT_DEPRECATE_EOF` negotiated or not): an
/// OK, an ERR, or a result set (column count, column definitions, rows, end).
public struct MySQLQueryResponseReader {
    public enum Outcome: Sendable {
        case ok(MySQLOK)
        case rows(MySQLResultSet)
    }

    enum State {
        case start
        case columns(Int)
        case columnsEOF, rows
    }

    let capabilities: MySQLCapabilities
    var state = State.start
    var result = MySQLResultSet()

    public init(capabilities: MySQLCapabilities) { self.capabilities = capabilities }

    /// Takes the next packet; returns the outcome once the response is complete. A server
    /// error is thrown as ``MySQLServerError``.
    public mutating func take(_ payload: [UInt8]) throws -> Outcome? {
        let first = payload.first
        if first == 0xFF { throw MySQLServerError(parsing: payload, capabilities: capabilities) }
        switch state {
        case .start:
            if first == 0x00 { return .ok(try MySQLOK(parsing: payload, capabilities: capabilities)) }
            if first == 0xFB { throw MySQLProtocolError("the server asks for a local file (LOAD DATA LOCAL), which Sluice never sends", at: 0) }
            var r = MySQLByteReader(payload)
            guard let count = try r.lengthEncodedInteger("column count"), (1...4096).contains(count) else {
                throw MySQLProtocolError("a result set without a valid column count", at: 0)
            }
            state = .columns(Int(count))
        case let .columns(left):
            result.columns.append(try MySQLColumnDefinition(parsing: payload))
            // Without CLIENT_DEPRECATE_EOF an EOF packet ends the definitions.
            state = left > 1 ? .columns(left - 1) : capabilities.contains(.deprecateEOF) ? .rows : .columnsEOF
        case .columnsEOF:
            guard first == 0xFE else { throw MySQLProtocolError("no EOF packet after the column definitions", at: 0) }
            state = .rows
        case .rows:
            // The end: an EOF, or an OK with the EOF header (shorter than a row could be).
            if first == 0xFE && payload.count < 0xFF_FFFF { return .rows(result) }
            var r = MySQLByteReader(payload)
            var row: [[UInt8]?] = []
            row.reserveCapacity(result.columns.count)
            for _ in result.columns { row.append(try r.lengthEncodedBytes("row value")) }
            guard r.isAtEnd else { throw MySQLProtocolError("a row with more values than columns", at: r.offset) }
            result.rows.append(row)
        }
        return nil
    }
}
