import Foundation
import SluiceCore
import Testing
@testable import SluiceFormats

/// A batch generator covering every Sluice type, nulls in every nullable column and edge values.
enum ParquetSampleData {
    static let schema = Schema([
        Field("id", .int64, nullable: false),
        Field("flag", .bool),
        Field("count", .int64),
        Field("ratio", .float64),
        Field("name", .string),
        Field("payload", .binary),
        Field("day", .date),
        Field("at", .timestamp),
        Field("price", .decimal(precision: 9, scale: 2)),
        Field("wide", .decimal(precision: 18, scale: 0)),
        Field("huge", .decimal(precision: 38, scale: 10)),
        Field("odd", .decimal(precision: 20, scale: 3)),
        Field("doc", .json),
        Field("label", .string, nullable: false),
    ])

    static let ten18: Int128 = 1_000_000_000_000_000_000
    static let maxDecimal38: Int128 = ten18 * ten18 * 100 - 1

    static let doubles: [Double] = [
        0, -0.0, 1.5, -2.25, .infinity, -.infinity, .nan, .greatestFiniteMagnitude,
        -.greatestFiniteMagnitude, .leastNonzeroMagnitude, 1e-300, 123456.789,
    ]
    static let strings: [String] = [
        "", "a", "héllo wörld", "日本語テキスト", "emoji 🌍🚀", "z", "é", "tab\tnew\nline",
        "quote \" backslash \\", String(repeating: "long", count: 1500),
    ]
    static let ints: [Int64] = [.min, .max, 0, -1, 1, 42, -123_456_789_012]
    /// Timestamps before 1970, after 2100 and the extremes DuckDB can show (it reserves Int64.max/min).
    static let timestamps: [Int64] = [
        0, -1, -2_208_988_800_000_000, 4_102_444_800_000_001, 253_402_300_799_999_999,
        -62_135_596_800_000_000, 1_700_000_000_123_456,
    ]
    static let days: [Int32] = [0, -1, -719_162, 2_932_896, 19_000, -25_567]

    /// Row `r` of the sample (`extreme` adds values only Sluice itself round-trips, like Int64.max timestamps).
    static func fill(_ r: Int, _ c: Int, _ b: inout ColumnBuilder, extreme: Bool = true, distinctStrings: Bool = false) {
        let nullEvery = [0, 7, 5, 3, 11, 4, 6, 9, 8, 10, 12, 13, 14, 0][c]
        if nullEvery > 0 && r % nullEvery == 1 { b.appendNull(); return }
        switch c {
        case 0: b.append(Int64(r))
        case 1: b.append(r % 3 == 0)
        case 2: b.append(r < ints.count ? ints[r] : Int64(r &* 7919 % 1000) - 500)
        case 3: b.append(r < doubles.count ? doubles[r] : Double(r) / 7)
        case 4:
            if distinctStrings { b.append(string: "distinct value number \(r) \(r &* 2654435761)"); return }
            b.append(string: strings[r % strings.count] + (r % 5 == 0 ? "\(r % 50)" : ""))
        case 5: b.appendBytes((0..<(r % 9)).map { UInt8(truncatingIfNeeded: $0 &* 37 &+ r) })
        case 6: b.appendDate(days: days[r % days.count] + Int32(r % 3))
        case 7:
            if extreme && r == 2 { b.append(Int64.max); return }
            if extreme && r == 3 { b.append(Int64.min); return }
            b.append(timestamps[r % timestamps.count] + Int64(r))
        case 8: b.appendDecimal(Int128(r % 2 == 0 ? -1 : 1) * Int128(r * 1013 % 999_999_999))
        case 9: b.appendDecimal(r % 4 == 0 ? ten18 - 1 : (r % 4 == 2 ? -(ten18 - 1) : Int128(r)))
        case 10: b.appendDecimal(r % 4 == 0 ? maxDecimal38 : (r % 4 == 2 ? -maxDecimal38 : Int128(r) * -12345))
        case 11: b.appendDecimal(r % 3 == 0 ? ten18 * 100 - 1 : -Int128(r % 100) * ten18 - 999)
        case 12: b.append(string: "{\"n\":\(r),\"tags\":[\"x\",\"ü\"]}")
        default: b.append(string: ["alpha", "beta", "gamma"][r % 3])
        }
    }

