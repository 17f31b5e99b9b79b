import Testing
@testable import SluiceFormats

@Suite("Thrift compact protocol")
struct ParquetThriftTests {
    @Test func varintMatchesTheSpecExample() {
        var w = ThriftCompactWriter()
        w.writeVarint(50399)
        #expect(w.bytes == [0xDF, 0x89, 0x03])
        w.reset()
        w.writeVarint(0)
        w.writeVarint(127)
        w.writeVarint(128)
        #expect(w.bytes == [0x00, 0x7F, 0x80, 0x01])
    }

    @Test func zigzagFoldsSignedIntegers() {
        #expect(ThriftCompactWriter.zigzag(Int32(0)) == 0)
        #expect(ThriftCompactWriter.zigzag(Int32(-1)) == 1)
        #expect(ThriftCompactWriter.zigzag(Int32(1)) == 2)
        #expect(ThriftCompactWriter.zigzag(Int32(-2)) == 3)
        #expect(ThriftCompactWriter.zigzag(Int32.max) == 0xFFFF_FFFE)
        #expect(ThriftCompactWriter.zigzag(Int32.min) == 0xFFFF_FFFF)
        #expect(ThriftCompactWriter.zigzag(Int64.min) == UInt64.max)
        var w = ThriftCompactWriter()
        w.writeI64(-64)
        #expect(w.bytes == [0x7F])
        w.reset()
        w.writeI32(64)
        #expect(w.bytes == [0x80, 0x01])
    }

    @Test func fieldHeadersUseDeltasAndTheLongFormPast15() {
        var w = ThriftCompactWriter()
        w.field(1, i32: 5)  // delta 1, type i32 (5); zigzag(5) = 10
        w.field(3, i64: -1)  // delta 2, type i64 (6); zigzag(-1) = 1
        w.field(20, i32: 1)  // delta 17: long form, type byte then zigzag id 40
        w.field(21, string: "ab")  // delta 1, binary (8)
        w.stop()
        #expect(w.bytes == [0x15, 0x0A, 0x26, 0x01, 0x05, 0x28, 0x02, 0x18, 0x02, 0x61, 0x62, 0x00])
    }

    @Test func boolFieldsLiveInTheFieldHeader() {
        var w = ThriftCompactWriter()
        w.field(1, bool: true)
        w.field(2, bool: false)
        w.stop()
        #expect(w.bytes == [0x11, 0x12, 0x00])
        var r = ThriftCompactReader(w.bytes)
        var seen: [Int16: Bool] = [:]
        try? r.readStruct { r, id, type in
            seen[id] = try r.boolValue(type)
            return true
        }
        #expect(seen == [1: true, 2: false])
    }

    @Test func listsUseShortAndLongHeaders() {
        var w = ThriftCompactWriter()
        w.field(1, i32List: [1, 2, 3])
        #expect(w.bytes == [0x19, 0x35, 0x02, 0x04, 0x06])
        w.reset()
        w.field(1, i32List: Array(repeating: 0, count: 15))
        #expect(Array(w.bytes.prefix(3)) == [0x19, 0xF5, 0x0F])
        #expect(w.bytes.count == 3 + 15)
    }

    @Test func nestedStructsRestartFieldIds() {
        var w = ThriftCompactWriter()
        w.field(1, i32: 1)
        w.structField(2) { w in
            w.field(1, i32: 2)
        }
        w.field(3, i32: 3)  // delta from 2, not from the inner field
        w.stop()
        #expect(w.bytes == [0x15, 0x02, 0x1C, 0x15, 0x04, 0x00, 0x15, 0x06, 0x00])
    }

    @Test func listsOfStructs() {
        var w = ThriftCompactWriter()
        w.field(4, structList: 2) { w, i in w.field(1, i64: Int64(i)) }
        w.stop()
        #expect(w.bytes == [0x49, 0x2C, 0x16, 0x00, 0x00, 0x16, 0x02, 0x00, 0x00])
    }

    @Test func readerSkipsUnknownFieldsOfEveryType() throws {
        var w = ThriftCompactWriter()
        w.field(1, string: "key")
        w.field(5, double: 1.5)  // unknown double
        w.field(6, bool: true)  // unknown bool
        w.field(7, structList: 2) { w, _ in
            w.field(1, i32: 9); w.structField(2) { $0.field(3, binary: [1, 2]) }
        }
        w.fieldHeader(8, .map)
        w.writeVarint(1)
        w.bytes.append(0x58)  // i32 keys, binary values
        w.writeI32(1)
        w.writeString("x")
        w.field(300, i32List: [1, 2, 3])  // long-form id
        w.field(301, string: "value")
        w.stop()
        // Field 2 (value) is at id 301 here, so a KeyValue decoder sees only the key.
        var r = ThriftCompactReader(w.bytes)
        let kv = try ParquetKeyValue.decode(&r)
        #expect(kv.key == "key")
        #expect(kv.value == nil)
        #expect(r.remaining == 0)
    }

