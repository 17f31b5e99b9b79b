import CZlib

/// The 19-byte header every binlog event (format v4) starts with.
public struct MySQLBinlogEventHeader: Equatable, Sendable {
    public static let size = 19
    public var timestamp: UInt32
    public var type: UInt8
    public var serverID: UInt32
    /// The whole event's size: header, body and checksum.
    public var eventSize: UInt32
    /// The position of the next event in the binlog file.
    public var nextPosition: UInt32
    public var flags: UInt16

    public init(parsing bytes: [UInt8]) throws {
        var r = MySQLByteReader(bytes)
        timestamp = try r.uint32("event timestamp")
        type = try r.uint8("event type")
        serverID = try r.uint32("server id")
        eventSize = try r.uint32("event size")
        nextPosition = try r.uint32("next position")
        flags = try r.uint16("event flags")
    }
}

/// Event type codes (MySQL's `Log_event_type`, MariaDB's additions from 160).
public enum MySQLBinlogEventType {
    public static let query: UInt8 = 2
    public static let stop: UInt8 = 3
    public static let rotate: UInt8 = 4
    public static let formatDescription: UInt8 = 15
    public static let xid: UInt8 = 16
    public static let tableMap: UInt8 = 19
    public static let writeRowsV1: UInt8 = 23
    public static let updateRowsV1: UInt8 = 24
    public static let deleteRowsV1: UInt8 = 25
    public static let heartbeat: UInt8 = 27
    public static let writeRowsV2: UInt8 = 30
    public static let updateRowsV2: UInt8 = 31
    public static let deleteRowsV2: UInt8 = 32
    public static let mysqlGTID: UInt8 = 33
    public static let mysqlAnonymousGTID: UInt8 = 34
    public static let mysqlPreviousGTIDs: UInt8 = 35
    public static let partialUpdateRows: UInt8 = 39
    public static let transactionPayload: UInt8 = 40
    public static let heartbeatV2: UInt8 = 41
    public static let mysqlTaggedGTID: UInt8 = 42
    public static let mariaDBAnnotateRows: UInt8 = 160
    public static let mariaDBBinlogCheckpoint: UInt8 = 161
    public static let mariaDBGTID: UInt8 = 162
    public static let mariaDBGTIDList: UInt8 = 163
    /// MariaDB with `log_bin_compress`: a query event whose statement is compressed.
    public static let mariaDBQueryCompressed: UInt8 = 165
    /// MariaDB with `log_bin_compress`: `WRITE/UPDATE/DELETE_ROWS` v1 whose rows are compressed
    /// (166–168), and the same for v2 (169–171).
    public static let mariaDBRowsCompressed: ClosedRange<UInt8> = 166...171
}

/// How the events of one binlog are laid out, from its format description event: the length of
/// each type's fixed post-header and whether events end with a CRC32 checksum.
public struct MySQLBinlogFormat: Equatable, Sendable {
    public var binlogVersion: UInt16
    public var serverVersion: String
    public var postHeaderLengths: [UInt8]
    public var checksummed: Bool

    /// Before any format description is read (the event that carries it is parsed with this).
    public static let initial = MySQLBinlogFormat(binlogVersion: 4, serverVersion: "", postHeaderLengths: [], checksummed: false)

    public init(binlogVersion: UInt16, serverVersion: String, postHeaderLengths: [UInt8], checksummed: Bool) {
        self.binlogVersion = binlogVersion
        self.serverVersion = serverVersion
        self.postHeaderLengths = postHeaderLengths
        self.checksummed = checksummed
    }

    /// The post-header length of `type` (0 when the format does not list it).
    public func postHeaderLength(_ type: UInt8) -> Int {
        let i = Int(type) - 1
        return i >= 0 && i < postHeaderLengths.count ? Int(postHeaderLengths[i]) : 0
    }
}

