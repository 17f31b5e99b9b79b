/// `DataPageHeader` (v1).
struct ParquetDataPageHeader: Sendable, Hashable {
    var numValues: Int32
    var encoding: ParquetEncoding
    var definitionLevelEncoding: ParquetEncoding
    var repetitionLevelEncoding: ParquetEncoding
    var statistics: ParquetStatistics?
}

/// `DataPageHeaderV2`.
struct ParquetDataPageHeaderV2: Sendable, Hashable {
    var numValues: Int32
    var numNulls: Int32
    var numRows: Int32
    var encoding: ParquetEncoding
    var definitionLevelsByteLength: Int32
    var repetitionLevelsByteLength: Int32
    var isCompressed = true
    var statistics: ParquetStatistics?
}

/// `DictionaryPageHeader`.
struct ParquetDictionaryPageHeader: Sendable, Hashable {
    var numValues: Int32
    var encoding: ParquetEncoding
    var isSorted: Bool?
}

/// `PageHeader`: the page's kind, sizes and the header of that kind.
struct ParquetPageHeader: Sendable, Hashable {
    var type: ParquetPageType
    var uncompressedPageSize: Int32
    var compressedPageSize: Int32
    var crc: Int32?
    var dataPageHeader: ParquetDataPageHeader?
    var dictionaryPageHeader: ParquetDictionaryPageHeader?
    var dataPageHeaderV2: ParquetDataPageHeaderV2?

    init(type: ParquetPageType, uncompressedPageSize: Int32, compressedPageSize: Int32) {
        self.type = type
        self.uncompressedPageSize = uncompressedPageSize
        self.compressedPageSize = compressedPageSize
    }

    func encode(_ w: inout ThriftCompactWriter) {
        w.field(1, i32: type.rawValue)
        w.field(2, i32: uncompressedPageSize)
        w.field(3, i32: compressedPageSize)
        if let crc { w.field(4, i32: crc) }
        if let h = dataPageHeader {
            w.structField(5) { w in
                w.field(1, i32: h.numValues)
                w.field(2, i32: h.encoding.rawValue)
                w.field(3, i32: h.definitionLevelEncoding.rawValue)
                w.field(4, i32: h.repetitionLevelEncoding.rawValue)
                if let s = h.statistics { w.structField(5) { s.encode(&$0) } }
            }
        }
        if let h = dictionaryPageHeader {
            w.structField(7) { w in
                w.field(1, i32: h.numValues)
                w.field(2, i32: h.encoding.rawValue)
                if let sorted = h.isSorted { w.field(3, bool: sorted) }
            }
        }
        if let h = dataPageHeaderV2 {
            w.structField(8) { w in
                w.field(1, i32: h.numValues)
                w.field(2, i32: h.numNulls)
                w.field(3, i32: h.numRows)
                w.field(4, i32: h.encoding.rawValue)
                w.field(5, i32: h.definitionLevelsByteLength)
                w.field(6, i32: h.repetitionLevelsByteLength)
                w.field(7, bool: h.isCompressed)
                if let s = h.statistics { w.structField(8) { s.encode(&$0) } }
            }
        }
    }

    /// The header as a complete top-level Thrift struct.
    func serialized(using w: inout ThriftCompactWriter) -> [UInt8] {
        w.reset()
        encode(&w)
        w.stop()
        return w.bytes
    }

    static func decode(_ r: inout ThriftCompactReader) throws -> ParquetPageHeader {
        var h = ParquetPageHeader(type: .init(rawValue: -1), uncompressedPageSize: -1, compressedPageSize: -1)
        var seen = (type: false, uncompressed: false, compressed: false)
        try r.readStruct { r, id, type in
            switch id {
            case 1: try r.expect(type, .i32, "PageHeader.type"); h.type = .init(rawValue: try r.readI32()); seen.type = true
            case 2: try r.expect(type, .i32, "PageHeader.uncompressed_page_size"); h.uncompressedPageSize = try r.readI32(); seen.uncompressed = true
            case 3: try r.expect(type, .i32, "PageHeader.compressed_page_size"); h.compressedPageSize = try r.readI32(); seen.compressed = true
            case 4: try r.expect(type, .i32, "PageHeader.crc"); h.crc = try r.readI32()
            case 5: try r.expect(type, .structure, "PageHeader.data_page_header"); h.dataPageHeader = try decodeV1(&r)
            case 7: try r.expect(type, .structure, "PageHeader.dictionary_page_header"); h.dictionaryPageHeader = try decodeDictionary(&r)
            case 8: try r.expect(type, .structure, "PageHeader.data_page_header_v2"); h.dataPageHeaderV2 = try decodeV2(&r)
            default: return false
            }
            return true
        }
        guard seen.type, seen.uncompressed, seen.compressed else {
            throw ParquetFormatError("page header lacks its type or sizes")
        }
        guard h.uncompressedPageSize >= 0, h.compressedPageSize >= 0 else {
            throw ParquetFormatError("page header has a negative size")
        }
        return h
    }

