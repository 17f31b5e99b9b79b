/// The optional metadata at the end of a `TABLE_MAP` event (`binlog_row_metadata=MINIMAL` or
/// `FULL`): type-length-value fields, each a type byte, a length-encoded length and the value.
/// Fields Sluice does not know are skipped by their length.
public struct MySQLTableMetadata: Equatable, Sendable {
    /// Per numeric column in column order (TINYINT … BIGINT, FLOAT, DOUBLE, DECIMAL): unsigned.
    public var unsignedNumerics: [Bool] = []
    /// Per column: its name (FULL only).
    public var columnNames: [String] = []
    /// Per character column (CHAR, VARCHAR, TEXT/BLOB, not ENUM/SET; on MariaDB also GEOMETRY):
    /// its collation id (63 is binary).
    public var characterCollations: [Int] = []
    /// Per ENUM and per SET column: its collation id.
    public var enumSetCollations: [Int] = []
    /// Per ENUM column: its values.
    public var enumValues: [[[UInt8]]] = []
    /// Per SET column: its values.
    public var setValues: [[[UInt8]]] = []
    /// Per GEOMETRY column: its geometry type.
    public var geometryTypes: [Int] = []
    /// The primary key's columns, in key order.
    public var primaryKey: [Int] = []

    public init() {}

    enum Field: UInt8 {
        case signedness = 1
        case defaultCharset, columnCharset, columnName, setValues, enumValues, geometryType
        case simplePrimaryKey, primaryKeyWithPrefix, enumSetDefaultCharset, enumSetColumnCharset, columnVisibility
    }

    /// - Parameter mariaDB: the server is MariaDB, which counts GEOMETRY among the character
    ///   columns of the charset fields (MySQL does not).
    init(parsing bytes: [UInt8], map: MySQLTableMap, mariaDB: Bool) throws {
        var r = MySQLByteReader(bytes)
        var characterColumns = 0, enumSetColumns = 0
        for c in map.columnTypes.indices {
            let type = map.realType(c)
            if Self.isCharacter(type) || (mariaDB && type == MySQLColumnType.geometry) { characterColumns += 1 }
            if type == MySQLColumnType.enumeration || type == MySQLColumnType.set { enumSetColumns += 1 }
        }
        while !r.isAtEnd {
            let type = try r.uint8("optional metadata type")
            guard let length = try r.lengthEncodedInteger("optional metadata length"), length <= UInt64(r.remaining) else {
                throw MySQLProtocolError("an optional metadata field longer than the table map", at: r.offset)
            }
            var v = MySQLByteReader(try r.bytes(Int(length), "optional metadata"))
            switch Field(rawValue: type) {
            case .signedness:
                let numerics = map.columnTypes.indices.filter { Self.isNumeric(map.columnTypes[$0]) }.count
                let bits = v.rest()
                guard bits.count * 8 >= numerics else { throw MySQLProtocolError("a signedness bitmap shorter than the numeric columns", at: r.offset) }
                unsignedNumerics = (0..<numerics).map { bits[$0 / 8] & (0x80 >> ($0 % 8)) != 0 }
            case .defaultCharset, .enumSetDefaultCharset:
                let count = type == Field.defaultCharset.rawValue ? characterColumns : enumSetColumns
                var collations = [Int](repeating: try Self.packed(&v), count: count)
                while !v.isAtEnd {
                    let column = try Self.packed(&v), collation = try Self.packed(&v)
                    guard column < count else { throw MySQLProtocolError("a charset for column \(column) of \(count)", at: r.offset) }
                    collations[column] = collation
                }
                if type == Field.defaultCharset.rawValue { characterCollations = collations } else { enumSetCollations = collations }
            case .columnCharset, .enumSetColumnCharset:
                var collations: [Int] = []
                while !v.isAtEnd { collations.append(try Self.packed(&v)) }
                if type == Field.columnCharset.rawValue { characterCollations = collations } else { enumSetCollations = collations }
            case .columnName:
                while !v.isAtEnd { columnNames.append(String(decoding: try Self.string(&v), as: UTF8.self)) }
                guard columnNames.count == map.columnTypes.count else {
                    throw MySQLProtocolError("\(columnNames.count) column names for \(map.columnTypes.count) columns", at: r.offset)
                }
            case .setValues, .enumValues:
                var all: [[[UInt8]]] = []
                while !v.isAtEnd {
                    let count = try Self.packed(&v)
                    guard count <= v.remaining else { throw MySQLProtocolError("an ENUM/SET with more values than bytes", at: r.offset) }
                    all.append(try (0..<count).map { _ in try Self.string(&v) })
                }
                if type == Field.setValues.rawValue { setValues = all } else { enumValues = all }
            case .geometryType:
                while !v.isAtEnd { geometryTypes.append(try Self.packed(&v)) }
            case .simplePrimaryKey:
                while !v.isAtEnd { primaryKey.append(try Self.packed(&v)) }
            case .primaryKeyWithPrefix:
                while !v.isAtEnd {
                    primaryKey.append(try Self.packed(&v))
                    _ = try Self.packed(&v)
                }
            case .columnVisibility, nil:
                break
            }
        }
        guard primaryKey.allSatisfy({ $0 < map.columnTypes.count }) else {
            throw MySQLProtocolError("a primary key column past the table's columns", at: r.offset)
        }
    }

    /// A packed integer of the metadata (a count, an index, a collation id: never near 2^31).
    static func packed(_ r: inout MySQLByteReader) throws -> Int {
        guard let value = try r.lengthEncodedInteger("optional metadata value") else {
            throw MySQLProtocolError("a NULL in optional metadata", at: r.offset)
        }
        guard value <= UInt64(Int32.max) else { throw MySQLProtocolError("an optional metadata value of \(value)", at: r.offset) }
        return Int(value)
    }

    static func string(_ r: inout MySQLByteReader) throws -> [UInt8] {
        let length = try packed(&r)
        guard length <= r.remaining else { throw MySQLProtocolError("a name longer than its field", at: r.offset) }
        return try r.bytes(length, "optional metadata string")
    }

    /// Numeric columns, as the signedness bitmap counts them.
    public static func isNumeric(_ type: UInt8) -> Bool {
        switch type {
        case MySQLColumnType.tiny, MySQLColumnType.short, MySQLColumnType.int24, MySQLColumnType.long, MySQLColumnType.longlong,
            MySQLColumnType.float, MySQLColumnType.double, MySQLColumnType.newDecimal:
            true
        default: false
        }
    }

    /// Character columns, as the charset fields count them (by real type).
    public static func isCharacter(_ type: UInt8) -> Bool {
        switch type {
        case MySQLColumnType.string, MySQLColumnType.varString, MySQLColumnType.varchar, MySQLColumnType.blob: true
        default: false
        }
    }
}
