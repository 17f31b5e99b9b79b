import Foundation
import Logging
import SluiceCore
import SluiceFormats
import SluiceObjectStore

/// Writes NDJSON files into a directory, exactly once.
///
/// Records go to a hidden temporary file that rolls by size or age. At each commit the
/// file is fsynced and recorded as an intent together with the checkpoint; after the state
/// commit it is renamed to its final name and the directory fsynced. On start, intents a
/// crash left pending are finished and unreferenced temporary files are deleted, so every
/// record is in exactly one visible file.
///
/// ```yaml
/// sink:
///   ndjson: { path: out/events, max_file_size: 128MB, max_file_age: 60s }
/// ```
public struct NDJSONFileSink: Sink {
    /// Local directories and object storage (see ``ParquetFileSink/deadLetterReplay``).
    public var deadLetterReplay: DeadLetterReplaySupport { .stagedFiles }
    public func checkReachable() async throws {
        try await ObjectPublisher.checkWritable(directory, storage: storage)
    }

    /// How an `s3://` path is reached.
    public var storage = StorageConfig()

    public var directory: String
    public var maxFileSize: Int
    public var maxFileAge: Duration
    public var prefix: String
    /// How NULL values are written: left out (the default) or as `null`.
    public var nulls: NDJSONEncoder.Nulls

    public init(
        directory: String, maxFileSize: Int = 128 << 20, maxFileAge: Duration = .seconds(60), prefix: String = "part",
        nulls: NDJSONEncoder.Nulls = .omit
    ) {
        self.directory = directory
        self.maxFileSize = maxFileSize
        self.maxFileAge = maxFileAge
        self.prefix = prefix
        self.nulls = nulls
    }

    /// Options of the `ndjson` sink; each one is declared, with its default, in ``NDJSONFileSink/spec``.
    struct Options: Decodable {
        var path: String
        var maxFileSize: ConfigByteSize?
        var maxFileAge: ConfigDuration?
        var prefix: String?
        var nulls: String?

        enum CodingKeys: String, CodingKey {
            case path, prefix, nulls
            case maxFileSize = "max_file_size"
            case maxFileAge = "max_file_age"
        }
    }

    public static let spec = ComponentSpec(
        type: "ndjson",
        summary: "NDJSON files in a directory, rolled by size and age, committed exactly once",
        options: [
            OptionSpec(
                "path", .string, required: true, example: "out/events",
                "The output directory, created if missing, relative to the working directory; or `s3://bucket/prefix` (see `storage`)."),
            OptionSpec(
                "max_file_size", .byteSize, default: "128MB", example: "64MB",
                "Roll to a new file once the open one reaches this size (at least 1KB)."),
            OptionSpec(
                "max_file_age", .duration, default: "60s", example: "5m",
                "…or once it is this old; each roll is one atomic commit."),
            OptionSpec(
                "prefix", .string, default: "part", example: "events",
                "File names are `<prefix>-<run>-<n>.ndjson` (`<prefix>_replay-…` for `sluice dlq replay`); a plain name (no `/`, not starting with `.`)."),
            OptionSpec(
                "nulls", .choice(["omit", "write"]), default: "omit", example: "write",
                "`omit` leaves a NULL field out of its line, so a line holds only the fields with values; `write` writes every column of the batch, NULL as `null` (a fixed set of keys per batch). A field sent as `null` and a field not sent are the same NULL once decoded, so both read back alike."
            ),
        ],
        example: """
            sink:
              ndjson: { path: out/events, max_file_size: 128MB, max_file_age: 60s }
            """,
        exampleFile: "examples/file-to-ndjson.yaml"
    )

    public static let factory = SinkFactory(spec: spec) { config, context in
        let o = try config.decodeOptions(Options.self)
        if let p = o.prefix, p.isEmpty || p.contains("/") || p.hasPrefix(".") {
            throw config.error("the prefix must be a plain file-name prefix (no '/', not starting with '.')", key: "prefix")
        }
        if let size = o.maxFileSize, size.bytes < 1024 {
            throw config.error("max_file_size must be at least 1KB", key: "max_file_size")
        }
        var nulls = NDJSONEncoder.Nulls.omit
        if let n = o.nulls {
            guard let parsed = NDJSONEncoder.Nulls(rawValue: n) else { throw config.error("unknown nulls '\(n)'; use omit or write", key: "nulls") }
            nulls = parsed
        }
        try ObjectPublisher.checkPath(o.path, in: config)
        var sink = NDJSONFileSink(
            directory: context.resolve(o.path), maxFileSize: o.maxFileSize?.bytes ?? 128 << 20,
            maxFileAge: o.maxFileAge?.duration ?? .seconds(60), prefix: o.prefix ?? "part", nulls: nulls)
        sink.storage = context.storage
        return sink
    }