    static func batches(rows: Int, batchSize: Int, extreme: Bool = true, distinctStrings: Bool = false) -> [RecordBatch] {
        stride(from: 0, to: rows, by: batchSize).map { start in
            ParquetTestSupport.makeBatch(schema, rows: min(batchSize, rows - start)) { r, c, b in
                fill(start + r, c, &b, extreme: extreme, distinctStrings: distinctStrings)
            }
        }
    }
}

@Suite("Parquet round trip (Sluice writer → Sluice reader)")
struct ParquetRoundTripTests {
    func roundTrip(_ batches: [RecordBatch], options: ParquetWriterOptions, schema: Schema = ParquetSampleData.schema)
        throws -> ParquetReader
    {
        let bytes = try ParquetTestSupport.writeToMemory(batches, schema: schema, options: options)
        let reader = try ParquetReader(bytes: bytes)
        #expect(reader.schema == schema)
        let back = try reader.readAll()
        ParquetTestSupport.expectSameColumns(
            ParquetTestSupport.canonicalColumns(back),
            ParquetTestSupport.canonicalColumns(batches), "\(options.compression)")
        #expect(reader.metadata.rows == batches.reduce(0) { $0 + $1.count })
        return reader
    }

    @Test(arguments: ParquetCompression.allCases)
    func everyTypeAndCodecRoundTrips(_ compression: ParquetCompression) throws {
        var options = ParquetWriterOptions(compression: compression)
        options.pageBytes = 2048
        options.rowGroupBytes = 512 << 10
        let batches = ParquetSampleData.batches(rows: 3000, batchSize: 700)
        let reader = try roundTrip(batches, options: options)
        #expect(reader.rowGroupCount > 1)
        let chunk = reader.fileMetaData.rowGroups[0].columns[10].metaData!  // decimal(38): PLAIN, 16 bytes a value
        #expect(chunk.codec == compression.codec)
        let dataPages = chunk.encodingStats!.filter { $0.pageType == .dataPage }.reduce(0) { $0 + $1.count }
        #expect(dataPages > 1)
    }

    /// Columns encoded on several threads at once make the same file, byte for byte, and it reads back.
    @Test(arguments: [ParquetCompression.zstd, .snappy, .uncompressed])
    func columnsEncodedInParallelMakeTheSameFile(_ compression: ParquetCompression) throws {
        var options = ParquetWriterOptions(compression: compression)
        options.pageBytes = 4096
        options.rowGroupBytes = 1 << 20
        let batches = ParquetSampleData.batches(rows: 12_000, batchSize: 3000, distinctStrings: true)
        options.threads = 1
        let inOrder = try ParquetTestSupport.writeToMemory(batches, schema: ParquetSampleData.schema, options: options)
        for threads in [2, 4, 32] {
            options.threads = threads
            let parallel = try ParquetTestSupport.writeToMemory(batches, schema: ParquetSampleData.schema, options: options)
            #expect(parallel == inOrder, "\(compression), \(threads) threads")
            _ = try roundTrip(batches, options: options)
        }
    }

    @Test func plainOnlyRoundTrips() throws {
        var options = ParquetWriterOptions(compression: .snappy)
        options.dictionaryEnabled = false
        options.pageBytes = 1000
        let reader = try roundTrip(ParquetSampleData.batches(rows: 1500, batchSize: 1500), options: options)
        for chunk in reader.fileMetaData.rowGroups[0].columns {
            #expect(chunk.metaData!.dictionaryPageOffset == nil)
        }
    }

