import SluiceMySQL
import Testing

/// Binlog events decoded from a real MariaDB binlog (``BinlogFixture``); the expected values are
/// the ones `mariadb-binlog -vv` prints for the same file.
@Suite struct MySQLBinlogTests {
    /// 'héllo' in the table's charset, latin1 (this server's default): bytes, not text, until
    /// the schema says which charset they are in.
    static let latin1Hello: [UInt8] = [0x68, 0xE9, 0x6C, 0x6C, 0x6F]

    /// Every event of the fixture, in order.
    static func events() throws -> [(header: MySQLBinlogEventHeader, event: MySQLBinlogEvent)] {
        let file = BinlogFixture.mariaDB1011
        #expect(Array(file.prefix(4)) == [0xFE, 0x62, 0x69, 0x6E], "the binlog magic")
        var decoder = MySQLBinlogDecoder()
        var out: [(MySQLBinlogEventHeader, MySQLBinlogEvent)] = []
        var pos = 4
        while pos < file.count {
            let header = try MySQLBinlogEventHeader(parsing: Array(file[pos..<(pos + 19)]))
            let end = pos + Int(header.eventSize)
            out.append(try decoder.decode(Array(file[pos..<end])))
            #expect(Int(header.nextPosition) == end)
            pos = end
        }
        return out
    }

    @Test func theEventsOfATransactionComeInOrder() throws {
        let events = try Self.events()
        guard case let .formatDescription(format) = events[0].event else {
            Issue.record("the first event is \(events[0].event)")
            return
        }
        #expect(format.checksummed)
        #expect(format.serverVersion == "10.11.19-MariaDB-0+deb12u1-log")
        let gtids = events.compactMap { if case let .mariaDBGTID(domain, sequence, standalone) = $0.event { (domain, sequence, standalone) } else { nil } }
        #expect(gtids.map(\.1) == [6, 7, 8, 9, 10])
        #expect(gtids.map(\.2) == [true, true, false, false, false], "DDL is standalone; row transactions end in an XID")
        let queries = events.compactMap { if case let .query(database, sql, _) = $0.event { (database, sql) } else { nil } }
        #expect(queries.contains { $0.0 == "shop" && $0.1.hasPrefix("CREATE TABLE t (id INT PRIMARY KEY") })
        let xids = events.compactMap { if case let .xid(x) = $0.event { x } else { nil } }
        #expect(xids.count == 3)
        let kinds = events.compactMap { if case let .rows(r) = $0.event { r.kind } else { nil } }
        #expect(kinds == [.insert, .insert, .update, .delete])
    }