/// One binlog event, decoded as far as change data capture needs.
public enum MySQLBinlogEvent: Equatable, Sendable {
    case formatDescription(MySQLBinlogFormat)
    case rotate(nextFile: String, position: UInt64)
    /// A statement: DDL, or `BEGIN` of a transaction that row events follow.
    case query(database: String, sql: String, errorCode: UInt16)
    /// A transaction's commit.
    case xid(UInt64)
    case tableMap(MySQLTableMap)
    case rows(MySQLRowsEvent)
    /// MariaDB: a transaction's GTID (`domain-server-sequence`); `standalone` for DDL without XID.
    case mariaDBGTID(domain: UInt32, sequence: UInt64, standalone: Bool)
    /// MySQL: a transaction's GTID (`uuid:number`).
    case mysqlGTID(uuid: [UInt8], number: UInt64)
    /// MySQL: every transaction in the binlog files before this one (at each file's start).
    case mysqlPreviousGTIDs(MySQLGTIDSet)
    /// MariaDB: the SQL of the statement whose row events follow (`ANNOTATE_ROWS`), as bytes.
    case mariaDBAnnotateRows(sql: [UInt8])
    /// The server had nothing to send: it has sent `file` (when named) up to the header's next position.
    case heartbeat(file: String?)
    /// MySQL 8 (`binlog_transaction_compression=ON`): a transaction's events compressed as one,
    /// read with a ``MySQLTransactionPayloadReader`` and ``MySQLBinlogDecoder/decodeInner(_:)``.
    case transactionPayload(MySQLTransactionPayload)
    /// A type Sluice does not need (annotations, checkpoints, GTID lists…).
    case other(type: UInt8)
}

/// Splits binlog events and decodes them, keeping the format and the table maps the row events
/// refer to.
public struct MySQLBinlogDecoder {
    public private(set) var format = MySQLBinlogFormat.initial
    /// Table maps by table id, as the `TABLE_MAP` events of the current statement announced them
    /// (each statement's row events follow their own table maps).
    public private(set) var tables: [UInt64: MySQLTableMap] = [:]

    /// - Parameter checksummed: whether events carry a CRC32 before the format description says
    ///   so: true for a dump from a server with `binlog_checksum=CRC32` once the client has set
    ///   `@master_binlog_checksum`, whose first event (a rotate) comes before the description.
    public init(checksummed: Bool = false) {
        format.checksummed = checksummed
    }

    /// Decodes one whole event (header, body and checksum, as a binlog file or a dump packet
    /// after its leading 0x00 holds it).
    public mutating func decode(_ event: [UInt8]) throws -> (header: MySQLBinlogEventHeader, event: MySQLBinlogEvent) {
        let header = try MySQLBinlogEventHeader(parsing: event)
        guard Int(header.eventSize) == event.count else {
            throw MySQLProtocolError("an event of \(event.count) bytes says it has \(header.eventSize)", at: 9)
        }
        var end = event.count
        // The format description says whether events carry a checksum, and has one itself when they do.
        let checksummed = header.type == MySQLBinlogEventType.formatDescription ? Self.descriptionHasChecksum(event) : format.checksummed
        if checksummed {
            end -= 4
            guard end >= MySQLBinlogEventHeader.size else { throw MySQLProtocolError("an event too short for its checksum", at: 0) }
            let stored = UInt32(event[end]) | UInt32(event[end + 1]) << 8 | UInt32(event[end + 2]) << 16 | UInt32(event[end + 3]) << 24
            var summed = event
            // The server sets "binlog in use" (flag 0x1) on an open file's format description
            // after computing its checksum, and clears it when the file is closed.
            if header.type == MySQLBinlogEventType.formatDescription { summed[17] &= ~0x01 }
            let computed = summed.withUnsafeBufferPointer { UInt32(crc32(0, $0.baseAddress, uInt(end))) }
            guard stored == computed else {
                let position = Int64(header.nextPosition) - Int64(header.eventSize)
                throw MySQLProtocolError("event checksum mismatch (stored \(stored), computed \(computed)) at binlog position \(position)", at: end)
            }
        }
        let body = Array(event[MySQLBinlogEventHeader.size..<end])
        let decoded = try decodeBody(header.type, body, checksummed: checksummed)
        return (header, decoded)
    }

    /// Whether a format description event ends with a checksum: its checksum algorithm byte,
    /// right before the 4-byte checksum field (present whatever the algorithm), is 1 (CRC32).
    static func descriptionHasChecksum(_ event: [UInt8]) -> Bool {
        // Header 19 + binlog version 2 + server version 50 + timestamp 4 + header length 1 = 76,
        // then the post-header lengths, the algorithm byte and the checksum.
        guard event.count >= 76 + 5 else { return false }
        return event[event.count - 5] == 1
    }