    private static func decodeV1(_ r: inout ThriftCompactReader) throws -> ParquetDataPageHeader {
        var h = ParquetDataPageHeader(numValues: -1, encoding: .plain, definitionLevelEncoding: .rle, repetitionLevelEncoding: .rle)
        try r.readStruct { r, id, type in
            switch id {
            case 1: try r.expect(type, .i32, "DataPageHeader.num_values"); h.numValues = try r.readI32()
            case 2: try r.expect(type, .i32, "DataPageHeader.encoding"); h.encoding = .init(rawValue: try r.readI32())
            case 3: try r.expect(type, .i32, "DataPageHeader.definition_level_encoding"); h.definitionLevelEncoding = .init(rawValue: try r.readI32())
            case 4: try r.expect(type, .i32, "DataPageHeader.repetition_level_encoding"); h.repetitionLevelEncoding = .init(rawValue: try r.readI32())
            case 5: try r.expect(type, .structure, "DataPageHeader.statistics"); h.statistics = try ParquetStatistics.decode(&r)
            default: return false
            }
            return true
        }
        guard h.numValues >= 0 else { throw ParquetFormatError("data page header without a valid num_values") }
        return h
    }

    private static func decodeV2(_ r: inout ThriftCompactReader) throws -> ParquetDataPageHeaderV2 {
        var h = ParquetDataPageHeaderV2(
            numValues: -1, numNulls: -1, numRows: -1, encoding: .plain,
            definitionLevelsByteLength: -1, repetitionLevelsByteLength: -1)
        try r.readStruct { r, id, type in
            switch id {
            case 1: try r.expect(type, .i32, "DataPageHeaderV2.num_values"); h.numValues = try r.readI32()
            case 2: try r.expect(type, .i32, "DataPageHeaderV2.num_nulls"); h.numNulls = try r.readI32()
            case 3: try r.expect(type, .i32, "DataPageHeaderV2.num_rows"); h.numRows = try r.readI32()
            case 4: try r.expect(type, .i32, "DataPageHeaderV2.encoding"); h.encoding = .init(rawValue: try r.readI32())
            case 5: try r.expect(type, .i32, "DataPageHeaderV2.definition_levels_byte_length"); h.definitionLevelsByteLength = try r.readI32()
            case 6: try r.expect(type, .i32, "DataPageHeaderV2.repetition_levels_byte_length"); h.repetitionLevelsByteLength = try r.readI32()
            case 7: h.isCompressed = try r.boolValue(type)
            case 8: try r.expect(type, .structure, "DataPageHeaderV2.statistics"); h.statistics = try ParquetStatistics.decode(&r)
            default: return false
            }
            return true
        }
        guard h.numValues >= 0, h.numNulls >= 0, h.numNulls <= h.numValues,
            h.definitionLevelsByteLength >= 0, h.repetitionLevelsByteLength >= 0
        else {
            throw ParquetFormatError("data page v2 header has missing or negative counts")
        }
        return h
    }

    private static func decodeDictionary(_ r: inout ThriftCompactReader) throws -> ParquetDictionaryPageHeader {
        var h = ParquetDictionaryPageHeader(numValues: -1, encoding: .plain)
        try r.readStruct { r, id, type in
            switch id {
            case 1: try r.expect(type, .i32, "DictionaryPageHeader.num_values"); h.numValues = try r.readI32()
            case 2: try r.expect(type, .i32, "DictionaryPageHeader.encoding"); h.encoding = .init(rawValue: try r.readI32())
            case 3: h.isSorted = try r.boolValue(type)
            default: return false
            }
            return true
        }
        guard h.numValues >= 0 else { throw ParquetFormatError("dictionary page header without a valid num_values") }
        return h
    }
}