    @Test func metadataRoundTrips() throws {
        var element = ParquetSchemaElement(name: "amount")
        element.type = .fixedLenByteArray
        element.typeLength = 16
        element.repetition = .optional
        element.logicalType = .decimal(scale: 4, precision: 38)
        element.convertedType = .decimal
        element.scale = 4
        element.precision = 38
        var ts = ParquetSchemaElement(name: "ts")
        ts.type = .int64
        ts.repetition = .required
        ts.logicalType = .timestamp(adjustedToUTC: true, unit: .nanos)
        var root = ParquetSchemaElement(name: "schema")
        root.numChildren = 2
        var stats = ParquetStatistics()
        stats.nullCount = 3
        stats.minValue = [1]
        stats.maxValue = [2]
        stats.isMaxValueExact = false
        let meta = ParquetColumnMetaData(
            type: .int64, encodings: [.plain, .rle], pathInSchema: ["ts"], codec: .zstd, numValues: 10,
            totalUncompressedSize: 100, totalCompressedSize: 50, dataPageOffset: 4, dictionaryPageOffset: nil,
            statistics: stats, encodingStats: [.init(pageType: .dataPage, encoding: .plain, count: 1)])
        var chunk = ParquetColumnChunk()
        chunk.metaData = meta
        var file = ParquetFileMetaData(
            schema: [root, element, ts], numRows: 10,
            rowGroups: [
                ParquetRowGroup(
                    columns: [chunk, chunk], totalByteSize: 100, numRows: 10,
                    fileOffset: 4, totalCompressedSize: 50, ordinal: 0)
            ])
        file.keyValueMetadata = [.init(key: "k", value: "v")]
        file.createdBy = "test"
        file.typeDefinedOrderColumns = 2
        var r = ThriftCompactReader(file.serialized())
        let decoded = try ParquetFileMetaData.decode(&r)
        #expect(decoded.schema == file.schema)
        #expect(decoded.rowGroups == file.rowGroups)
        #expect(decoded.keyValueMetadata == file.keyValueMetadata)
        #expect(decoded.createdBy == "test")
        #expect(r.remaining == 0)
    }

    @Test func pageHeaderRoundTrips() throws {
        var h = ParquetPageHeader(type: .dataPageV2, uncompressedPageSize: 10, compressedPageSize: 8)
        h.dataPageHeaderV2 = ParquetDataPageHeaderV2(
            numValues: 5, numNulls: 1, numRows: 5, encoding: .rleDictionary,
            definitionLevelsByteLength: 2, repetitionLevelsByteLength: 0,
            isCompressed: false, statistics: nil)
        var w = ThriftCompactWriter()
        var r = ThriftCompactReader(h.serialized(using: &w))
        #expect(try ParquetPageHeader.decode(&r) == h)
    }

    @Test func truncatedAndOversizedInputThrows() {
        var w = ThriftCompactWriter()
        w.field(1, string: "hello")
        w.stop()
        let bytes = w.bytes
        for cut in 0..<bytes.count {
            var r = ThriftCompactReader(Array(bytes.prefix(cut)))
            #expect(throws: ParquetFormatError.self) { _ = try ParquetKeyValue.decode(&r) }
        }
        // A binary length pointing past the end.
        var r = ThriftCompactReader([0x18, 0xFF, 0x01, 0x61])
        #expect(throws: ParquetFormatError.self) { _ = try ParquetKeyValue.decode(&r) }
        // A list claiming more elements than bytes remain.
        var l = ThriftCompactReader([0x19, 0xF5, 0xFF, 0xFF, 0x03, 0x00])
        #expect(throws: ParquetFormatError.self) { try l.readStruct { _, _, _ in false } }
        // Deep nesting is refused rather than recursing without bound.
        var deep = ThriftCompactReader(Array(repeating: 0x1C, count: 200) + Array(repeating: 0, count: 201))
        #expect(throws: ParquetFormatError.self) { try deep.readStruct { _, _, _ in false } }
    }
}
