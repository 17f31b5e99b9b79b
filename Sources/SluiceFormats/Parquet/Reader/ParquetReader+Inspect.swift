import SluiceCore

/// What `sluice inspect` shows about a Parquet file: like `parquet-tools meta`.
public struct ParquetFileReport: Sendable {
    public struct ColumnChunk: Sendable {
        public var column: String
        public var physicalType: String
        public var encodings: [String]
        public var codec: String
        public var values: Int64
        public var compressedBytes: Int64
        public var uncompressedBytes: Int64
        public var nullCount: Int64?
        public var min: String?
        public var max: String?
    }

    public struct RowGroup: Sendable {
        public var rows: Int64
        public var uncompressedBytes: Int64
        public var compressedBytes: Int64
        public var columns: [ColumnChunk]
    }

    public var path: String
    public var schema: Schema
    public var rows: Int
    public var createdBy: String?
    public var keyValue: [String: String]
    public var rowGroups: [RowGroup]
    /// The Parquet structure of each nested field (read as `json`), by field name, e.g.
    /// `list<struct<a: int64, b: string>>`.
    public var nestedTypes: [String: String] = [:]
}

extension ParquetReader {
    /// Describes the file's footer: schema, row groups, column chunks, codecs and statistics.
    public func report() -> ParquetFileReport {
        let groups = fileMetaData.rowGroups.map { group in
            let chunks = group.columns.enumerated().map { index, chunk -> ParquetFileReport.ColumnChunk in
                let m = chunk.metaData
                let field = index < leaves.count ? leaves[index].field : nil
                let stats = m?.statistics
                return ParquetFileReport.ColumnChunk(
                    column: m?.pathInSchema.joined(separator: ".") ?? field?.name ?? "?",
                    physicalType: m.map { "\($0.type)" } ?? "?",
                    encodings: m?.encodings.map { "\($0)" } ?? [],
                    codec: m.map { "\($0.codec)" } ?? "?",
                    values: m?.numValues ?? 0,
                    compressedBytes: m?.totalCompressedSize ?? 0,
                    uncompressedBytes: m?.totalUncompressedSize ?? 0,
                    nullCount: stats?.nullCount,
                    min: (stats?.minValue ?? stats?.min).flatMap { Self.render($0, type: field?.type, physical: m?.type) },
                    max: (stats?.maxValue ?? stats?.max).flatMap { Self.render($0, type: field?.type, physical: m?.type) })
            }
            return ParquetFileReport.RowGroup(
                rows: group.numRows, uncompressedBytes: group.totalByteSize,
                compressedBytes: chunks.reduce(0) { $0 + $1.compressedBytes }, columns: chunks)
        }
        var nested: [String: String] = [:]
        for case let .nested(column) in plans { nested[column.field.name] = column.typeDescription }
        return ParquetFileReport(
            path: path, schema: schema, rows: metadata.rows, createdBy: metadata.createdBy,
            keyValue: metadata.keyValue, rowGroups: groups, nestedTypes: nested)
    }

    /// A statistics value as text, decoded by the column's type. A decimal is shown as a decimal
    /// number whatever its physical type (INT32, INT64, or big-endian two's complement in a
    /// FIXED_LEN_BYTE_ARRAY or BYTE_ARRAY).
    static func render(_ bytes: [UInt8], type: DataType?, physical: ParquetPhysicalType?) -> String? {
        func littleEndian<T: FixedWidthInteger>(_: T.Type) -> T? {
            guard bytes.count == MemoryLayout<T>.size else { return nil }
            return bytes.reversed().reduce(T(0)) { $0 << 8 | T($1) }
        }
        if case let .decimal(_, scale) = type, physical == .fixedLenByteArray || physical == .byteArray, !bytes.isEmpty,
            let unscaled = try? bytes.withUnsafeBytes({ try DecimalBytes.load($0) })
        {
            return DecimalText.format(unscaled, scale: scale)
        }
        switch physical {
        case .boolean: return bytes.first.map { $0 != 0 ? "true" : "false" }
        case .int32:
            guard let v = littleEndian(UInt32.self).map({ Int32(bitPattern: $0) }) else { return nil }
            switch type {
            case .date: return TemporalText.formatDate(days: v)
            case let .decimal(_, scale): return DecimalText.format(Int128(v), scale: scale)
            default: return String(v)
            }
        case .int64:
            guard let v = littleEndian(UInt64.self).map({ Int64(bitPattern: $0) }) else { return nil }
            switch type {
            case .timestamp: return TemporalText.formatTimestamp(micros: v)
            case let .decimal(_, scale): return DecimalText.format(Int128(v), scale: scale)
            default: return String(v)
            }
        case .double: return littleEndian(UInt64.self).map { String(Double(bitPattern: $0)) }
        case .float: return littleEndian(UInt32.self).map { String(Float(bitPattern: $0)) }
        case .byteArray:
            if type == .binary { return bytes.prefix(32).map { String($0, radix: 16) }.joined() }
            let text = String(decoding: bytes, as: UTF8.self)
            return text.count > 48 ? String(text.prefix(45)) + "…" : text
        default:
            return bytes.count <= 32 ? "0x" + bytes.map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }.joined() : nil
        }
    }
}
