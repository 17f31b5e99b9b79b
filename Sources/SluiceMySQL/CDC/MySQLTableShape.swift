import Foundation
import SluiceCore

/// A captured table as Sluice renders its rows: each column's name and how its values become
/// JSON, and the primary key. Built from a binlog table map (``init(map:collations:mariaDB:)``,
/// the columns as the row was written) or from `information_schema` for snapshot reads
/// (``init(database:table:columns:key:)``); both render a value the same way.
struct MySQLTableShape: Sendable, Equatable {
    var database: String
    var table: String
    var columns: [Column]
    /// Primary key columns, in key order (empty: the table has none).
    var key: [Int]

    var name: String { database + "." + table }

    /// `{"column":"postgres type",…}` for `source.column_types`, built once per shape (it goes
    /// with every change).
    private(set) var columnTypes: [UInt8] = []

    static func columnTypes(_ columns: [Column]) -> [UInt8] {
        var out: [UInt8] = [UInt8(ascii: "{")]
        for (i, c) in columns.enumerated() {
            if i > 0 { out.append(UInt8(ascii: ",")) }
            MySQLJSON.appendString(c.name.utf8, to: &out)
            out.append(UInt8(ascii: ":"))
            MySQLJSON.appendString(c.postgresType.utf8, to: &out)
        }
        out.append(UInt8(ascii: "}"))
        return out
    }

    struct Column: Sendable, Equatable {
        var name: String
        var kind: Kind
        /// The PostgreSQL type that holds its values exactly (`source.column_types`, for `mode: apply`).
        var postgresType: String
        /// `"name":`, as every row image starts this column's value.
        let jsonKey: [UInt8]

        init(name: String, kind: Kind, postgresType: String) {
            self.name = name
            self.kind = kind
            self.postgresType = postgresType
            var key: [UInt8] = []
            MySQLJSON.appendString(name.utf8, to: &key)
            key.append(UInt8(ascii: ":"))
            jsonKey = key
        }
    }

    /// How a column's values are rendered.
    enum Kind: Sendable, Equatable {
        case signed, unsigned, float, double, decimal
        /// Text in a character set, rendered as a JSON string.
        case text(Charset)
        /// Bytes, rendered as base64; BINARY(n) values are padded with zero bytes to `padTo`,
        /// as the server pads them (the binlog leaves the padding out).
        case binary(padTo: Int?)
        case date
        case datetime(fsp: Int)
        case timestamp(fsp: Int)
        case time(fsp: Int)
        case year
        case enumeration([[UInt8]], Charset)
        case set([[UInt8]], Charset)
        case bit
        /// MySQL 8's JSON type (binary in the binlog, text in a query).
        case json
        /// SRID and WKB, rendered as `{"srid":…,"wkb":"hex"}`.
        case geometry
    }

    /// A character set Sluice converts to UTF-8.
    enum Charset: Sendable, Equatable {
        case utf8
        /// MySQL's `latin1`, which is Windows-1252.
        case latin1
        case foundation(UInt)
        case binary

        /// The charset of a MySQL charset name; nil for one Sluice cannot convert.
        init?(mysqlName: String) {
            switch mysqlName.lowercased() {
            case "utf8mb4", "utf8mb3", "utf8", "ascii": self = .utf8
            case "latin1": self = .latin1
            case "binary": self = .binary
            case "ucs2", "utf16": self = .foundation(String.Encoding.utf16BigEndian.rawValue)
            case "utf16le": self = .foundation(String.Encoding.utf16LittleEndian.rawValue)
            case "utf32": self = .foundation(String.Encoding.utf32BigEndian.rawValue)
            case "cp1250": self = .foundation(String.Encoding.windowsCP1250.rawValue)
            case "cp1251": self = .foundation(String.Encoding.windowsCP1251.rawValue)
            case "latin2": self = .foundation(String.Encoding.isoLatin2.rawValue)
            // sjis/cp932 and ujis/eucjpms are not converted: each pair shares one Foundation
            // encoding, but the server maps some bytes of each differently.
            default: return nil
            }
        }
    }

