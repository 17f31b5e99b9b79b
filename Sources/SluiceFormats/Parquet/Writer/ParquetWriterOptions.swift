import SluiceCore

/// Page compression of a Parquet file.
public enum ParquetCompression: String, Sendable, CaseIterable {
    case uncompressed, snappy, gzip, zstd

    /// Parses a configuration value (`none` is accepted for `uncompressed`).
    public init?(parsing text: String) {
        let name = text.lowercased()
        if name == "none" { self = .uncompressed; return }
        self.init(rawValue: name)
    }

    var codec: ParquetCodec {
        switch self {
        case .uncompressed: .uncompressed
        case .snappy: .snappy
        case .gzip: .gzip
        case .zstd: .zstd
        }
    }
}

/// How ``ParquetWriter`` lays out a file.
public struct ParquetWriterOptions: Sendable {
    public var compression: ParquetCompression = .zstd
    /// zstd level (1…22); 3 is zstd's default.
    public var zstdLevel = 3
    /// gzip level (1…9).
    public var gzipLevel = 6
    /// A row group is written once the rows buffered for it reach this many bytes (uncompressed estimate).
    public var rowGroupBytes = 128 << 20
    /// …or this many rows, whichever comes first.
    public var rowGroupRows = Int.max
    /// A data page is cut once its encoded values reach about this many bytes.
    public var pageBytes = 1 << 20
    /// Dictionary encoding is used while a column chunk's dictionary stays under this many bytes;
    /// past it the rest of the chunk is written PLAIN.
    public var dictionaryPageLimit = 1 << 20
    /// Whether to try dictionary encoding at all (byte-array, int, date, timestamp and double columns).
    public var dictionaryEnabled = true
    /// Keys of the footer's metadata the writer writes itself (``keyValueMetadata`` may not).
    public static let reservedMetadataKeys: Set<String> = [SluiceSchemaMetadata.key]
    /// Extra key-value metadata stored in the footer (the key `sluice.schema` is reserved).
    public var keyValueMetadata: [String: String] = [:]
    /// Threads that encode and compress the columns of a batch at once (1: the calling thread
    /// only). The file's bytes do not depend on it. Default: the processors this process may use, at most 8.
    public var threads = ParallelLanes.defaultThreads
    /// The footer's `created_by`.
    public var createdBy = "sluice version \(SluiceVersion.current)"

    public init(
        compression: ParquetCompression = .zstd, zstdLevel: Int = 3, rowGroupBytes: Int = 128 << 20,
        pageBytes: Int = 1 << 20, dictionaryPageLimit: Int = 1 << 20, keyValueMetadata: [String: String] = [:]
    ) {
        self.compression = compression
        self.zstdLevel = zstdLevel
        self.rowGroupBytes = rowGroupBytes
        self.pageBytes = pageBytes
        self.dictionaryPageLimit = dictionaryPageLimit
        self.keyValueMetadata = keyValueMetadata
    }

    var compressionLevel: Int32 {
        switch compression {
        case .zstd: Int32(zstdLevel)
        case .gzip: Int32(gzipLevel)
        default: 0
        }
    }
}

/// What ``ParquetWriter/close()`` wrote.
public struct ParquetFileSummary: Sendable, Hashable {
    public var rows: Int
    public var rowGroups: Int
    /// Size of the file in bytes.
    public var bytes: Int
    /// Sum of the column chunks' uncompressed sizes (pages and headers).
    public var uncompressedBytes: Int
}
