/// A `WRITE_ROWS`, `UPDATE_ROWS` or `DELETE_ROWS` event (v1 or v2): row images of one table.
public struct MySQLRowsEvent: Equatable, Sendable {
    public enum Kind: Sendable, Equatable { case insert, update, delete }

    public var kind: Kind
    public var tableID: UInt64
    public var database: String
    public var table: String
    /// The last event of its statement.
    public var endsStatement: Bool
    /// Inserts and deletes: one image per row. Updates: `before` and `after` per row. With
    /// `binlog_row_image=MINIMAL` a column not in an image is absent (not NULL).
    public var rows: [(before: [MySQLValue?]?, after: [MySQLValue?]?)]

    public static func == (a: Self, b: Self) -> Bool {
        a.kind == b.kind && a.tableID == b.tableID && a.database == b.database && a.table == b.table
            && a.endsStatement == b.endsStatement && a.rows.count == b.rows.count
            && zip(a.rows, b.rows).allSatisfy { $0.before == $1.before && $0.after == $1.after }
    }

    public init(parsing body: [UInt8], type: UInt8, postHeaderLength: Int, tables: [UInt64: MySQLTableMap]) throws {
        var r = MySQLByteReader(body)
        tableID = try r.integer(postHeaderLength == 6 ? 4 : 6, "table id")
        let flags = try r.uint16("rows flags")
        endsStatement = flags & 1 != 0
        switch type {
        case MySQLBinlogEventType.writeRowsV1, MySQLBinlogEventType.writeRowsV2: kind = .insert
        case MySQLBinlogEventType.updateRowsV1, MySQLBinlogEventType.updateRowsV2: kind = .update
        default: kind = .delete
        }
        if type >= MySQLBinlogEventType.writeRowsV2 {
            let extra = Int(try r.uint16("extra data length"))
            try r.skip(extra - 2, "extra data")
        }
        guard let map = tables[tableID] else {
            throw MySQLProtocolError("a row event for table id \(tableID), which no table map announced", at: 0)
        }
        database = map.database
        table = map.table
        guard let count = try r.lengthEncodedInteger("column count"), count == UInt64(map.columnTypes.count), count > 0 else {
            throw MySQLProtocolError("a row event whose column count differs from its table map's (\(map.columnTypes.count))", at: r.offset)
        }
        let width = (Int(count) + 7) / 8
        let present = Self.bits(try r.bytes(width, "columns bitmap"), Int(count))
        let presentAfter = kind == .update ? Self.bits(try r.bytes(width, "columns bitmap (after image)"), Int(count)) : present
        guard present.contains(true), presentAfter.contains(true) else {
            throw MySQLProtocolError("a row event whose images hold no column", at: r.offset)
        }
        rows = []
        let counts = (present.reduce(0) { $0 + ($1 ? 1 : 0) }, presentAfter.reduce(0) { $0 + ($1 ? 1 : 0) })
        while !r.isAtEnd {
            switch kind {
            case .insert: rows.append((nil, try Self.image(&r, map, present, counts.0)))
            case .delete: rows.append((try Self.image(&r, map, present, counts.0), nil))
            case .update:
                let before = try Self.image(&r, map, present, counts.0)
                rows.append((before, try Self.image(&r, map, presentAfter, counts.1)))
            }
        }
    }

    static func bits(_ bytes: [UInt8], _ count: Int) -> [Bool] {
        (0..<count).map { bytes[$0 / 8] & (1 << ($0 % 8)) != 0 }
    }

    /// One row image: a null bitmap over the present columns, then their values. Absent
    /// columns are nil; NULL is `.null`.
    static func image(_ r: inout MySQLByteReader, _ map: MySQLTableMap, _ present: [Bool], _ presentCount: Int) throws -> [MySQLValue?] {
        // The null bitmap is read in place.
        let nulls = r.offset
        try r.skip((presentCount + 7) / 8, "row null bitmap")
        var values: [MySQLValue?] = []
        values.reserveCapacity(present.count)
        var k = 0
        for (c, isPresent) in present.enumerated() {
            guard isPresent else {
                values.append(nil)
                continue
            }
            defer { k += 1 }
            if r.bytes[nulls + k / 8] & (1 << (k % 8)) != 0 {
                values.append(.null)
            } else {
                values.append(try MySQLValue.decode(&r, type: map.columnTypes[c], metadata: map.columnMetadata[c], column: c))
            }
        }
        return values
    }
}
