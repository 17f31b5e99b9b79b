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

/// Reads Parquet files into record batches, one per row group. A flat column becomes a column
/// of its type; a nested one (LIST, MAP, STRUCT, a repeated field) a `json` column holding each
/// row's value as JSON text (see ``ParquetNestedColumn`` and ``NestedRecordAssembler``).
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
    /// How each field is read.
    let plans: [ParquetColumnPlan]
    /// The leaf columns of all fields, one per column chunk, in file order.
    let leaves: [ParquetLeafColumn]
    /// Where the footer starts; column data must end before it.
    private let dataEnd: Int
    private let decompressor: ParquetDecompressor

    /// Opens the file at `path` and reads its footer.
    public convenience init(path: String) throws {
        try self.init(input: ParquetFileInput(path: path))
    }

    /// Opens the file at `path` reusing `other`'s decompression context (a zstd context is
    /// ~100 KB to set up): for reading many small files one after the other on one thread.
    public convenience init(path: String, sharingContextWith other: ParquetReader) throws {
        try self.init(input: ParquetFileInput(path: path), decompressor: other.decompressor)
    }

    /// The footer of a Parquet file of `size` bytes whose last bytes are `tail` (an object's
    /// suffix range, fetched without its data), or nil when the footer is longer than `tail`
    /// (``footerLength(tail:)`` says how much to fetch).
    public static func metadata(name: String, size: Int, tail: [UInt8]) throws -> ParquetMetadata? {
        guard let length = footerLength(tail: tail) else {
            throw ParquetError(.malformed, path: name, "not a Parquet file: it does not end with PAR1")
        }
        guard length + 8 <= tail.count else { return nil }
        return try ParquetReader(input: ParquetTailInput(name: name, size: size, tail: tail)).metadata
    }

    /// The footer's length from the file's last 8 bytes (the end of `tail`), nil when they are
    /// not a Parquet file's end.
    public static func footerLength(tail: [UInt8]) -> Int? {
        guard tail.count >= 8, Array(tail.suffix(4)) == ParquetWriter.magic else { return nil }
        let t = Array(tail.suffix(8))
        return Int(UInt32(t[0]) | UInt32(t[1]) << 8 | UInt32(t[2]) << 16 | UInt32(t[3]) << 24)
    }

    /// Reads a file held in memory; `name` is used in error messages.
    public convenience init(bytes: [UInt8], name: String = "<memory>") throws {
        try self.init(input: ParquetMemoryInput(bytes: bytes, name: name))
    }

    init(input: any ParquetInput, decompressor: ParquetDecompressor = ParquetDecompressor()) throws {
        self.input = input
        self.decompressor = decompressor
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

        // One plan per top-level field: a flat column, or a nested one read as JSON text.
        var derived: [ParquetColumnPlan]
        do {
            derived = try ParquetColumnPlan.plans(ParquetSchemaTree.parse(meta.schema))
        } catch let e as ParquetFormatError {
            throw e.unsupported ? ParquetError(.unsupported, path: input.name, e.message) : malformed("corrupt footer: \(e.message)")
        }
        var keyValue: [String: String] = [:]
        for kv in meta.keyValueMetadata ?? [] { keyValue[kv.key] = kv.value ?? "" }
        // The Sluice schema a Sluice writer stored (flat files only) restores json and binary types.
        if let text = keyValue[SluiceSchemaMetadata.key], let stored = SluiceSchemaMetadata.decode(text),
            stored.count == derived.count
        {
            let typed = zip(derived, stored.fields).compactMap { plan, field -> ParquetColumnPlan? in
                guard case let .flat(leaf) = plan else { return nil }
                return ParquetLeafColumn(leaf, as: field).map { .flat($0) }
            }
            if typed.count == derived.count { derived = typed }
        }
        plans = derived
        leaves = derived.flatMap(\.leaves)
        schema = Schema(derived.map(\.field))

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
        let rows = Int(group.numRows)
        var columns: [Column] = []
        var chunk = 0
        for plan in plans {
            do {
                switch plan {
                case let .flat(leaf):
                    let (bytes, meta) = try chunkBytes(group.columns[chunk], leaf: leaf)
                    guard meta.numValues == Int64(rows) else {
                        throw ParquetFormatError("column chunk has \(meta.numValues) values for \(rows) rows")
                    }
                    let reader = ParquetColumnChunkReader(leaf: leaf, codec: meta.codec, decompressor: decompressor)
                    columns.append(try reader.read(bytes, numValues: Int(meta.numValues), rows: rows))
                case let .nested(nested):
                    columns.append(try readNested(nested, group.columns[chunk..<(chunk + nested.leaves.count)], rows: rows))
                }
            } catch let e as ParquetFormatError {
                throw ParquetError(
                    e.unsupported ? .unsupported : .malformed, path: path,
                    "row group \(index), column \(plan.field.name): \(e.message)")
            }
            chunk += plan.leaves.count
        }
        return RecordBatch(schema: schema, columns: columns)
    }

    /// Reads the leaves of a nested column and assembles its rows as JSON text.
    private func readNested(_ nested: ParquetNestedColumn, _ chunks: ArraySlice<ParquetColumnChunk>, rows: Int) throws -> Column {
        var levels: [ParquetLeafLevels] = []
        for (leaf, chunk) in zip(nested.leaves, chunks) {
            do {
                let (bytes, meta) = try chunkBytes(chunk, leaf: leaf)
                let reader = ParquetColumnChunkReader(leaf: leaf, codec: meta.codec, decompressor: decompressor)
                let leafLevels = try reader.readLevels(bytes, numValues: Int(meta.numValues))
                guard leafLevels.rows == rows else {
                    throw ParquetFormatError("column holds \(leafLevels.rows) rows but its row group has \(rows)")
                }
                levels.append(leafLevels)
            } catch let e as ParquetFormatError {
                throw ParquetFormatError("leaf \(leaf.field.name): \(e.message)", unsupported: e.unsupported)
            }
        }
        var assembler = try NestedRecordAssembler(shape: nested.shape, leaves: levels)
        return try assembler.column(rows: rows)
    }

    /// Reads every row group, in order.
    public func readAll() throws -> [RecordBatch] {
        try (0..<rowGroupCount).map(readRowGroup)
    }

    /// The bytes of a column chunk, checked against the file and the leaf, and its metadata.
    private func chunkBytes(_ chunk: ParquetColumnChunk, leaf: ParquetLeafColumn) throws -> ([UInt8], ParquetColumnMetaData) {
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
        guard meta.numValues >= 0 else { throw ParquetFormatError("column chunk has \(meta.numValues) values") }
        return (try input.read(offset: Int(start), count: Int(length)), meta)
    }
}
