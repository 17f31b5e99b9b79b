import SluiceCore

/// Writes record batches as a Parquet file (flat schema: one leaf column per field).
///
/// Rows are buffered per row group as encoded, compressed pages; a row group is written once its
/// rows reach `rowGroupBytes` (uncompressed estimate) or `rowGroupRows`, cutting batches where
/// needed. `close()` writes the footer. A writer that failed part-way refuses further calls.
///
/// ```swift
/// let output = try ParquetFileOutput(path: "events.parquet")
/// let writer = try ParquetWriter(schema: schema, output: output)
/// try writer.write(batch)
/// let summary = try writer.close()
/// try output.close()
/// ```
public final class ParquetWriter {
    public static let magic: [UInt8] = Array("PAR1".utf8)

    public let schema: Schema
    public let options: ParquetWriterOptions
    let output: any ParquetOutput
    let specs: [ParquetColumnSpec]
    let columns: [ParquetColumnWriter]
    let resources: ParquetWriterResources
    private var rowGroups: [ParquetRowGroup] = []
    private var groupRows = 0
    private var groupBytes = 0
    private var totalRows = 0
    private var uncompressedBytes = 0
    private var state = State.open

    private enum State { case open, closed, failed }

    /// - Parameter resources: page scratch buffers and codec context to share with other writers
    ///   used from the same task (a new set when nil or when its codec differs).
    public init(
        schema: Schema, options: ParquetWriterOptions = .init(), output: any ParquetOutput,
        resources: ParquetWriterResources? = nil
    ) throws {
        self.schema = schema
        self.options = options
        self.output = output
        guard options.keyValueMetadata[SluiceSchemaMetadata.key] == nil else {
            throw ParquetError(.invalidData, path: output.name, "the metadata key \(SluiceSchemaMetadata.key) is reserved")
        }
        guard !schema.fields.isEmpty else {
            throw ParquetError(.invalidData, path: output.name, "a Parquet file needs at least one column")
        }
        guard Set(schema.fields.map(\.name)).count == schema.count else {
            throw ParquetError(.invalidData, path: output.name, "duplicate column names in \(schema)")
        }
        specs = schema.fields.map(ParquetColumnSpec.init)
        let shared = resources.flatMap { $0.fits(options) ? $0 : nil } ?? ParquetWriterResources(options: options)
        self.resources = shared
        columns = specs.map { ParquetColumnWriter(spec: $0, options: options, resources: shared) }
        do {
            try Self.magic.withUnsafeBytes { try output.write($0) }
        } catch {
            state = .failed
            throw error
        }
    }

    /// Appends the rows of `batch`, whose schema must equal the writer's.
    public func write(_ batch: RecordBatch) throws {
        try checkOpen()
        try validate(batch)
        guard batch.count > 0 else { return }
        do {
            let perRow = max(1, batch.byteSize / batch.count)
            var start = 0
            while start < batch.count {
                let byBytes = max(1, (options.rowGroupBytes - groupBytes + perRow - 1) / perRow)
                let byRows = max(1, options.rowGroupRows - groupRows)
                let n = min(batch.count - start, byBytes, byRows)
                try appendColumns(batch, range: start..<(start + n))
                groupRows += n
                groupBytes += n * perRow
                totalRows += n
                start += n
                if groupBytes >= options.rowGroupBytes || groupRows >= options.rowGroupRows {
                    try writeRowGroup()
                }
            }
        } catch {
            state = .failed
            throw wrap(error)
        }
    }

    /// Slices of fewer rows are encoded on the calling thread: handing them out costs more than it saves.
    static let parallelMinimumRows = 1024

    /// Appends `range` of every column, on ``ParquetWriterOptions/threads`` threads at once
    /// when there are enough rows: each column is one piece of work (largest first), and each
    /// thread cuts pages with its own scratch and codec context. The file is the same either way.
    private func appendColumns(_ batch: RecordBatch, range: Range<Int>) throws {
        let lanes = min(options.threads, columns.count)
        guard lanes > 1, range.count >= Self.parallelMinimumRows else {
            for (c, column) in batch.columns.enumerated() { try columns[c].append(column, range: range) }
            return
        }
        resources.prepareLanes(lanes)
        let order = batch.columns.indices.sorted { Self.weight(batch.columns[$0], range) > Self.weight(batch.columns[$1], range) }
        try ParallelLanes.run(order, lanes: lanes) { c, lane in
            let writer = columns[c]
            writer.resources = resources.lane(lane)
            try writer.append(batch.columns[c], range: range)
        }
    }

    /// Roughly how much work encoding `range` of `column` is: its bytes.
    private static func weight(_ column: Column, _ range: Range<Int>) -> Int {
        if case let .bytes(offsets, _) = column.storage { return range.count * 4 + Int(offsets[range.upperBound] - offsets[range.lowerBound]) }
        return range.count * 8
    }

    /// Writes the rows buffered so far as a row group now (no-op when there are none).
    public func flushRowGroup() throws {
        try checkOpen()
        do { try writeRowGroup() } catch {
            state = .failed
            throw wrap(error)
        }
    }