    @Test func dictionaryFallsBackToPlainPastItsLimit() throws {
        var options = ParquetWriterOptions(compression: .zstd)
        options.pageBytes = 4096
        options.dictionaryPageLimit = 8192
        let schema = Schema([Field("s", .string), Field("n", .int64, nullable: false)])
        let batch = ParquetTestSupport.makeBatch(schema, rows: 20000) { r, c, b in
            if c == 0 {
                // Repetitive at first (dictionary pays), then all distinct (it overflows).
                if r % 13 == 0 { b.appendNull() } else { b.append(string: r < 4000 ? "v\(r % 20)" : "distinct-\(r)") }
            } else {
                b.append(Int64(r < 4000 ? r % 7 : r))
            }
        }
        let reader = try roundTrip([batch], options: options, schema: schema)
        for chunk in reader.fileMetaData.rowGroups[0].columns {
            let stats = chunk.metaData!.encodingStats!
            #expect(stats.contains { $0.pageType == .dictionaryPage })
            #expect(stats.contains { $0.pageType == .dataPage && $0.encoding == .rleDictionary })
            #expect(stats.contains { $0.pageType == .dataPage && $0.encoding == .plain })
        }
    }

    @Test func dictionaryIsDroppedWhenItDoesNotPay() throws {
        var options = ParquetWriterOptions(compression: .uncompressed)
        options.pageBytes = 4096
        let batches = ParquetSampleData.batches(rows: 5000, batchSize: 5000, distinctStrings: true)
        let reader = try roundTrip(batches, options: options)
        let id = reader.fileMetaData.rowGroups[0].columns[0].metaData!.encodingStats!
        // After the first page the unique ids go PLAIN.
        #expect(id.contains { $0.pageType == .dataPage && $0.encoding == .plain && $0.count > 2 })
        #expect(id.filter { $0.encoding == .rleDictionary }.allSatisfy { $0.count == 1 })
    }

    @Test func tinyPagesAndRowGroups() throws {
        var options = ParquetWriterOptions(compression: .gzip)
        options.pageBytes = 1
        options.rowGroupRows = 37
        let reader = try roundTrip(ParquetSampleData.batches(rows: 200, batchSize: 64), options: options)
        #expect(reader.rowGroupCount == 6)
        #expect(reader.metadata.rowGroups.map(\.rows) == [37, 37, 37, 37, 37, 15])
    }

    @Test func allNullAndEmptyColumns() throws {
        let schema = Schema([
            Field("a", .string), Field("b", .float64), Field("c", .decimal(precision: 30, scale: 2)),
            Field("d", .bool), Field("e", .string, nullable: false),
        ])
        let batch = ParquetTestSupport.makeBatch(schema, rows: 300) { _, c, b in
            if c == 4 { b.append(string: "") } else { b.appendNull() }
        }
        _ = try roundTrip([batch], options: ParquetWriterOptions(), schema: schema)
        // A file without rows still has its schema.
        let empty = try ParquetTestSupport.writeToMemory([], schema: schema)
        let reader = try ParquetReader(bytes: empty)
        #expect(reader.schema == schema)
        #expect(reader.rowGroupCount == 0)
        #expect(reader.metadata.rows == 0)
    }

    @Test func statisticsUseTheRightOrder() throws {
        let schema = Schema([
            Field("s", .string), Field("f", .float64), Field("i", .int64), Field("d", .decimal(precision: 25, scale: 0)),
            Field("b", .bool),
        ])
        let strings = ["z", "é", "a", "", "zz"]
        let doubles: [Double] = [.nan, 0.0, -0.0, 3, .nan]
        let decimals: [Int128] = [5, -7, 0, 1, -1]
        let batch = ParquetTestSupport.makeBatch(schema, rows: 5) { r, c, b in
            switch c {
            case 0: b.append(string: strings[r])
            case 1: b.append(doubles[r])
            case 2: b.append(Int64(r) - 2)
            case 3: b.appendDecimal(decimals[r])
            default: if r == 0 { b.appendNull() } else { b.append(true) }
            }
        }
        let reader = try ParquetReader(bytes: try ParquetTestSupport.writeToMemory([batch], schema: schema))
        let stats = reader.fileMetaData.rowGroups[0].columns.map { $0.metaData!.statistics! }
        #expect(stats[0].minValue == [])
        #expect(stats[0].maxValue == Array("é".utf8))  // unsigned bytes: 0xC3 > 'z'
        #expect(stats[1].minValue == ColumnStatistics.littleEndian((-0.0).bitPattern))
        #expect(stats[1].maxValue == ColumnStatistics.littleEndian((3.0).bitPattern))
        #expect(stats[1].nanCount == 2)
        #expect(stats[2].minValue == ColumnStatistics.littleEndian(Int64(-2)))
        #expect(stats[2].maxValue == ColumnStatistics.littleEndian(Int64(2)))
        #expect(stats[3].minValue == DecimalBytes.bigEndian(-7, width: 11))
        #expect(stats[3].maxValue == DecimalBytes.bigEndian(5, width: 11))
        #expect(stats[4].nullCount == 1)
        #expect(stats[4].minValue == [1])
        #expect(stats.allSatisfy { $0.nullCount != nil })
    }

