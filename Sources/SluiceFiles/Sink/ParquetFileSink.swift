import Foundation
import Logging
import SluiceCore
import SluiceFormats
import SluiceObjectStore

/// Writes a Parquet lake: Hive-style partition directories, large files, exactly once.
///
/// Small batches are buffered into large files (no flood of tiny files): a file is closed when
/// it reaches `target_file_size` (estimated from the in-memory size of its rows) or
/// `max_file_age`, and every commit publishes the files closed since the last one. Each file
/// is written under a hidden temporary name, fsynced, recorded as an intent together with
/// the checkpoint, then renamed and its directory fsynced; on start, pending intents are
/// finished and orphans deleted. A batch whose schema differs starts a new file.
///
/// ```yaml
/// sink:
///   parquet: { path: lake/events, partition_by: "day(created_at)", compression: zstd }
/// ```
public struct ParquetFileSink: Sink {
    /// Local directories and object storage; a replay's files are named `<prefix>_replay-…`
    /// (see ``SinkContext/replay``).
    public var deadLetterReplay: DeadLetterReplaySupport { .stagedFiles }
    public func checkReachable() async throws {
        try await ObjectPublisher.checkWritable(directory, storage: storage)
    }

    public var directory: String
    public var partition: PartitionSpec?
    public var writerOptions: ParquetWriterOptions
    public var targetFileSize: Int
    public var maxFileAge: Duration
    public var maxOpenFiles: Int
    public var prefix: String
    /// How an `s3://` path is reached.
    public var storage: StorageConfig = StorageConfig()
    /// `lifecycle:`: tiering and retention of the lake's partitions (`sluice lifecycle run`).
    public var lifecyclePolicy: LifecyclePolicy?

    /// The lake's lifecycle: ``LakeLifecycle`` for a local one, ``ObjectLakeLifecycle`` in
    /// object storage.
    public var lifecycle: LakeLifecycleTarget? {
        let directory = self.directory
        if let location = try? ObjectLocation(parsing: directory) {
            let storage = self.storage
            @Sendable func lake(_ policy: LifecyclePolicy, _ now: Date) throws -> ObjectLakeLifecycle {
                let store = S3ObjectStore(
                    bucket: location.bucket, settings: try S3Settings.resolve(storage), logger: Logger(label: "sluice.lifecycle"),
                    userAgent: S3ObjectStore.lifecycleUserAgent)
                var lake = ObjectLakeLifecycle(root: location, store: store, policy: policy, now: now)
                lake.partSize = storage.partSize?.bytes ?? lake.partSize
                lake.parallelParts = storage.parallelParts ?? lake.parallelParts
                return lake
            }
            return LakeLifecycleTarget(
                policy: lifecyclePolicy, directory: directory,
                plan: { policy, now, _ in
                    let lake = try lake(policy, now)
                    do {
                        let actions = try await lake.plan()
                        await lake.store.shutdown()
                        return actions
                    } catch {
                        await lake.store.shutdown()
                        throw error
                    }
                },
                run: { policy, now, _, progress in
                    let lake = try lake(policy, now)
                    do {
                        let report = try await lake.run(progress: progress)
                        await lake.store.shutdown()
                        return report
                    } catch {
                        await lake.store.shutdown()
                        throw error
                    }
                })
        }
        let options = writerOptions
        return LakeLifecycleTarget(
            policy: lifecyclePolicy, directory: directory,
            plan: { policy, now, busy in LakeLifecycle(directory: directory, policy: policy, now: now, busy: busy, writerOptions: options).plan() },
            run: { policy, now, busy, progress in
                try LakeLifecycle(directory: directory, policy: policy, now: now, busy: busy, writerOptions: options).run(progress: progress)
            })
    }

    public init(
        directory: String, partition: PartitionSpec? = nil, writerOptions: ParquetWriterOptions = ParquetWriterOptions(),
        targetFileSize: Int = 256 << 20, maxFileAge: Duration = .seconds(300), maxOpenFiles: Int = 8,
        prefix: String = "part"
    ) {
        self.directory = directory
        self.partition = partition
        self.writerOptions = writerOptions
        self.targetFileSize = targetFileSize
        self.maxFileAge = maxFileAge
        self.maxOpenFiles = maxOpenFiles
        self.prefix = prefix
    }