    @Test func everyColumnTypeDecodesAsTheServerRendersIt() throws {
        let rows = try Self.events().compactMap { if case let .rows(r) = $0.event { r } else { nil } }
        let map = try #require(
            try Self.events().compactMap { if case let .tableMap(m) = $0.event { m } else { nil } }.first)
        #expect(map.database == "shop" && map.table == "t")
        #expect(map.columnTypes.count == 19)
        #expect(map.nullable == [false] + Array(repeating: true, count: 18))
        let first = try #require(rows.first?.rows.first?.after)
        let expected: [MySQLValue?] = [
            .integer(1, width: 4), .integer(-1, width: 8), .integer(-128, width: 1), .integer(-32768, width: 2),
            .integer(-8_388_608, width: 3), .decimal("-1234567890.12"), .double(1.5), .float(0.25), .bytes(Self.latin1Hello),
            .bytes(Array("a body".utf8)), .bytes([0x00, 0xFF, 0x10]), .date(year: 2026, month: 12, day: 7),
            .datetime(year: 2026, month: 12, day: 7, hour: 8, minute: 9, second: 10, microsecond: 123_456),
            .timestamp(seconds: 1_796_630_950, microsecond: 125_000),
            .time(negative: true, hours: 838, minutes: 59, seconds: 58, microsecond: 990_000), .year(2026), .enumIndex(2),
            .setBits(0b101), .bits([0x02, 0x01]),
        ]
        for (c, (got, want)) in zip(first, expected).enumerated() {
            #expect(got == want, "column \(c + 1)")
        }
        #expect(first[1]?.unsigned == 18_446_744_073_709_551_615)
        // The second insert: only the key, every other column NULL.
        let second = try #require(rows[1].rows.first?.after)
        #expect(second[0] == .integer(2, width: 4))
        #expect(second.dropFirst().allSatisfy { $0 == .null })
        // The update carries both images (binlog_row_image=FULL); the delete the old row.
        let update = try #require(rows[2].rows.first)
        #expect(update.before?[8] == .bytes(Self.latin1Hello))
        #expect(update.after?[8] == .bytes(Array("changed".utf8)))
        #expect(update.after?[5] == .decimal("0.05"))
        #expect(rows[3].rows.first?.before?[0] == .integer(2, width: 4))
        #expect(rows[3].rows.first?.after == nil)
    }

    @Test func aDamagedEventIsRefusedByItsChecksum() throws {
        var file = BinlogFixture.mariaDB1011
        var decoder = MySQLBinlogDecoder()
        let fdeSize = Int(file[4 + 9]) | Int(file[4 + 10]) << 8
        _ = try decoder.decode(Array(file[4..<(4 + fdeSize)]))
        let next = 4 + fdeSize
        let size = Int(file[next + 9]) | Int(file[next + 10]) << 8
        file[next + 20] ^= 0x01
        #expect(throws: MySQLProtocolError.self) { try decoder.decode(Array(file[next..<(next + size)])) }
    }

    @Test func decimalsOfEveryShapeAreExact() throws {
        // Bytes as MySQL's decimal2bin writes them (computed by hand from its layout).
        // DECIMAL(12,2) 0.05: integer part 10 digits = 1 digit (1 byte) + 9 digits (4 bytes), fraction 1 byte.
        var r = MySQLByteReader([0x80, 0, 0, 0, 0, 0x05])
        #expect(try MySQLValue.decimal(&r, precision: 12, scale: 2) == "0.05")
        // DECIMAL(20,10) -1.5: 10 integer digits (1 + 4 bytes), 10 fraction digits (4 + 1 bytes), inverted.
        let positive: [UInt8] = [0x80, 0, 0, 0, 0x01, 0x1D, 0xCD, 0x65, 0x00, 0x00]
        var negative = MySQLByteReader(positive.map { ~$0 })
        #expect(try MySQLValue.decimal(&negative, precision: 20, scale: 10) == "-1.5000000000")
    }

    /// Random DECIMALs, two of every precision and scale, written as MySQL's `decimal2bin` lays them
    /// out (groups of nine digits in 4 bytes, shorter groups in fewer, big-endian, the first bit
    /// flipped, every byte inverted when negative), read back to the same text.
    @Test func randomDecimalsOfEveryPrecisionReadBackExactly() throws {
        let groupBytes = [0, 1, 1, 2, 2, 3, 3, 4, 4, 4]
        func bytes(_ digits: Substring) -> [UInt8] {
            let n = groupBytes[digits.count]
            let value = UInt64(digits)!
            return (0..<n).map { UInt8((value >> (8 * UInt64(n - 1 - $0))) & 0xFF) }
        }
        var generator = SystemRandomNumberGenerator()
        let shapes = (1...65).flatMap { p in (0...min(30, p)).map { (p, $0) } }
        for (precision, scale) in shapes + shapes {
            let digits = { (n: Int) in String((0..<n).map { _ in Character(String(Int.random(in: 0...9, using: &generator))) }) }
            // Often short numbers: leading zeros in the groups.
            let integerDigits = precision - scale
            let integer = String(repeating: "0", count: max(0, integerDigits - Int.random(in: 0...integerDigits, using: &generator)))
            let padded = (integer + digits(integerDigits - integer.count))
            let fraction = digits(scale)
            let negative = Bool.random(using: &generator)
            var out: [UInt8] = []
            var rest = Substring(padded)
            if integerDigits % 9 > 0 {
                out += bytes(rest.prefix(integerDigits % 9))
                rest = rest.dropFirst(integerDigits % 9)
            }
            while !rest.isEmpty {
                out += bytes(rest.prefix(9))
                rest = rest.dropFirst(9)
            }
            var f = Substring(fraction)
            while f.count >= 9 {
                out += bytes(f.prefix(9))
                f = f.dropFirst(9)
            }
            if !f.isEmpty { out += bytes(f) }
            out[0] ^= 0x80
            if negative { out = out.map { ~$0 } }
            var stripped = String(padded.drop { $0 == "0" })
            if stripped.isEmpty { stripped = "0" }
            var text = scale > 0 ? stripped + "." + fraction : stripped
            if negative && text.contains(where: { $0 != "0" && $0 != "." }) { text = "-" + text }
            var r = MySQLByteReader(out + [0xAA])
            #expect(try MySQLValue.decimal(&r, precision: precision, scale: scale) == text, "DECIMAL(\(precision),\(scale)) \(out)")
            #expect(r.remaining == 1)
        }
    }

    /// Hostile or damaged bytes are refused with an error, never a crash or a loop.
    @Test func damagedValuesAndEventsAreRefused() throws {
        func refuses(_ bytes: [UInt8], type: UInt8, metadata: UInt16, _ comment: Comment) {
            var r = MySQLByteReader(bytes)
            #expect(throws: MySQLProtocolError.self, comment) { try MySQLValue.decode(&r, type: type, metadata: metadata, column: 0) }
        }
        refuses([1, 2, 3, 4, 5], type: MySQLColumnType.string, metadata: 0xF705, "an ENUM of 5 bytes")
        refuses([1, 2, 3, 4, 5], type: MySQLColumnType.string, metadata: 0xF805, "a SET of 5 bytes")
        refuses(Array(repeating: 0x80, count: 40), type: MySQLColumnType.newDecimal, metadata: 5 << 8 | 10, "DECIMAL(5,10)")
        refuses([0x80, 0xFF, 0xFF, 0xFF, 0xFF, 0], type: MySQLColumnType.newDecimal, metadata: 12 << 8 | 2, "a group of 9 digits holding 4294967295")
        refuses([1, 0, 0, 0, 0, 0, 0], type: MySQLColumnType.blob, metadata: 7, "a BLOB length of 7 bytes")
        refuses([0x80, 0, 0, 0, 0, 0, 0, 0], type: MySQLColumnType.datetime2, metadata: 9, "9 fractional digits")
        refuses([0x12], type: 242, metadata: 0, "an unknown type")
        // Negative zero (all bits of -0.00) reads as 0.00.
        var zero = MySQLByteReader([0x7F, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF])
        #expect(try MySQLValue.decimal(&zero, precision: 12, scale: 2) == "0.00")

        // An event whose checksum fails and whose position fields are nonsense still only throws.
        var decoder = MySQLBinlogDecoder(checksummed: true)
        var fake: [UInt8] = [0, 0, 0, 0, MySQLBinlogEventType.rotate, 1, 0, 0, 0, 31, 0, 0, 0, 0, 0, 0, 0, 0, 0]
        fake += [4, 0, 0, 0, 0, 0, 0, 0, 0xDE, 0xAD, 0xBE, 0xEF]
        #expect(throws: MySQLProtocolError.self) { try decoder.decode(fake) }
        // Event types whose changes would be lost if skipped are refused, saying what to do.
        var plain = MySQLBinlogDecoder()
        for (type, advice) in [(MySQLBinlogEventType.partialUpdateRows, "binlog_row_value_options"), (MySQLBinlogEventType.mysqlTaggedGTID, "tagged GTIDs")] {
            let event: [UInt8] = [0, 0, 0, 0, type, 1, 0, 0, 0, 20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]
            do {
                _ = try plain.decode(event)
                Issue.record("event type \(type) was decoded")
            } catch {
                #expect(error is MySQLProtocolError && "\(error)".contains(advice), "\(error)")
            }
        }
    }

    /// MariaDB's compressed blocks (`log_bin_compress`): a header byte, the length big-endian,
    /// zlib. (Whole compressed events are read from a real server in MySQLCDCTypesTests.)
    @Test func compressedBlocksDecompressExactlyOrAreRefused() throws {
        let zlib: [UInt8] = [120, 156, 11, 9, 10, 245, 115, 118, 12, 113, 85, 8, 113, 116, 242, 113, 85, 40, 1, 0, 39, 45, 4, 131]
        let sql = try MySQLBinlogDecoder.uncompressed([0x81, 16] + zlib, at: 0)
        #expect(String(decoding: sql, as: UTF8.self) == "TRUNCATE TABLE t")
        #expect(try MySQLBinlogDecoder.uncompressed([0x82, 0, 16] + zlib, at: 0) == sql)
        let refused: [([UInt8], Comment)] = [
            ([0x01, 16] + zlib, "no header bit"),
            ([0x91, 16] + zlib, "algorithm 1"),
            ([0x85, 0, 0, 0, 0, 16] + zlib, "a length of 5 bytes"),
            ([0x84, 0x7F, 0xFF, 0xFF, 0xFF] + zlib, "2 GiB declared"),
            ([0x81, 17] + zlib, "one byte more declared than the stream holds"),
            ([0x81, 15] + zlib, "one byte less declared"),
            ([0x81, 16] + zlib.dropLast(6), "a cut stream"),
            ([0x81, 0], "nothing at all"),
        ]
        for (block, comment) in refused {
            #expect(throws: MySQLProtocolError.self, comment) { try MySQLBinlogDecoder.uncompressed(block, at: 0) }
        }
    }

    /// The fixture's row events rewritten as MariaDB's compressed ones (v1, 166–168, and v2,
    /// 169–171, which a server writes with `log_bin_compress` and v2 row events) decode to the
    /// same rows. (A real server's compressed v1 events are read in MySQLCDCTypesTests.)
    @Test func compressedRowEventsOfBothVersionsDecodeToTheSameRows() throws {
        let file = BinlogFixture.mariaDB1011
        var plain: [MySQLRowsEvent] = []
        var v1: [MySQLRowsEvent] = []
        var v2: [MySQLRowsEvent] = []
        var decoders = (MySQLBinlogDecoder(), MySQLBinlogDecoder(), MySQLBinlogDecoder())
        var pos = 4
        while pos < file.count {
            let header = try MySQLBinlogEventHeader(parsing: Array(file[pos..<(pos + 19)]))
            let event = Array(file[pos..<(pos + Int(header.eventSize))])
            pos += Int(header.eventSize)
            guard (23...25).contains(header.type) else {
                _ = try decoders.0.decode(event)
                _ = try decoders.1.decode(event)
                _ = try decoders.2.decode(event)
                continue
            }
            if case let .rows(r) = try decoders.0.decode(event).event { plain.append(r) }
            if case let .rows(r) = try decoders.1.decode(Self.compressed(event, version2: false)).event { v1.append(r) }
            if case let .rows(r) = try decoders.2.decode(Self.compressed(event, version2: true)).event { v2.append(r) }
        }
        #expect(plain.count == 4)
        #expect(v1 == plain)
        #expect(v2 == plain)
    }

    /// A v1 row event (checksummed) as MariaDB compresses it: the post-header (plus, for v2, empty
    /// extra data), column count and bitmaps plain, the rows in a compressed block (zlib, here
    /// with a stored block: valid zlib that any inflater reads).
    static func compressed(_ event: [UInt8], version2: Bool) -> [UInt8] {
        var body = Array(event[19..<(event.count - 4)])
        let columns = Int(body[8])
        let bitmaps = (event[4] == 24 ? 2 : 1) * ((columns + 7) / 8)
        let headEnd = 9 + bitmaps
        let rows = Array(body[headEnd...])
        var zlib: [UInt8] = [0x78, 0x01, 0x01, UInt8(rows.count & 0xFF), UInt8(rows.count >> 8), UInt8(~rows.count & 0xFF), UInt8((~rows.count >> 8) & 0xFF)]
        zlib += rows
        var a: UInt32 = 1, b: UInt32 = 0
        for byte in rows {
            a = (a + UInt32(byte)) % 65521
            b = (b + a) % 65521
        }
        let adler = b << 16 | a
        zlib += [UInt8(adler >> 24), UInt8((adler >> 16) & 0xFF), UInt8((adler >> 8) & 0xFF), UInt8(adler & 0xFF)]
        let block: [UInt8] = [0x82, UInt8(rows.count >> 8), UInt8(rows.count & 0xFF)] + zlib
        body = Array(body[..<8]) + (version2 ? [0x02, 0x00] : []) + Array(body[8..<headEnd]) + block
        var out = Array(event[..<19]) + body
        out[4] = version2 ? event[4] - 23 + 169 : event[4] - 23 + 166
        let size = out.count + 4
        for i in 0..<4 { out[9 + i] = UInt8((size >> (8 * i)) & 0xFF) }
        var crc: UInt32 = 0xFFFF_FFFF
        for byte in out {
            crc ^= UInt32(byte)
            for _ in 0..<8 { crc = crc & 1 != 0 ? (crc >> 1) ^ 0xEDB8_8320 : crc >> 1 }
        }
        crc = ~crc
        return out + [UInt8(crc & 0xFF), UInt8((crc >> 8) & 0xFF), UInt8((crc >> 16) & 0xFF), UInt8(crc >> 24)]
    }

    @Test func theDumpsFirstRotateIsReadWithItsChecksum() throws {
        // A dump from a CRC32 server starts with a rotate carrying a checksum, before any
        // format description: the file name must not swallow the checksum.
        let body: [UInt8] = [4, 0, 0, 0, 0, 0, 0, 0] + Array("binlog.000003".utf8)
        var event: [UInt8] = [0, 0, 0, 0, MySQLBinlogEventType.rotate, 1, 0, 0, 0]
        let size = 19 + body.count + 4
        event += [UInt8(size), 0, 0, 0, 0, 0, 0, 0, 0x20, 0]
        event += body
        let crc = crc32Bytes(event)
        event += crc
        var decoder = MySQLBinlogDecoder(checksummed: true)
        #expect(try decoder.decode(event).event == .rotate(nextFile: "binlog.000003", position: 4))
    }

    /// zlib's CRC32 (the binlog's), computed here bit by bit.
    func crc32Bytes(_ bytes: [UInt8]) -> [UInt8] {
        var crc: UInt32 = 0xFFFF_FFFF
        for b in bytes {
            crc ^= UInt32(b)
            for _ in 0..<8 { crc = crc & 1 != 0 ? (crc >> 1) ^ 0xEDB8_8320 : crc >> 1 }
        }
        crc ^= 0xFFFF_FFFF
        return [UInt8(crc & 0xFF), UInt8((crc >> 8) & 0xFF), UInt8((crc >> 16) & 0xFF), UInt8(crc >> 24)]
    }
}