    mutating func decodeBody(_ type: UInt8, _ body: [UInt8], checksummed: Bool) throws -> MySQLBinlogEvent {
        var r = MySQLByteReader(body)
        switch type {
        case MySQLBinlogEventType.formatDescription:
            let version = try r.uint16("binlog version")
            let serverVersion = String(decoding: try r.bytes(50, "server version").prefix { $0 != 0 }, as: UTF8.self)
            try r.skip(4, "create timestamp")
            let headerLength = try r.uint8("header length")
            guard headerLength == 19 else { throw MySQLProtocolError("an event header of \(headerLength) bytes; only 19 is supported", at: r.offset - 1) }
            var lengths = r.rest()
            // The checksum algorithm byte and a 4-byte checksum field follow the lengths (servers
            // from MySQL 5.6.1 and MariaDB 5.3 on, the only ones supported); a CRC32 was cut already.
            lengths.removeLast(min(lengths.count, checksummed ? 1 : 5))
            tables = [:]
            format = MySQLBinlogFormat(binlogVersion: version, serverVersion: serverVersion, postHeaderLengths: lengths, checksummed: checksummed)
            return .formatDescription(format)
        case MySQLBinlogEventType.rotate:
            tables = [:]
            let position = try r.integer(8, "rotate position")
            return .rotate(nextFile: String(decoding: r.rest(), as: UTF8.self), position: position)
        case MySQLBinlogEventType.query, MySQLBinlogEventType.mariaDBQueryCompressed:
            try r.skip(8, "thread id and execution time")
            let databaseLength = Int(try r.uint8("database name length"))
            let errorCode = try r.uint16("error code")
            let statusLength = Int(try r.uint16("status variables length"))
            try r.skip(format.postHeaderLength(type) - 13, "query post-header")
            try r.skip(statusLength, "status variables")
            let database = String(decoding: try r.bytes(databaseLength, "database name"), as: UTF8.self)
            try r.skip(1, "database name terminator")
            var sql = r.rest()
            if type == MySQLBinlogEventType.mariaDBQueryCompressed { sql = try Self.uncompressed(sql, at: r.offset) }
            return .query(database: database, sql: String(decoding: sql, as: UTF8.self), errorCode: errorCode)
        case MySQLBinlogEventType.xid:
            return .xid(try r.integer(8, "xid"))
        case MySQLBinlogEventType.tableMap:
            let map = try MySQLTableMap(parsing: body, postHeaderLength: format.postHeaderLength(type), mariaDB: format.serverVersion.contains("MariaDB"))
            tables[map.tableID] = map
            return .tableMap(map)
        case MySQLBinlogEventType.writeRowsV1, MySQLBinlogEventType.updateRowsV1, MySQLBinlogEventType.deleteRowsV1,
            MySQLBinlogEventType.writeRowsV2, MySQLBinlogEventType.updateRowsV2, MySQLBinlogEventType.deleteRowsV2:
            let rows = try MySQLRowsEvent(parsing: body, type: type, postHeaderLength: format.postHeaderLength(type), tables: tables)
            if rows.endsStatement { tables = [:] }
            return .rows(rows)
        case MySQLBinlogEventType.mariaDBRowsCompressed:
            // The post-header, column count and column bitmaps are plain; the rows are compressed.
            // 166–168 are v1 (an 8-byte post-header), 169–171 v2 (extra data follows), decided by
            // the type as for plain row events.
            let postHeaderLength = format.postHeaderLength(type)
            try r.skip(postHeaderLength == 6 ? 6 : 8, "rows post-header")
            if type >= 169 {
                let extra = Int(try r.uint16("extra data length"))
                try r.skip(extra - 2, "extra data")
            }
            guard let count = try r.lengthEncodedInteger("column count"), count <= 4096 else {
                throw MySQLProtocolError("a compressed row event with a column count beyond 4096", at: r.offset)
            }
            let plain = type <= 168 ? type - 166 + MySQLBinlogEventType.writeRowsV1 : type - 169 + MySQLBinlogEventType.writeRowsV2
            let bitmaps = plain == MySQLBinlogEventType.updateRowsV1 || plain == MySQLBinlogEventType.updateRowsV2 ? 2 : 1
            try r.skip(bitmaps * ((Int(count) + 7) / 8), "columns bitmap")
            let head = Array(body[..<r.offset])
            let rowsBytes = try Self.uncompressed(r.rest(), at: r.offset)
            let rows = try MySQLRowsEvent(parsing: head + rowsBytes, type: plain, postHeaderLength: postHeaderLength, tables: tables)
            if rows.endsStatement { tables = [:] }
            return .rows(rows)
        case MySQLBinlogEventType.mariaDBGTID:
            let sequence = try r.integer(8, "GTID sequence number")
            let domain = try r.uint32("GTID domain")
            let flags = try r.uint8("GTID flags")
            return .mariaDBGTID(domain: domain, sequence: sequence, standalone: flags & 1 != 0)
        case MySQLBinlogEventType.mysqlGTID:
            try r.skip(1, "GTID flags")
            let uuid = try r.bytes(16, "GTID source id")
            let number = try r.integer(8, "GTID number")
            guard number >= 1, number < UInt64(Int64.max) else { throw MySQLProtocolError("GTID number \(number) (1 to 2^63 - 2 are possible)", at: 17) }
            return .mysqlGTID(uuid: uuid, number: number)
        case MySQLBinlogEventType.mysqlPreviousGTIDs:
            // A server that has ever executed a tagged GTID (8.3+) writes the set in its tagged
            // form (format 1 in the top byte): not read, and nothing depends on it.
            if body.count >= 8 && body[7] != 0 { return .other(type: type) }
            return .mysqlPreviousGTIDs(try MySQLGTIDSet(decoding: body))
        case MySQLBinlogEventType.mariaDBAnnotateRows:
            return .mariaDBAnnotateRows(sql: body)
        case MySQLBinlogEventType.heartbeat:
            // The body names the binlog file the server has sent everything of up to the
            // header's next position.
            return .heartbeat(file: body.isEmpty ? nil : String(decoding: body.prefix { $0 != 0 }, as: UTF8.self))
        case MySQLBinlogEventType.heartbeatV2:
            return .heartbeat(file: nil)
        case MySQLBinlogEventType.transactionPayload:
            return .transactionPayload(try MySQLTransactionPayload(body: body))
        case MySQLBinlogEventType.partialUpdateRows, MySQLBinlogEventType.mysqlTaggedGTID:
            // Changes inside these would be lost if they were skipped.
            throw MySQLProtocolError(
                type == MySQLBinlogEventType.partialUpdateRows
                    ? "binlog event type 39 (MySQL's partial JSON updates) is not supported yet; SET GLOBAL binlog_row_value_options = '' (no PARTIAL_JSON)"
                    : "binlog event type \(type) (MySQL's tagged GTIDs, 8.3+) is not supported yet; transactions with tagged GTIDs cannot be read",
                at: 4)
        default:
            return .other(type: type)
        }
    }