    /// `sluice inspect` shows a decimal's statistics as a decimal number for every physical type.
    @Test func inspectRendersDecimalStatisticsAsNumbers() throws {
        let big = DataType.decimal(precision: 38, scale: 9), small = DataType.decimal(precision: 9, scale: 2)
        let huge = Int128(12_345_678_901_234_567_890) * 1_000_000_000 + 123_456_789
        #expect(ParquetReader.render(DecimalBytes.bigEndian(huge, width: 16), type: big, physical: .fixedLenByteArray) == "12345678901234567890.123456789")
        #expect(ParquetReader.render(DecimalBytes.bigEndian(-1, width: 16), type: big, physical: .fixedLenByteArray) == "-0.000000001")
        #expect(ParquetReader.render(DecimalBytes.bigEndian(-150, width: 8), type: small, physical: .fixedLenByteArray) == "-1.50")
        #expect(ParquetReader.render(DecimalBytes.bigEndian(-150, width: 2), type: small, physical: .byteArray) == "-1.50")
        #expect(ParquetReader.render(ColumnStatistics.littleEndian(UInt32(bitPattern: -5)), type: small, physical: .int32) == "-0.05")
        #expect(ParquetReader.render(ColumnStatistics.littleEndian(Int64(-150)), type: .decimal(precision: 18, scale: 2), physical: .int64) == "-1.50")
        #expect(ParquetReader.render([0xAB, 0xCD], type: .binary, physical: .fixedLenByteArray) == "0xabcd", "other fixed-length bytes stay hex")
    }

    @Test func writerRejectsBadBatchesAndStaysUsable() throws {
        let schema = Schema([Field("n", .int64, nullable: false), Field("d", .decimal(precision: 4, scale: 0))])
        let output = ParquetMemoryOutput()
        let writer = try ParquetWriter(schema: schema, output: output)
        let withNull = ParquetTestSupport.makeBatch(schema, rows: 2) { r, c, b in
            if c == 0 { if r == 1 { b.appendNull() } else { b.append(Int64(1)) } } else { b.appendDecimal(1) }
        }
        #expect(throws: ParquetError.self) { try writer.write(withNull) }
        let tooWide = ParquetTestSupport.makeBatch(
            Schema([Field("n", .int64, nullable: false), Field("d", .decimal(precision: 20, scale: 0))]),
            rows: 1
        ) { _, c, b in if c == 0 { b.append(Int64(1)) } else { b.appendDecimal(1) } }
        #expect(throws: ParquetError.self) { try writer.write(tooWide) }
        let good = ParquetTestSupport.makeBatch(schema, rows: 3) { r, c, b in
            if c == 0 { b.append(Int64(r)) } else { b.appendDecimal(Int128(r)) }
        }
        try writer.write(good)
        #expect(try writer.close().rows == 3)
        #expect(throws: ParquetError.self) { try writer.write(good) }
        #expect(try ParquetReader(bytes: output.bytes).readAll().first?.count == 3)
    }

    @Test func fileOutputAndReaderOnDisk() throws {
        let dir = try ParquetTestSupport.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("t.parquet").path
        let batches = ParquetSampleData.batches(rows: 500, batchSize: 100)
        let summary = try ParquetTestSupport.write(batches, schema: ParquetSampleData.schema, to: path)
        #expect(summary.rows == 500)
        #expect(summary.bytes == (try FileManager.default.attributesOfItem(atPath: path)[.size] as? Int))
        let reader = try ParquetReader(path: path)
        #expect(reader.metadata.keyValue["sluice.schema"] != nil)
        ParquetTestSupport.expectSameColumns(
            ParquetTestSupport.canonicalColumns(try reader.readAll()),
            ParquetTestSupport.canonicalColumns(batches), "file")
    }
}
