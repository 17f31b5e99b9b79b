/// Column type codes as binlog events carry them (`enum_field_types`).
public enum MySQLColumnType {
    public static let decimal: UInt8 = 0
    public static let tiny: UInt8 = 1
    public static let short: UInt8 = 2
    public static let long: UInt8 = 3
    public static let float: UInt8 = 4
    public static let double: UInt8 = 5
    public static let null: UInt8 = 6
    public static let timestamp: UInt8 = 7
    public static let longlong: UInt8 = 8
    public static let int24: UInt8 = 9
    public static let date: UInt8 = 10
    public static let time: UInt8 = 11
    public static let datetime: UInt8 = 12
    public static let year: UInt8 = 13
    public static let varchar: UInt8 = 15
    public static let bit: UInt8 = 16
    public static let timestamp2: UInt8 = 17
    public static let datetime2: UInt8 = 18
    public static let time2: UInt8 = 19
    public static let json: UInt8 = 245
    public static let newDecimal: UInt8 = 246
    public static let enumeration: UInt8 = 247
    public static let set: UInt8 = 248
    public static let blob: UInt8 = 252
    public static let varString: UInt8 = 253
    public static let string: UInt8 = 254
    public static let geometry: UInt8 = 255

    /// Bytes of table-map metadata a column of `type` has; nil for a type Sluice does not know
    /// (reading on would shift every later column's metadata).
    static func metadataLength(_ type: UInt8) -> Int? {
        switch type {
        case varchar, varString, string, newDecimal, bit, enumeration, set: 2
        case float, double, blob, geometry, json, timestamp2, datetime2, time2: 1
        case decimal, tiny, short, long, null, timestamp, longlong, int24, date, time, datetime, year: 0
        default: nil
        }
    }
}

/// A `TABLE_MAP` event: the table and the column types (with their metadata) of the row events
/// that follow under its table id. With `binlog_row_metadata=FULL` (MySQL 8.0.1+, MariaDB
/// 10.5+) it also names the columns, their signedness, character sets, ENUM/SET values and the
/// primary key (``optional``): rows are then decoded with the columns they were written with,
/// whatever DDL came later.
public struct MySQLTableMap: Equatable, Sendable {
    public var tableID: UInt64
    public var database: String
    public var table: String
    public var columnTypes: [UInt8]
    /// Per column: its metadata as an integer (2-byte metadata as the server orders it, see
    /// ``MySQLColumnValueDecoder``), 0 for types without.
    public var columnMetadata: [UInt16]
    public var nullable: [Bool]
    /// The optional metadata (empty when the server logs none).
    public var optional = MySQLTableMetadata()

    public init(parsing body: [UInt8], postHeaderLength: Int, mariaDB: Bool = false) throws {
        var r = MySQLByteReader(body)
        tableID = try r.integer(postHeaderLength == 6 ? 4 : 6, "table id")
        try r.skip(2, "table map flags")
        let databaseLength = Int(try r.uint8("database name length"))
        database = String(decoding: try r.bytes(databaseLength, "database name"), as: UTF8.self)
        try r.skip(1, "database name terminator")
        let tableLength = Int(try r.uint8("table name length"))
        table = String(decoding: try r.bytes(tableLength, "table name"), as: UTF8.self)
        try r.skip(1, "table name terminator")
        guard let count = try r.lengthEncodedInteger("column count"), count <= 4096 else {
            throw MySQLProtocolError("a table map without a valid column count", at: r.offset)
        }
        columnTypes = try r.bytes(Int(count), "column types")
        guard let metadataLength = try r.lengthEncodedInteger("metadata length"), metadataLength <= UInt64(r.remaining) else {
            throw MySQLProtocolError("a table map whose metadata length is missing or past its end", at: r.offset)
        }
        var m = MySQLByteReader(try r.bytes(Int(metadataLength), "column metadata"))
        columnMetadata = []
        for (c, type) in columnTypes.enumerated() {
            guard let length = MySQLColumnType.metadataLength(type) else {
                throw MySQLProtocolError("column \(c + 1) of \(database).\(table) has type \(type), which Sluice cannot decode yet", at: r.offset)
            }
            switch length {
            case 1: columnMetadata.append(UInt16(try m.uint8("column metadata")))
            case 2:
                let first = UInt16(try m.uint8("column metadata")), second = UInt16(try m.uint8("column metadata"))
                // VARCHAR and BIT store theirs little-endian; the others (real type, length;
                // precision, scale) big-endian, VAR_STRING like STRING.
                columnMetadata.append(type == MySQLColumnType.varchar || type == MySQLColumnType.bit ? first | second << 8 : first << 8 | second)
            default: columnMetadata.append(0)
            }
        }
        guard m.isAtEnd else {
            throw MySQLProtocolError("\(m.remaining) bytes of column metadata left over: the column types and metadata disagree", at: r.offset)
        }
        let nulls = try r.bytes((Int(count) + 7) / 8, "null bitmap")
        nullable = (0..<Int(count)).map { nulls[$0 / 8] & (1 << ($0 % 8)) != 0 }
        optional = try MySQLTableMetadata(parsing: r.rest(), map: self, mariaDB: mariaDB)
    }

    /// The index among the character columns of each column that has a charset (nil for the
    /// others), in the optional metadata's counting.
    public func characterIndexes(mariaDB: Bool) -> [Int?] {
        var next = 0
        return columnTypes.indices.map { c in
            let type = realType(c)
            guard MySQLTableMetadata.isCharacter(type) || (mariaDB && type == MySQLColumnType.geometry) else { return nil }
            defer { next += 1 }
            return next
        }
    }

    /// The type a column really has: STRING columns carry ENUM and SET in their metadata.
    public func realType(_ column: Int) -> UInt8 {
        let type = columnTypes[column]
        guard type == MySQLColumnType.string else { return type }
        let real = UInt8(columnMetadata[column] >> 8)
        return real == MySQLColumnType.enumeration || real == MySQLColumnType.set ? real : type
    }
}
