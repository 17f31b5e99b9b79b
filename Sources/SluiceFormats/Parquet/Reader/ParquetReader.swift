import SluiceCore

/// What a Parquet footer says about the file.
public struct ParquetMetadata: Sendable, Hashable {
    public struct RowGroup: Sendable, Hashable {
        public var rows: Int
        /// Uncompressed size of the row group's column data.
        public var totalByteSize: Int
    }

    public var rows: Int
    public var rowGroups: [RowGroup]
    public var keyValue: [String: String]
    public var createdBy: String?
}

/// Reads flat Parquet files (one leaf column per field) into record batches, one per row group.
///
/// Reads what ``ParquetWriter`` writes and files from other writers for the same types: PLAIN,
/// dictionary (PLAIN_DICTIONARY, RLE_DICTIONARY), RLE and BIT_PACKED levels, RLE booleans, the
/// DELTA encodings and BYTE_STREAM_SPLIT; data pages v1 and v2; uncompressed, snappy, gzip and zstd.
/// INT32 and unsigned integers widen to int64 (UINT64 to decimal(20,0)), FLOAT to float64, timestamps
/// of any unit (and INT96) to microseconds. Malformed files raise a ``ParquetError`` naming the file.
public final class ParquetReader {
    public let path: String
    public let schema: Schema
    public let metadata: ParquetMetadata
    private let input: any ParquetInput
    let fileMetaData: ParquetFileMetaData
    private let leaves: [ParquetLeafColumn]
    /// Where the footer starts; column data must end before it.
    private let dataEnd: Int
    private let decompressor = ParquetDecompressor()

    /// Opens the file at `path` and reads its footer.
    public convenience init(path: String) throws {
        try self.init(input: ParquetFileInput(path: path))
    }

    /// Reads a file held in memory; `name` is used in error messages.
    public convenience init(bytes: [UInt8], name: String = "<memory>") throws {
        try self.init(input: ParquetMemoryInput(bytes: bytes, name: name))
    }

    init(input: any ParquetInput) throws {
        self.input = input
        path = input.name
        func malformed(_ message: String) -> ParquetError { ParquetError(.malformed, path: input.name, message) }

        let size = input.size
        guard size >= 12 else {
            throw malformed("not a Parquet file: \(size) bytes is too short (at least 12 are needed)")
        }
        let head = try input.read(offset: 0, count: 4)
        let tail = try input.read(offset: size - 8, count: 8)
        if Array(tail[4...]) == Array("PARE".utf8) {
            throw ParquetError(.unsupported, path: input.name, "encrypted Parquet files are not supported")
        }
        guard head == ParquetWriter.magic else {
            throw malformed("not a Parquet file: it does not start with PAR1")
        }
        guard Array(tail[4...]) == ParquetWriter.magic else {
            throw malformed("not a Parquet file or truncated: it does not end with PAR1")
        }
        let footerLength = Int(UInt32(tail[0]) | UInt32(tail[1]) << 8 | UInt32(tail[2]) << 16 | UInt32(tail[3]) << 24)
        guard footerLength > 0, footerLength <= size - 12 else {
            throw malformed("footer length \(footerLength) does not fit a file of \(size) bytes")
        }
        dataEnd = size - 8 - footerLength
        let footer = try input.read(offset: dataEnd, count: footerLength)
        var reader = ThriftCompactReader(footer)
        let meta: ParquetFileMetaData
        do { meta = try ParquetFileMetaData.decode(&reader) } catch let e as ParquetFormatError {
            throw e.unsupported ? ParquetError(.unsupported, path: input.name, e.message) : malformed("corrupt footer: \(e.message)")
        }
        guard !meta.isEncrypted else {
            throw ParquetError(.unsupported, path: input.name, "encrypted Parquet files are not supported")
        }
        fileMetaData = meta

        // Flat schemas only: the root and one leaf per column.
        let root = meta.schema[0]
        let children = meta.schema.dropFirst()
        if let nested = children.first(where: { ($0.numChildren ?? 0) > 0 }) {
            throw ParquetError(.unsupported, path: input.name, "column \(nested.name) is a nested group; only flat schemas are supported")
        }
        guard Int(root.numChildren ?? 0) == children.count else {
            throw malformed("corrupt footer: the schema root has \(root.numChildren ?? 0) children but \(children.count) columns follow")
        }
        var derived: [ParquetLeafColumn] = []
        do {
            for element in children { derived.append(try ParquetLeafColumn(element)) }
        } catch let e as ParquetFormatError {
            throw ParquetError(e.unsupported ? .unsupported : .malformed, path: input.name, e.message)
        }
        var keyValue: [String: String] = [:]
        for kv in meta.keyValueMetadata ?? [] { keyValue[kv.key] = kv.value ?? "" }
        if let text = keyValue[SluiceSchemaMetadata.key], let stored = SluiceSchemaMetadata.decode(text),
            stored.count == derived.count
        {
            let typed = zip(derived, stored.fields).compactMap { ParquetLeafColumn($0, as: $1) }
            leaves = typed.count == derived.count ? typed : derived
        } else {
            leaves = derived
        }
        schema = Schema(leaves.map(\.field))

        for (g, group) in meta.rowGroups.enumerated() {
            guard group.columns.count == leaves.count else {
                throw malformed("corrupt footer: row group \(g) has \(group.columns.count) column chunks for \(leaves.count) columns")
            }
        }
        let total = meta.rowGroups.reduce(Int64(0)) { $0 + $1.numRows }
        guard total == meta.numRows else {
            throw malformed("corrupt footer: row groups hold \(total) rows but the file says \(meta.numRows)")
        }
        metadata = ParquetMetadata(
            rows: Int(meta.numRows),
            rowGroups: meta.rowGroups.map { .init(rows: Int($0.numRows), totalByteSize: Int($0.totalByteSize)) },
            keyValue: keyValue, createdBy: meta.createdBy)
    }

