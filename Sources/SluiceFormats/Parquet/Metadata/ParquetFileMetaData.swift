/// `KeyValue` metadata entry.
struct ParquetKeyValue: Sendable, Hashable {
    var key: String
    var value: String?

    func encode(_ w: inout ThriftCompactWriter) {
        w.field(1, string: key)
        if let value { w.field(2, string: value) }
    }

    static func decode(_ r: inout ThriftCompactReader) throws -> ParquetKeyValue {
        var kv = ParquetKeyValue(key: "", value: nil)
        try r.readStruct { r, id, type in
            switch id {
            case 1: try r.expect(type, .binary, "KeyValue.key"); kv.key = try r.readString()
            case 2: try r.expect(type, .binary, "KeyValue.value"); kv.value = try r.readString()
            default: return false
            }
            return true
        }
        return kv
    }
}

/// `RowGroup`.
struct ParquetRowGroup: Sendable, Hashable {
    var columns: [ParquetColumnChunk]
    var totalByteSize: Int64
    var numRows: Int64
    var fileOffset: Int64?
    var totalCompressedSize: Int64?
    var ordinal: Int16?

    func encode(_ w: inout ThriftCompactWriter) {
        w.field(1, structList: columns.count) { columns[$1].encode(&$0) }
        w.field(2, i64: totalByteSize)
        w.field(3, i64: numRows)
        if let fileOffset { w.field(5, i64: fileOffset) }
        if let totalCompressedSize { w.field(6, i64: totalCompressedSize) }
        if let ordinal { w.field(7, i16: ordinal) }
    }

    static func decode(_ r: inout ThriftCompactReader) throws -> ParquetRowGroup {
        var g = ParquetRowGroup(columns: [], totalByteSize: 0, numRows: -1)
        try r.readStruct { r, id, type in
            switch id {
            case 1:
                try r.expect(type, .list, "RowGroup.columns")
                g.columns = try r.readList("columns", .structure) { try ParquetColumnChunk.decode(&$0) }
            case 2: try r.expect(type, .i64, "RowGroup.total_byte_size"); g.totalByteSize = try r.readI64()
            case 3: try r.expect(type, .i64, "RowGroup.num_rows"); g.numRows = try r.readI64()
            case 5: try r.expect(type, .i64, "RowGroup.file_offset"); g.fileOffset = try r.readI64()
            case 6: try r.expect(type, .i64, "RowGroup.total_compressed_size"); g.totalCompressedSize = try r.readI64()
            case 7: try r.expect(type, .i16, "RowGroup.ordinal"); g.ordinal = try r.readI16()
            default: return false
            }
            return true
        }
        guard g.numRows >= 0 else { throw ParquetFormatError("row group without a valid num_rows") }
        return g
    }
}

/// `FileMetaData`: the footer.
struct ParquetFileMetaData: Sendable, Hashable {
    var version: Int32 = 1
    var schema: [ParquetSchemaElement]
    var numRows: Int64
    var rowGroups: [ParquetRowGroup]
    var keyValueMetadata: [ParquetKeyValue]?
    var createdBy: String?
    /// Number of leaf columns to declare TYPE_ORDER for (`column_orders`); 0 writes none.
    var typeDefinedOrderColumns = 0
    var isEncrypted = false

    func encode(_ w: inout ThriftCompactWriter) {
        w.field(1, i32: version)
        w.field(2, structList: schema.count) { schema[$1].encode(&$0) }
        w.field(3, i64: numRows)
        w.field(4, structList: rowGroups.count) { rowGroups[$1].encode(&$0) }
        if let kv = keyValueMetadata { w.field(5, structList: kv.count) { kv[$1].encode(&$0) } }
        if let createdBy { w.field(6, string: createdBy) }
        if typeDefinedOrderColumns > 0 {
            // ColumnOrder union, member 1 = TypeDefinedOrder (empty struct).
            w.field(7, structList: typeDefinedOrderColumns) { w, _ in w.structField(1) { _ in } }
        }
    }

    func serialized() -> [UInt8] {
        var w = ThriftCompactWriter(capacity: 1024)
        encode(&w)
        w.stop()
        return w.bytes
    }

    static func decode(_ r: inout ThriftCompactReader) throws -> ParquetFileMetaData {
        var m = ParquetFileMetaData(schema: [], numRows: -1, rowGroups: [])
        try r.readStruct { r, id, type in
            switch id {
            case 1: try r.expect(type, .i32, "FileMetaData.version"); m.version = try r.readI32()
            case 2:
                try r.expect(type, .list, "FileMetaData.schema")
                m.schema = try r.readList("schema", .structure) { try ParquetSchemaElement.decode(&$0) }
            case 3: try r.expect(type, .i64, "FileMetaData.num_rows"); m.numRows = try r.readI64()
            case 4:
                try r.expect(type, .list, "FileMetaData.row_groups")
                m.rowGroups = try r.readList("row_groups", .structure) { try ParquetRowGroup.decode(&$0) }
            case 5:
                try r.expect(type, .list, "FileMetaData.key_value_metadata")
                m.keyValueMetadata = try r.readList("key_value_metadata", .structure) { try ParquetKeyValue.decode(&$0) }
            case 6: try r.expect(type, .binary, "FileMetaData.created_by"); m.createdBy = try r.readString()
            case 8, 9: m.isEncrypted = true; return false
            default: return false
            }
            return true
        }
        guard !m.schema.isEmpty, m.numRows >= 0 else {
            throw ParquetFormatError("file metadata lacks a schema or a row count")
        }
        return m
    }
}