    /// Options of the `parquet` sink; each one is declared, with its default, in ``ParquetFileSink/spec``.
    struct Options: Decodable {
        var path: String
        var partitionBy: String?
        var compression: String?
        var compressionLevel: Int?
        var targetFileSize: ConfigByteSize?
        var rowGroupSize: ConfigByteSize?
        var pageSize: ConfigByteSize?
        var maxFileAge: ConfigDuration?
        var maxOpenFiles: Int?
        var threads: Int?
        var prefix: String?
        var lifecycle: LifecycleOptions?

        struct LifecycleOptions: Decodable {
            var tierAfter: ConfigDuration?
            var tierLevel: Int?
            var deleteAfter: ConfigDuration?
            var compact: Bool?
            var targetFileSize: ConfigByteSize?

            enum CodingKeys: String, CodingKey {
                case compact
                case tierAfter = "tier_after"
                case tierLevel = "tier_level"
                case deleteAfter = "delete_after"
                case targetFileSize = "target_file_size"
            }
        }

        enum CodingKeys: String, CodingKey {
            case path, compression, prefix, lifecycle, threads
            case partitionBy = "partition_by"
            case compressionLevel = "compression_level"
            case targetFileSize = "target_file_size"
            case rowGroupSize = "row_group_size"
            case pageSize = "page_size"
            case maxFileAge = "max_file_age"
            case maxOpenFiles = "max_open_files"
        }
    }

    public static let spec = ComponentSpec(
        type: "parquet",
        summary: "a Parquet lake (zstd/snappy/gzip), Hive-style partitions, large files, committed exactly once",
        options: [
            OptionSpec(
                "path", .string, required: true, example: "lake/events",
                "The lake directory, created if missing, relative to the working directory; or `s3://bucket/prefix` (see `storage`)."),
            OptionSpec(
                "partition_by", .string, example: #""day(created_at)""#,
                "Hive-style directories by a column (`country=DE/`) or by `day(col)`, `hour(col)`, `month(col)` or `year(col)` of a timestamp or date (`created_at_day=2026-11-25/`). NULL and the empty string go to `__HIVE_DEFAULT_PARTITION__` (read back as NULL); rows lacking the column are dead-lettered."
            ),
            OptionSpec(
                "compression", .choice(["zstd", "snappy", "gzip", "none", "uncompressed"]), default: "zstd", example: "snappy",
                "The page codec; `none` and `uncompressed` are the same."),
            OptionSpec(
                "compression_level", .integer(1...22), example: "6",
                "zstd: 1–22 (default 3); gzip: 1–9 (default 6). Refused with `snappy` or `none`."),
            OptionSpec(
                "target_file_size", .byteSize, default: "256MB", example: "512MB",
                "Commit once the rows in open files reach this in-memory size (files come out several times smaller, compressed); less than 1KB counts as 1KB."),
            OptionSpec(
                "row_group_size", .byteSize, default: "128MB", example: "64MB",
                "Uncompressed estimate of a row group's size; less than 1KB counts as 1KB."),
            OptionSpec(
                "page_size", .byteSize, default: "1MB", example: "512KB",
                "Data page size; less than 1KB counts as 1KB."),
            OptionSpec(
                "threads", .integer(1...256), example: "2",
                "Threads that encode and compress the columns of a batch at once, largest columns first (default: the processors this process may use, at most 8). The files' bytes are the same with any number."
            ),
            OptionSpec(
                "max_file_age", .duration, default: "5m", example: "1m",
                "Close and commit open files at least this often."),
            OptionSpec(
                "max_open_files", .integer(), default: "8", example: "16",
                "Partitions written at once (at least 1); past it the oldest file is closed. Each open file holds roughly 10–20 MB of buffers."),
            OptionSpec(
                "prefix", .string, default: "part", example: "events",
                "File names are `<prefix>-<run>-<n>.parquet` (`<prefix>_replay-…` for `sluice dlq replay`); a plain name (no `/`, not starting with `.`)."),
            OptionSpec(
                "lifecycle",
                .object([
                    OptionSpec(
                        "tier_after", .duration, example: "30d", "Partitions older than this (by their newest file) are rewritten with zstd at `tier_level`."),
                    OptionSpec("tier_level", .integer(1...22), default: "19", example: "15", "The zstd level of tiered files."),
                    OptionSpec("delete_after", .duration, example: "365d", "Partitions older than this are deleted."),
                    OptionSpec(
                        "compact", .boolean, default: "false", example: "true",
                        "Rewrite each partition's small files (under 3/4 of `target_file_size`) into files of about `target_file_size`; the partition is swapped for its compacted copy atomically."
                    ),
                    OptionSpec("target_file_size", .byteSize, default: "128MB", example: "256MB", "The file size compaction aims at (on disk)."),
                ]), example: "{ compact: true, tier_after: 30d, delete_after: 365d }",
                "What `sluice lifecycle run` does to the lake: compaction of small files (local lakes), and tiering and retention of partitions as they age (see the operations guide)."
            ),
        ],
        example: """
            sink:
              parquet: { path: lake/events, partition_by: "day(created_at)", compression: zstd }
            """,
        exampleFile: "examples/parquet-lake.yaml"
    )