    public var rowGroupCount: Int { fileMetaData.rowGroups.count }

    /// Reads row group `index` as one batch.
    public func readRowGroup(_ index: Int) throws -> RecordBatch {
        guard index >= 0 && index < fileMetaData.rowGroups.count else {
            throw ParquetError(.invalidData, path: path, "row group \(index) does not exist (the file has \(rowGroupCount))")
        }
        let group = fileMetaData.rowGroups[index]
        var columns: [Column] = []
        for (c, chunk) in group.columns.enumerated() {
            let leaf = leaves[c]
            do {
                columns.append(try readChunk(chunk, leaf: leaf, rows: Int(group.numRows)))
            } catch let e as ParquetFormatError {
                throw ParquetError(
                    e.unsupported ? .unsupported : .malformed, path: path,
                    "row group \(index), column \(leaf.field.name): \(e.message)")
            }
        }
        return RecordBatch(schema: schema, columns: columns)
    }

    /// Reads every row group, in order.
    public func readAll() throws -> [RecordBatch] {
        try (0..<rowGroupCount).map(readRowGroup)
    }

    private func readChunk(_ chunk: ParquetColumnChunk, leaf: ParquetLeafColumn, rows: Int) throws -> Column {
        guard chunk.filePath == nil else {
            throw ParquetFormatError("column data in another file (\(chunk.filePath!)) is not supported", unsupported: true)
        }
        guard !chunk.isEncrypted else { throw ParquetFormatError("encrypted columns are not supported", unsupported: true) }
        guard let meta = chunk.metaData else { throw ParquetFormatError("column chunk without metadata") }
        guard meta.type == leaf.physicalType else {
            throw ParquetFormatError("column chunk is \(meta.type) but the schema says \(leaf.physicalType)")
        }
        var start = meta.dataPageOffset
        if let d = meta.dictionaryPageOffset, d >= 4, d < start { start = d }
        let length = meta.totalCompressedSize
        guard start >= 4, length >= 0, start <= Int64(dataEnd), length <= Int64(dataEnd) - start else {
            throw ParquetFormatError("column chunk at offset \(start) with \(length) bytes lies outside the data area (4..<\(dataEnd))")
        }
        guard meta.dataPageOffset >= start, meta.dataPageOffset - start <= length else {
            throw ParquetFormatError("data page offset \(meta.dataPageOffset) lies outside its column chunk (\(start)..<\(start + length))")
        }
        guard meta.numValues == Int64(rows) else {
            throw ParquetFormatError("column chunk has \(meta.numValues) values for \(rows) rows")
        }
        let bytes = try input.read(offset: Int(start), count: Int(length))
        let reader = ParquetColumnChunkReader(leaf: leaf, codec: meta.codec, decompressor: decompressor)
        return try reader.read(bytes, numValues: Int(meta.numValues), rows: rows)
    }
}
