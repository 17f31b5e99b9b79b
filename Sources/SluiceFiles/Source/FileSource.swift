import Foundation
import Logging
import SluiceCore
import SluiceFormats
import SluiceObjectStore

/// Reads CSV or NDJSON files (plain, gzip or zstd) and Parquet files matched by a path, a glob or a directory.
///
/// Each file is a checkpoint partition: a file is read once, resumed mid-file from its
/// committed byte offset after a crash, and a file that changes after it was read is
/// reported, not re-ingested. With `watch`, new files are picked up as they appear.
public struct FileSource: Source {
    /// The input's fixed directory (before any wildcard) exists (a watched one may appear later).
    public func checkReachable() async throws {
        if let location = try ObjectLocation(parsing: pattern) {
            let listing = try ObjectListing(pattern: location, storage: storage, logger: Logger(label: "sluice.check"))
            do {
                let found = try await listing.list()
                await listing.shutdown()
                if found.isEmpty && !watch {
                    throw SluiceError(.io, "no objects match '\(pattern)'", location: pattern)
                }
            } catch {
                await listing.shutdown()
                throw error
            }
            return
        }
        guard !watch, !tail else { return }
        let fixed = pattern.split(separator: "/", omittingEmptySubsequences: false)
            .prefix { !$0.contains("*") && !$0.contains("?") && !$0.contains("[") }.joined(separator: "/")
        let path = fixed.count == pattern.count ? pattern : fixed
        guard FileManager.default.fileExists(atPath: path.isEmpty ? "/" : path) else {
            throw SluiceError(.io, "the input '\(pattern)' does not exist ('\(path)' is missing)", location: pattern)
        }
    }

    public enum Format: String, Sendable { case csv, ndjson, parquet }

    public var pattern: String
    public var format: Format?
    public var compression: InputCompression?
    public var csv: CSVOptions
    public var ndjson: NDJSONOptions
    public var watch: Bool
    public var pollInterval: Duration
    public var minAge: Duration
    /// Follow the files as they grow (``FileTailReader``): complete lines only, across rotation.
    public var tail = false
    /// With `tail`: the lines (after a CSV header) whose bytes identify a file.
    public var fingerprintLines = 1
    /// How an `s3://` path is reached.
    public var storage = StorageConfig()
    /// Threads decoding CSV and NDJSON at once (pieces of one file, or several files); 1 reads
    /// on the pipeline's own task only. Output does not depend on it.
    public var threads = ParallelLanes.defaultThreads

    public var isContinuous: Bool { watch || tail }

    /// A tailed file set is read as its files grow: after a crash, lines of different files
    /// may come in another order (each file's own lines keep theirs).
    public var replaysInOrder: Bool { !tail }

    public init(
        pattern: String, format: Format? = nil, compression: InputCompression? = nil,
        csv: CSVOptions = CSVOptions(), ndjson: NDJSONOptions = NDJSONOptions(),
        watch: Bool = false, pollInterval: Duration = .seconds(2), minAge: Duration = .seconds(1)
    ) {
        self.pattern = pattern
        self.format = format
        self.compression = compression
        self.csv = csv
        self.ndjson = ndjson
        self.watch = watch
        self.pollInterval = pollInterval
        self.minAge = minAge
    }