    public static let factory = SinkFactory(spec: spec) { config, context in
        let o = try config.decodeOptions(Options.self)
        var sink = ParquetFileSink(directory: context.resolve(o.path))
        sink.storage = context.storage
        try ObjectPublisher.checkPath(o.path, in: config)
        if let p = o.partitionBy {
            guard let spec = PartitionSpec(parsing: p) else {
                throw config.error("partition_by must be a column or day(col), hour(col), month(col), year(col); found '\(p)'", key: "partition_by")
            }
            sink.partition = spec
        }
        if let c = o.compression {
            guard let codec = ParquetCompression(parsing: c) else {
                throw config.error("unknown compression '\(c)'; use zstd, snappy, gzip or none", key: "compression")
            }
            sink.writerOptions.compression = codec
        }
        if let l = o.lifecycle {
            if let level = l.tierLevel, !(1...22).contains(level) { throw config.error("zstd levels are 1 to 22", key: "lifecycle.tier_level") }
            if o.path.contains("://") && l.compact == true { throw config.error(LifecyclePolicy.noCompactionInObjectStorage, key: "lifecycle.compact") }
            if let size = l.targetFileSize, size.bytes < 1 << 20 {
                throw config.error("compaction's target file size must be at least 1MB", key: "lifecycle.target_file_size")
            }
            sink.lifecyclePolicy = LifecyclePolicy(
                tierAfter: l.tierAfter?.duration, tierLevel: l.tierLevel ?? 19, deleteAfter: l.deleteAfter?.duration, compact: l.compact ?? false,
                targetFileSize: l.targetFileSize?.bytes ?? 128 << 20)
        }
        if let level = o.compressionLevel {
            switch sink.writerOptions.compression {
            case .zstd:
                guard (1...22).contains(level) else { throw config.error("zstd levels are 1 to 22", key: "compression_level") }
                sink.writerOptions.zstdLevel = level
            case .gzip:
                guard (1...9).contains(level) else { throw config.error("gzip levels are 1 to 9", key: "compression_level") }
                sink.writerOptions.gzipLevel = level
            default:
                throw config.error("compression_level applies to zstd and gzip only", key: "compression_level")
            }
        }
        if let s = o.targetFileSize { sink.targetFileSize = max(s.bytes, 1024) }
        if let s = o.rowGroupSize { sink.writerOptions.rowGroupBytes = max(s.bytes, 1024) }
        if let s = o.pageSize { sink.writerOptions.pageBytes = max(s.bytes, 1024) }
        if let n = o.threads {
            guard (1...256).contains(n) else { throw config.error("threads must be 1 to 256", key: "threads") }
            sink.writerOptions.threads = n
        }
        if let a = o.maxFileAge { sink.maxFileAge = a.duration }
        if let n = o.maxOpenFiles {
            guard n >= 1 else { throw config.error("max_open_files must be at least 1", key: "max_open_files") }
            sink.maxOpenFiles = n
        }
        if let p = o.prefix {
            guard !p.isEmpty, !p.contains("/"), !p.hasPrefix(".") else {
                throw config.error("the prefix must be a plain file-name prefix (no '/', not starting with '.')", key: "prefix")
            }
            sink.prefix = p
        }
        return sink
    }

    public func makeWriter(context: SinkContext) async throws -> any SinkWriter {
        var sink = self
        sink.prefix = FileNaming.prefix(prefix, context: context)
        let publisher = try await ObjectPublisher.prepare(
            directory: directory, storage: storage, filePrefix: sink.prefix, context: context, lock: LakeLock(root: directory))
        return ParquetFileWriter(sink: sink, context: context, publisher: publisher)
    }
}
