/// `PageEncodingStats`: how many pages of a type use an encoding.
struct ParquetPageEncodingStats: Sendable, Hashable {
    var pageType: ParquetPageType
    var encoding: ParquetEncoding
    var count: Int32
}

/// `ColumnMetaData` of one column chunk.
struct ParquetColumnMetaData: Sendable, Hashable {
    var type: ParquetPhysicalType
    var encodings: [ParquetEncoding]
    var pathInSchema: [String]
    var codec: ParquetCodec
    var numValues: Int64
    var totalUncompressedSize: Int64
    var totalCompressedSize: Int64
    var keyValueMetadata: [ParquetKeyValue]?
    var dataPageOffset: Int64
    var indexPageOffset: Int64?
    var dictionaryPageOffset: Int64?
    var statistics: ParquetStatistics?
    var encodingStats: [ParquetPageEncodingStats]?

    func encode(_ w: inout ThriftCompactWriter) {
        w.field(1, i32: type.rawValue)
        w.field(2, i32List: encodings.map(\.rawValue))
        w.field(3, stringList: pathInSchema)
        w.field(4, i32: codec.rawValue)
        w.field(5, i64: numValues)
        w.field(6, i64: totalUncompressedSize)
        w.field(7, i64: totalCompressedSize)
        if let kv = keyValueMetadata { w.field(8, structList: kv.count) { kv[$1].encode(&$0) } }
        w.field(9, i64: dataPageOffset)
        if let indexPageOffset { w.field(10, i64: indexPageOffset) }
        if let dictionaryPageOffset { w.field(11, i64: dictionaryPageOffset) }
        if let statistics { w.structField(12) { statistics.encode(&$0) } }
        if let stats = encodingStats {
            w.field(13, structList: stats.count) { w, i in
                w.field(1, i32: stats[i].pageType.rawValue)
                w.field(2, i32: stats[i].encoding.rawValue)
                w.field(3, i32: stats[i].count)
            }
        }
    }

    static func decode(_ r: inout ThriftCompactReader) throws -> ParquetColumnMetaData {
        var m = ParquetColumnMetaData(
            type: .boolean, encodings: [], pathInSchema: [], codec: .uncompressed, numValues: -1,
            totalUncompressedSize: -1, totalCompressedSize: -1, dataPageOffset: -1)
        var sawType = false
        try r.readStruct { r, id, type in
            switch id {
            case 1:
                try r.expect(type, .i32, "ColumnMetaData.type")
                let raw = try r.readI32()
                guard let t = ParquetPhysicalType(rawValue: raw) else { throw ParquetFormatError("unknown physical type \(raw)") }
                m.type = t
                sawType = true
            case 2:
                try r.expect(type, .list, "ColumnMetaData.encodings")
                m.encodings = try r.readList("encodings", .i32) { ParquetEncoding(rawValue: try $0.readI32()) }
            case 3:
                try r.expect(type, .list, "ColumnMetaData.path_in_schema")
                m.pathInSchema = try r.readList("path_in_schema", .binary) { try $0.readString() }
            case 4: try r.expect(type, .i32, "ColumnMetaData.codec"); m.codec = .init(rawValue: try r.readI32())
            case 5: try r.expect(type, .i64, "ColumnMetaData.num_values"); m.numValues = try r.readI64()
            case 6: try r.expect(type, .i64, "ColumnMetaData.total_uncompressed_size"); m.totalUncompressedSize = try r.readI64()
            case 7: try r.expect(type, .i64, "ColumnMetaData.total_compressed_size"); m.totalCompressedSize = try r.readI64()
            case 8:
                try r.expect(type, .list, "ColumnMetaData.key_value_metadata")
                m.keyValueMetadata = try r.readList("key_value_metadata", .structure) { try ParquetKeyValue.decode(&$0) }
            case 9: try r.expect(type, .i64, "ColumnMetaData.data_page_offset"); m.dataPageOffset = try r.readI64()
            case 10: try r.expect(type, .i64, "ColumnMetaData.index_page_offset"); m.indexPageOffset = try r.readI64()
            case 11: try r.expect(type, .i64, "ColumnMetaData.dictionary_page_offset"); m.dictionaryPageOffset = try r.readI64()
            case 12: try r.expect(type, .structure, "ColumnMetaData.statistics"); m.statistics = try ParquetStatistics.decode(&r)
            case 13:
                try r.expect(type, .list, "ColumnMetaData.encoding_stats")
                m.encodingStats = try r.readList("encoding_stats", .structure) { r in
                    var s = ParquetPageEncodingStats(pageType: .dataPage, encoding: .plain, count: 0)
                    try r.readStruct { r, id, type in
                        guard type == ThriftCompactType.i32.rawValue else { return false }
                        switch id {
                        case 1: s.pageType = .init(rawValue: try r.readI32())
                        case 2: s.encoding = .init(rawValue: try r.readI32())
                        case 3: s.count = try r.readI32()
                        default: return false
                        }
                        return true
                    }
                    return s
                }
            default: return false
            }
            return true
        }
        guard sawType, m.numValues >= 0, m.totalCompressedSize >= 0, m.dataPageOffset >= 0 else {
            throw ParquetFormatError("column metadata lacks its type, value count, size or data page offset")
        }
        return m
    }
}

/// `ColumnChunk`: where a column's data for one row group is.
struct ParquetColumnChunk: Sendable, Hashable {
    var filePath: String?
    var fileOffset: Int64 = 0
    var metaData: ParquetColumnMetaData?
    var isEncrypted = false

    func encode(_ w: inout ThriftCompactWriter) {
        if let filePath { w.field(1, string: filePath) }
        w.field(2, i64: fileOffset)
        if let metaData { w.structField(3) { metaData.encode(&$0) } }
    }

    static func decode(_ r: inout ThriftCompactReader) throws -> ParquetColumnChunk {
        var c = ParquetColumnChunk()
        try r.readStruct { r, id, type in
            switch id {
            case 1: try r.expect(type, .binary, "ColumnChunk.file_path"); c.filePath = try r.readString()
            case 2: try r.expect(type, .i64, "ColumnChunk.file_offset"); c.fileOffset = try r.readI64()
            case 3: try r.expect(type, .structure, "ColumnChunk.meta_data"); c.metaData = try ParquetColumnMetaData.decode(&r)
            case 8, 9: c.isEncrypted = true; return false
            default: return false
            }
            return true
        }
        return c
    }
}