    /// Writes the last row group and the footer. The output itself is left open.
    @discardableResult
    public func close() throws -> ParquetFileSummary {
        try checkOpen()
        do {
            try writeRowGroup()
            try writeFooter()
            state = .closed
        } catch {
            state = .failed
            throw wrap(error)
        }
        return ParquetFileSummary(
            rows: totalRows, rowGroups: rowGroups.count, bytes: output.offset,
            uncompressedBytes: uncompressedBytes)
    }

    // MARK: Internals

    private func checkOpen() throws {
        switch state {
        case .open: return
        case .closed: throw ParquetError(.invalidData, path: output.name, "the Parquet writer is already closed")
        case .failed: throw ParquetError(.invalidData, path: output.name, "the Parquet writer failed earlier and cannot continue")
        }
    }

    private func wrap(_ error: any Error) -> any Error {
        if let e = error as? ParquetFormatError {
            return ParquetError(e.unsupported ? .unsupported : .io, path: output.name, e.message)
        }
        return error
    }

    /// Checks a batch before any of it is appended, so a rejected batch leaves the writer usable.
    private func validate(_ batch: RecordBatch) throws {
        guard batch.schema == schema else {
            throw ParquetError(.invalidData, path: output.name, "batch schema \(batch.schema) differs from the file's \(schema)")
        }
        for (c, column) in batch.columns.enumerated() {
            let field = schema.fields[c]
            if !field.nullable && column.nullCount > 0 {
                throw ParquetError(.invalidData, path: output.name, "column \(field.name) is not nullable but has \(column.nullCount) nulls")
            }
            guard column.type == field.type else {
                throw ParquetError(.invalidData, path: output.name, "column \(field.name) holds \(column.type), expected \(field.type)")
            }
            let matches: Bool =
                switch (specs[c].kind, column.storage) {
                case (.boolean, .bool), (.int64, .int64), (.int32, .int32), (.double, .float64), (.bytes, .bytes),
                    (.decimalInt64, .decimal), (.decimalFixed, .decimal):
                    true
                default: false
                }
            guard matches else {
                throw ParquetError(.invalidData, path: output.name, "column \(field.name) has storage that does not match \(field.type)")
            }
            if case let .bytes(offsets, data) = column.storage {
                guard offsets.count == column.count + 1, (offsets.first ?? 0) >= 0,
                    Int(offsets.last ?? 0) <= data.count
                else {
                    throw ParquetError(.invalidData, path: output.name, "column \(field.name) has inconsistent offsets")
                }
            }
            if case let .decimal(values) = column.storage, case let .decimal(precision, _) = field.type {
                var limit: Int128 = 1
                for _ in 0..<precision { limit *= 10 }
                for (i, v) in values.enumerated() where (v >= limit || v <= -limit) && !column.isNull(i) {
                    throw ParquetError(
                        .invalidData, path: output.name,
                        "column \(field.name) row \(i): \(v) does not fit decimal(\(precision))")
                }
            }
        }
    }

    private func writeRowGroup() throws {
        guard groupRows > 0 else { return }
        try finishPages()
        let start = output.offset
        var chunks: [ParquetColumnChunk] = []
        var total: Int64 = 0
        var totalCompressed: Int64 = 0
        for column in columns {
            let chunk = try column.writeChunk(to: output)
            total += chunk.metaData!.totalUncompressedSize
            totalCompressed += chunk.metaData!.totalCompressedSize
            chunks.append(chunk)
        }
        rowGroups.append(
            ParquetRowGroup(
                columns: chunks, totalByteSize: total, numRows: Int64(groupRows), fileOffset: Int64(start),
                totalCompressedSize: totalCompressed, ordinal: Int16(truncatingIfNeeded: rowGroups.count)))
        uncompressedBytes += Int(total)
        groupRows = 0
        groupBytes = 0
    }

    /// Cuts every column's last page and dictionary page, on ``ParquetWriterOptions/threads``
    /// threads at once (largest first), so that only writing the row group is left to one thread.
    private func finishPages() throws {
        let lanes = min(options.threads, columns.count)
        guard lanes > 1, groupRows >= Self.parallelMinimumRows else { return }
        resources.prepareLanes(lanes)
        let order = columns.indices.sorted { columns[$0].pendingBytes > columns[$1].pendingBytes }
        try ParallelLanes.run(order, lanes: lanes) { c, lane in
            let writer = columns[c]
            writer.resources = resources.lane(lane)
            try writer.finishPages()
        }
    }

    private func writeFooter() throws {
        var root = ParquetSchemaElement(name: "schema")
        root.numChildren = Int32(specs.count)
        var keyValues = [ParquetKeyValue(key: SluiceSchemaMetadata.key, value: SluiceSchemaMetadata.encode(schema))]
        for key in options.keyValueMetadata.keys.sorted() {
            keyValues.append(ParquetKeyValue(key: key, value: options.keyValueMetadata[key]))
        }
        var meta = ParquetFileMetaData(schema: [root] + specs.map(\.element), numRows: Int64(totalRows), rowGroups: rowGroups)
        meta.keyValueMetadata = keyValues
        meta.createdBy = options.createdBy
        meta.typeDefinedOrderColumns = specs.count
        var footer = meta.serialized()
        let length = UInt32(footer.count)
        for i in 0..<4 { footer.append(UInt8(truncatingIfNeeded: length >> (8 * UInt32(i)))) }
        footer.append(contentsOf: Self.magic)
        try footer.withUnsafeBytes { try output.write($0) }
    }
}