extension MySQLBinlogTests {
    /// A TABLE_MAP event MariaDB 10.11 wrote with `binlog_row_metadata=FULL` for
    /// `CREATE TABLE t (id INT UNSIGNED PRIMARY KEY, a TINYINT, b BIGINT UNSIGNED, c VARCHAR(10)
    /// CHARACTER SET latin1, d TEXT, e ENUM('x','y'), f SET('p','q','r'), g DECIMAL(10,2), h
    /// DOUBLE, j BLOB, k JSON, l GEOMETRY, m CHAR(3) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin,
    /// n FLOAT UNSIGNED)` (database default latin1); `mariadb-binlog --print-table-metadata`
    /// prints the same names, signedness, charsets, values and key.
    @Test func fullTableMetadataNamesColumnsCharsetsValuesAndTheKey() throws {
        let hex =
            "7e81166b13010000009400000031070000000012000000000001000b736c756963655f74657374000174000e0301080ffcfefef605fcfcfffe04100a0002f701f8010a0208020404fe0c04fe3f0101a4030608083f2e3f2e070100041d02696401610162016301640165016601670168016a016b016c016d016e0a0108050703017001710172060502017801790801003fa64cdc"
        var bytes: [UInt8] = []
        var i = hex.startIndex
        while i < hex.endIndex {
            let j = hex.index(i, offsetBy: 2)
            bytes.append(UInt8(hex[i..<j], radix: 16)!)
            i = j
        }
        let body = Array(bytes[19..<(bytes.count - 4)])
        let map = try MySQLTableMap(parsing: body, postHeaderLength: 8, mariaDB: true)
        #expect(map.database == "sluice_test" && map.table == "t")
        let m = map.optional
        #expect(m.columnNames == ["id", "a", "b", "c", "d", "e", "f", "g", "h", "j", "k", "l", "m", "n"])
        // Numeric columns id, a, b, g, h, n: unsigned id, b, n.
        #expect(m.unsignedNumerics == [true, false, true, false, false, true])
        // Character columns c, d, j (binary), k (JSON is LONGTEXT utf8mb4_bin), l (GEOMETRY, on MariaDB), m.
        #expect(m.characterCollations == [8, 8, 63, 46, 63, 46])
        #expect(map.characterIndexes(mariaDB: true) == [nil, nil, nil, 0, 1, nil, nil, nil, nil, 2, 3, 4, 5, nil])
        #expect(m.enumSetCollations == [8, 8])
        #expect(m.enumValues == [[Array("x".utf8), Array("y".utf8)]])
        #expect(m.setValues == [[Array("p".utf8), Array("q".utf8), Array("r".utf8)]])
        #expect(m.primaryKey == [0])
        #expect(map.realType(5) == MySQLColumnType.enumeration && map.realType(6) == MySQLColumnType.set)
        // A field cut short is refused; damaged bytes anywhere in the metadata never crash.
        #expect(throws: MySQLProtocolError.self) { try MySQLTableMap(parsing: Array(body.dropLast()), postHeaderLength: 8, mariaDB: true) }
        for at in (body.count - 70)..<body.count {
            for value: UInt8 in [0x00, 0x01, 0x7F, 0xFB, 0xFC, 0xFF] {
                var damaged = body
                damaged[at] = value
                _ = try? MySQLTableMap(parsing: damaged, postHeaderLength: 8, mariaDB: true)
            }
        }
    }
}