    /// The largest decompressed body taken (the server's `max_allowed_packet` cannot exceed 1 GiB).
    static let largestUncompressed = 1 << 30

    /// A MariaDB compressed block (`log_bin_compress`): a header byte (0x80, the algorithm in bits
    /// 4–6, 0 = zlib; the length's size in bits 0–2), the uncompressed length big-endian, then a
    /// zlib stream.
    public static func uncompressed(_ block: [UInt8], at offset: Int) throws -> [UInt8] {
        guard let first = block.first, first & 0x80 != 0 else {
            throw MySQLProtocolError("a compressed block without its header byte", at: offset)
        }
        guard first & 0x70 == 0 else {
            throw MySQLProtocolError("a compressed block of algorithm \((first & 0x70) >> 4); only zlib (0) is known", at: offset)
        }
        let lengthSize = Int(first & 0x07)
        guard (1...4).contains(lengthSize), block.count > 1 + lengthSize else {
            throw MySQLProtocolError("a compressed block with a length of \(lengthSize) bytes", at: offset)
        }
        let length = block[1...lengthSize].reduce(0) { $0 << 8 | Int($1) }
        // zlib cannot expand more than 1032:1: a larger claim is damage, not a reason to allocate.
        guard length > 0, length <= largestUncompressed, length <= (block.count - 1 - lengthSize) * 1032 else {
            throw MySQLProtocolError("a compressed block that says it holds \(length) bytes", at: offset + 1)
        }
        var out = [UInt8](repeating: 0, count: length)
        var produced = uLongf(length)
        let input = block[(1 + lengthSize)...]
        let status = out.withUnsafeMutableBufferPointer { dst in
            input.withUnsafeBufferPointer { src in uncompress(dst.baseAddress, &produced, src.baseAddress, uLong(src.count)) }
        }
        guard status == Z_OK, Int(produced) == length else {
            throw MySQLProtocolError("a compressed block that does not decompress to its \(length) bytes (zlib status \(status))", at: offset)
        }
        return out
    }
}