    public func makeWriter(context: SinkContext) async throws -> any SinkWriter {
        var sink = self
        sink.prefix = FileNaming.prefix(prefix, context: context)
        let publisher = try await ObjectPublisher.prepare(directory: directory, storage: storage, filePrefix: sink.prefix, context: context)
        return NDJSONFileWriter(sink: sink, context: context, publisher: publisher)
    }
}

/// The writer of ``NDJSONFileSink``.
final class NDJSONFileWriter: SinkWriter {
    let sink: NDJSONFileSink
    let context: SinkContext
    let encoder: NDJSONEncoder
    var file: DurableFile?
    var fileRecords = 0
    var openedAt = ContinuousClock.now
    var prepared: [FileIntent] = []
    let runStamp: String
    var sequence = 0
    /// Set when the output is in object storage: files are spooled locally, then uploaded.
    let publisher: ObjectPublisher?

    init(sink: NDJSONFileSink, context: SinkContext, publisher: ObjectPublisher?) {
        self.sink = sink
        self.context = context
        self.publisher = publisher
        encoder = NDJSONEncoder(nulls: sink.nulls)
        runStamp = FileCommit.runStamp()
    }

    func write(_ batch: RecordBatch) async throws -> [RowFailure] {
        if file == nil {
            let name = FileCommit.tempName(pipeline: context.pipeline, unique: "\(runStamp)-\(sequence)")
            file = try DurableFile(creating: publisher?.spoolPath(name) ?? (sink.directory as NSString).appendingPathComponent(name))
            openedAt = .now
            fileRecords = 0
        }
        let f = file!
        encoder.encode(batch, into: &f.buffer)
        fileRecords += batch.count
        // The batch is in the file's buffer now: a write failure here must not make the runtime
        // write it again. It stays buffered and the error surfaces (and is retried) at commit.
        do {
            try f.flushIfLarge()
        } catch {
            context.logger.warning("writing output failed; will retry at the commit", metadata: ["error": "\(error)"])
        }
        return []
    }

    var commitInterval: Duration { sink.maxFileAge }

    func commitDue(at now: ContinuousClock.Instant) -> Bool {
        guard let file else { return false }
        return file.size >= sink.maxFileSize || now - openedAt >= sink.maxFileAge
    }

    func prepareCommit(_ commit: inout StateCommit) async throws {
        if let f = file, fileRecords > 0 {
            sequence += 1
            let name = "\(sink.prefix)-\(runStamp)-\(String(format: "%06d", sequence)).ndjson"
            if let publisher {
                try f.flush()
                prepared.append(try await publisher.upload(spoolPath: f.path, size: f.size, to: name, records: fileRecords))
            } else {
                try f.sync()
                // The temporary file's directory entry must be durable before the intent names it.
                try DurableFile.syncDirectory(sink.directory)
                let final = (sink.directory as NSString).appendingPathComponent(name)
                prepared.append(FileIntent(tempPath: f.path, finalPath: final, records: fileRecords, bytes: f.size))
            }
            file = nil
        }
        commit.fileIntents += prepared
    }

    func finishCommit() async throws {
        if let publisher {
            try await publisher.publish(prepared, pipeline: context.pipeline, state: context.state)
        } else {
            try await FileCommit.publish(prepared, root: sink.directory, pipeline: context.pipeline, state: context.state)
        }
        prepared.removeAll()
    }

    func abortCommit() async {
        // Refused by the state store, so no intent names these files.
        if let publisher {
            await publisher.abort(prepared)
        } else {
            for intent in prepared { unlink(intent.tempPath) }
        }
        prepared.removeAll()
    }

    func close() async {
        // Uncommitted output is discarded; it will be written again from the checkpoint.
        if let f = file { unlink(f.path) }
        file = nil
        await publisher?.shutdown()
    }
}