    public static let spec = ComponentSpec(
        type: "file",
        summary: "CSV, NDJSON (plain, .gz, .zst) or Parquet files from a path, glob or directory; each file read once, resumable mid-file",
        options: [
            OptionSpec(
                "path", .string, required: true, example: #""data/events/*.csv""#,
                "A file, a glob (`*`, `?`, `[...]`) or a directory (read recursively, hidden files skipped), relative to the working directory; or the same in object storage: `s3://bucket/prefix/*.csv` (see `storage`)."
            ),
            OptionSpec(
                "format", .choice(["csv", "tsv", "ndjson", "jsonl", "parquet"]), example: "csv",
                "The files' format. Default: from the extension (`.csv .tsv .txt .ndjson .jsonl .json .parquet`, before `.gz`/`.zst`)."),
            OptionSpec(
                "compression", .choice(["auto", "none", "gzip", "zstd"]), default: "auto", example: "gzip",
                "`auto` detects gzip and zstd from the first bytes."),
            OptionSpec("delimiter", .string, default: #"",""#, example: #""\t""#, "CSV: the field delimiter, one character (`\"\\t\"` for tab)."),
            OptionSpec(
                "header", .boolean, default: "true", example: "false",
                "CSV: the first row names the columns (else `column_1`, `column_2`, …)."),
            OptionSpec(
                "columns", .map(.string), example: #"{ id: int64, total: "decimal(12,2)" }"#,
                "Declared types by column name (bool, int64, float64, decimal(p,s), string, binary, date, timestamp, json); other columns are inferred."),
            OptionSpec(
                "infer_rows", .integer(1...1_000_000), default: "1000", example: "5000",
                "Rows sampled from the start of each file to infer column types."),
            OptionSpec(
                "batch_rows", .integer(1...1_000_000), default: "16384", example: "8192",
                "Rows per batch handed to the pipeline."),
            OptionSpec(
                "threads", .integer(1...256), example: "2",
                "CSV and NDJSON: threads that decode at once (default: the processors this process may use, at most 8; under `taskset -c 0`, one). A large file is cut at record boundaries into pieces decoded side by side, and small files are read several at a time; rows and dead letters come out in the same order as with `1`, and every checkpoint resumes exactly. An NDJSON file whose keys change mid-file is read in order from the first change on."
            ),
            OptionSpec("watch", .boolean, default: "false", example: "true", "Keep running and pick up new files as they appear."),
            OptionSpec("poll_interval", .duration, default: "2s", example: "10s", "With `watch`: how often to look for new files."),
            OptionSpec("min_age", .duration, default: "1s", example: "5s", "With `watch`: skip files modified more recently (still being written)."),
            OptionSpec(
                "tail", .boolean, default: "false", example: "true", requires: ["format: ndjson"],
                "Follow the files as they grow (application logs): read each complete line once, as it is written, and go on across rotation by rename and by copy-truncate. Files are known by a fingerprint of their first line, not by name; each one's offset is checkpointed. Needs `format` (csv, tsv or ndjson); plain files only (compressed ones are skipped); local paths only. `poll_interval` sets how often files are checked."
            ),
            OptionSpec(
                "fingerprint_lines", .integer(1...100), default: "1", example: "2", requires: ["tail: true", "format: ndjson"],
                "With `tail`: how many first lines (after a CSV header) identify a file. Raise it when files can start with the same line (a banner); a file is read once it has that many lines, or 8 KiB."
            ),
        ],
        example: """
            source:
              file: { path: "data/events/*.csv", format: csv }
            """,
        exampleFile: "examples/file-to-ndjson.yaml"
    )

    public static let factory = SourceFactory(spec: spec) { config, context in
        let o = try config.decodeOptions(FileSourceOptions.self)
        var source = FileSource(pattern: context.resolve(o.path))
        source.storage = context.storage
        try ObjectPublisher.checkPath(o.path, in: config)
        switch o.format {
        case "csv": source.format = .csv
        case "tsv": source.format = .csv; source.csv.delimiter = UInt8(ascii: "\t")
        case "ndjson", "jsonl": source.format = .ndjson
        case "parquet": source.format = .parquet
        default: source.format = nil
        }
        if let c = o.compression, c != "auto" { source.compression = InputCompression(rawValue: c) }
        if let d = o.delimiter { source.csv.delimiter = d == "\\t" ? UInt8(ascii: "\t") : d.utf8.first! }
        if let h = o.header { source.csv.header = h }
        if let fields = o.declaredFields { source.csv.columns = fields; source.ndjson.columns = fields }
        if let n = o.inferRows { source.csv.inferRows = n; source.ndjson.inferRows = n }
        if let n = o.batchRows { source.csv.batchRows = n; source.ndjson.batchRows = n }
        if let n = o.threads { source.threads = n }
        source.watch = o.watch ?? false
        source.pollInterval = o.pollInterval?.duration ?? .seconds(2)
        source.minAge = o.minAge?.duration ?? .seconds(1)
        source.tail = o.tail ?? false
        source.fingerprintLines = o.fingerprintLines ?? 1
        if let n = o.fingerprintLines, n != 1, !source.tail {
            throw config.error("`fingerprint_lines` applies only with `tail: true`", key: "fingerprint_lines")
        }
        if source.tail {
            if o.path.contains("://") {
                throw config.error("`tail` follows local files; objects in storage do not grow (use `watch` to pick up new ones)", key: "tail")
            }
            if o.watch == true {
                throw config.error("`tail` picks up new files by itself; drop `watch`", key: "watch")
            }
            if o.minAge != nil {
                throw config.error("`min_age` does not apply with `tail`: lines are read as soon as their newline is written", key: "min_age")
            }
            guard let format = source.format else {
                throw config.error("`tail` needs `format` (csv, tsv or ndjson): rotated files (app.log.1) do not tell it by their names", key: "tail")
            }
            if format == .parquet {
                throw config.error("`tail` reads lines; Parquet files are written whole (use `watch` to pick up new ones)", key: "tail")
            }
            if let c = source.compression, c != .none {
                throw config.error("`tail` reads plain files; compressed files are skipped (drop `compression`)", key: "compression")
            }
            if o.threads != nil {
                throw config.error("`threads` does not apply with `tail`: each file's new lines are read as they come", key: "threads")
            }
        }
        if source.format == nil, !o.path.contains("*"), !o.path.hasSuffix("/"), Self.format(ofPath: o.path) == nil,
            o.path.contains(".")
        {
            throw config.error("cannot tell the format from the file name '\(o.path)'; set `format: csv` or `format: ndjson`", key: "path")
        }
        return source
    }

    /// The format implied by a file name (`.csv`, `.tsv`, `.ndjson`, `.jsonl`, `.json`, before `.gz`/`.zst`).
    static func format(ofPath path: String) -> Format? {
        var name = path.lowercased()
        for suffix in [".gz", ".gzip", ".zst", ".zstd"] where name.hasSuffix(suffix) {
            name.removeLast(suffix.count)
        }
        if name.hasSuffix(".csv") || name.hasSuffix(".tsv") || name.hasSuffix(".txt") { return .csv }
        if name.hasSuffix(".ndjson") || name.hasSuffix(".jsonl") || name.hasSuffix(".json") { return .ndjson }
        if name.hasSuffix(".parquet") || name.hasSuffix(".pq") { return .parquet }
        return nil
    }

    public func makeReader(resumingFrom checkpoint: Checkpoint, context: SourceContext) async throws -> any SourceReader {
        if tail { return FileTailReader(source: self, checkpoint: checkpoint, context: context) }
        let objects = try ObjectLocation(parsing: pattern).map {
            try ObjectListing(
                pattern: $0, storage: storage, logger: context.logger, pipeline: context.pipeline, othersMayBeRunning: context.state.isShared,
                requests: context.requests)
        }
        return FileSourceReader(source: self, checkpoint: checkpoint, context: context, objects: objects)
    }

    /// True when `path` is read as Parquet (by `format:` or its extension).
    func isParquet(_ path: String) -> Bool { (format ?? Self.format(ofPath: path)) == .parquet }

    func makeDecoder(for path: String) throws -> any RecordDecoder {
        let lower = path.lowercased()
        guard let format = format ?? Self.format(ofPath: path) else {
            throw SluiceError(
                .configuration, "cannot tell the format of this file from its name; set `format: csv` or `format: ndjson`",
                location: path)
        }
        switch format {
        case .csv:
            var options = csv
            if self.format == nil, lower.hasSuffix(".tsv") || lower.contains(".tsv.") { options.delimiter = UInt8(ascii: "\t") }
            return CSVDecoder(options: options)
        case .ndjson:
            return NDJSONDecoder(options: ndjson)
        case .parquet:
            throw SluiceError(.internalError, "Parquet files are read with ParquetFileCursor", location: path)
        }
    }
}