    /// The shape of the rows a table map announces. Needs `binlog_row_metadata=FULL` (column
    /// names); `collations` maps collation ids to charset names (`information_schema.COLLATIONS`).
    init(map: MySQLTableMap, collations: [Int: String], mariaDB: Bool) throws {
        database = map.database
        table = map.table
        let m = map.optional
        guard m.columnNames.count == map.columnTypes.count else {
            throw SluiceError(
                .configuration,
                "the binlog does not name the columns of \(map.database).\(map.table): set binlog_row_metadata = FULL on the server (MySQL 8.0.1+, MariaDB 10.5+); `sluice cdc setup` prints the statement",
                retryable: false)
        }
        key = m.primaryKey
        let characterIndexes = map.characterIndexes(mariaDB: mariaDB)
        var numeric = 0, enumIndex = 0, setIndex = 0, enumSetIndex = 0
        func charset(_ collation: Int?, column: Int) throws -> Charset {
            guard let collation else { return .utf8 }
            let name = collation == 63 ? "binary" : collations[collation] ?? "?"
            guard let charset = Charset(mysqlName: name) else {
                throw SluiceError(
                    .unsupported,
                    "column \(m.columnNames[column]) of \(map.database).\(map.table) is in character set \(name) (collation \(collation)), which Sluice cannot convert to UTF-8 yet",
                    retryable: false)
            }
            return charset
        }
        columns = []
        for c in map.columnTypes.indices {
            let type = map.realType(c), metadata = map.columnMetadata[c]
            var unsigned = false
            if MySQLTableMetadata.isNumeric(map.columnTypes[c]) {
                unsigned = numeric < m.unsignedNumerics.count && m.unsignedNumerics[numeric]
                numeric += 1
            }
            let kind: Kind, postgres: String
            switch type {
            case MySQLColumnType.tiny: (kind, postgres) = (unsigned ? .unsigned : .signed, "smallint")
            case MySQLColumnType.short: (kind, postgres) = (unsigned ? .unsigned : .signed, unsigned ? "integer" : "smallint")
            case MySQLColumnType.int24: (kind, postgres) = (unsigned ? .unsigned : .signed, "integer")
            case MySQLColumnType.long: (kind, postgres) = (unsigned ? .unsigned : .signed, unsigned ? "bigint" : "integer")
            case MySQLColumnType.longlong: (kind, postgres) = (unsigned ? .unsigned : .signed, unsigned ? "numeric(20,0)" : "bigint")
            case MySQLColumnType.float: (kind, postgres) = (.float, "real")
            case MySQLColumnType.double: (kind, postgres) = (.double, "double precision")
            case MySQLColumnType.newDecimal: (kind, postgres) = (.decimal, "numeric(\(metadata >> 8),\(metadata & 0xFF))")
            case MySQLColumnType.year: (kind, postgres) = (.year, "smallint")
            case MySQLColumnType.date: (kind, postgres) = (.date, "date")
            case MySQLColumnType.datetime2: (kind, postgres) = (.datetime(fsp: Int(metadata)), "timestamp(\(metadata)) without time zone")
            case MySQLColumnType.timestamp2: (kind, postgres) = (.timestamp(fsp: Int(metadata)), "timestamp(\(metadata)) with time zone")
            case MySQLColumnType.time2: (kind, postgres) = (.time(fsp: Int(metadata)), "interval")
            case MySQLColumnType.bit: (kind, postgres) = (.bit, "numeric(20,0)")
            case MySQLColumnType.json: (kind, postgres) = (.json, "jsonb")
            case MySQLColumnType.geometry: (kind, postgres) = (.geometry, "jsonb")
            case MySQLColumnType.enumeration, MySQLColumnType.set:
                let collation = enumSetIndex < m.enumSetCollations.count ? m.enumSetCollations[enumSetIndex] : nil
                enumSetIndex += 1
                let cs = try charset(collation, column: c)
                if type == MySQLColumnType.enumeration {
                    let values = enumIndex < m.enumValues.count ? m.enumValues[enumIndex] : []
                    enumIndex += 1
                    kind = .enumeration(values, cs)
                } else {
                    let values = setIndex < m.setValues.count ? m.setValues[setIndex] : []
                    setIndex += 1
                    kind = .set(values, cs)
                }
                postgres = "text"
            case MySQLColumnType.varchar, MySQLColumnType.varString, MySQLColumnType.string, MySQLColumnType.blob:
                let collation = characterIndexes[c].flatMap { $0 < m.characterCollations.count ? m.characterCollations[$0] : nil }
                let cs = try charset(collation, column: c)
                if cs == .binary {
                    // BINARY(n): the length is the second metadata byte (with MySQL's high bits trick).
                    var pad: Int? = nil
                    if type == MySQLColumnType.string {
                        let real = UInt8(metadata >> 8)
                        pad = Int(metadata & 0xFF) | (real & 0x30 != 0x30 ? Int((real & 0x30) ^ 0x30) << 4 : 0)
                    }
                    (kind, postgres) = (.binary(padTo: pad), "text")
                } else {
                    (kind, postgres) = (.text(cs), "text")
                }
            default:
                throw SluiceError(
                    .unsupported, "column \(m.columnNames[c]) of \(map.database).\(map.table) has binlog type \(type), which Sluice cannot render yet",
                    retryable: false)
            }
            columns.append(Column(name: m.columnNames[c], kind: kind, postgresType: postgres))
        }
        columnTypes = Self.columnTypes(columns)
    }

    init(database: String, table: String, columns: [Column], key: [Int]) {
        self.database = database
        self.table = table
        self.columns = columns
        self.key = key
        columnTypes = Self.columnTypes(columns)
    }

}

extension MySQLTableShape {
    /// The table's columns as the schema registry holds them (every column nullable), from the
    /// binlog's table maps only: `information_schema` describes some tables otherwise (generated
    /// columns), which would look like drift.
    var registrySchema: Schema {
        Schema(columns.map { Field($0.name, Self.dataType($0), nullable: true) })
    }

    static func dataType(_ column: Column) -> DataType {
        switch column.kind {
        case .signed, .year: return .int64
        case .unsigned, .bit, .decimal:
            // BIGINT UNSIGNED and BIT are numeric(20,0); DECIMAL(p,s) numeric(p,s); smaller unsigned integers fit int64.
            let t = column.postgresType
            guard t.hasPrefix("numeric("), t.hasSuffix(")") else { return .int64 }
            let ps = t.dropFirst(8).dropLast().split(separator: ",").compactMap { Int($0) }
            // The registry's decimals hold up to 38 digits; a wider one (DECIMAL(65,30)) is a string.
            guard ps.count == 2, (1...38).contains(ps[0]), (0...ps[0]).contains(ps[1]) else { return .string }
            return .decimal(precision: ps[0], scale: ps[1])
        case .float, .double: return .float64
        case .text, .enumeration, .set, .time: return .string
        case .binary: return .binary
        case .date: return .date
        case .datetime, .timestamp: return .timestamp
        case .json, .geometry: return .json
        }
    }
}
