import Foundation
import SluiceCore
import SluiceFormats

/// The writer of ``ParquetFileSink``: one open file per partition directory (and schema).
final class ParquetFileWriter: SinkWriter {
    /// A Parquet file being written under a temporary name.
    final class OpenFile {
        let tempPath: String
        let finalPath: String
        let directory: String
        let output: ParquetFileOutput
        let writer: ParquetWriter
        let schema: Schema
        let openedAt = ContinuousClock.now
        var rows = 0
        var bytes = 0

        init(
            tempPath: String, finalPath: String, directory: String, schema: Schema, options: ParquetWriterOptions,
            resources: ParquetWriterResources
        ) throws {
            self.tempPath = tempPath
            self.finalPath = finalPath
            self.directory = directory
            self.schema = schema
            output = try ParquetFileOutput(path: tempPath)
            writer = try ParquetWriter(schema: schema, options: options, output: output, resources: resources)
        }
    }

    let sink: ParquetFileSink
    let context: SinkContext
    var open: [String: OpenFile] = [:]
    /// Page scratch and codec context shared by every open file (one per partition).
    let resources: ParquetWriterResources
    /// Files closed (footer written and fsynced) but not yet part of a commit.
    var closed: [FileIntent] = []
    /// Object storage: files finished in the spool, not uploaded yet (local path, relative key).
    var finished: [FileIntent] = []
    /// Files in the commit being published.
    var prepared: [FileIntent] = []
    let runStamp: String
    var sequence = 0
    /// Set when the lake is in object storage: files are spooled locally, then uploaded.
    let publisher: ObjectPublisher?
    /// A local lake's lock, held shared around each change to its directories (``LakeLock``).
    let lakeLock: LakeLock?

    init(sink: ParquetFileSink, context: SinkContext, publisher: ObjectPublisher?) {
        self.sink = sink
        self.context = context
        self.publisher = publisher
        lakeLock = publisher == nil ? LakeLock(root: sink.directory) : nil
        resources = ParquetWriterResources(options: sink.writerOptions)
        runStamp = FileCommit.runStamp()
    }

    var commitInterval: Duration { sink.maxFileAge }

    func write(_ batch: RecordBatch) async throws -> [RowFailure] {
        guard batch.count > 0 else { return [] }
        guard let spec = sink.partition else {
            try append(batch, to: "")
            return []
        }
        guard let index = batch.schema.index(of: spec.column) else {
            // Every row lacks the partition column: refuse them (dead letters), the pipeline goes on.
            let error = SluiceError(
                .schemaViolation,
                "the partition column '\(spec.column)' is not in the records "
                    + "(fields: \(batch.schema.fields.map(\.name).joined(separator: ", "))); fix `partition_by`")
            return (0..<batch.count).map { RowFailure(row: $0, error: error) }
        }
        let column = batch.columns[index]
        var groups: [String: [Int]] = [:]
        var order: [String] = []
        for row in 0..<batch.count {
            let dir = spec.directory(for: column, row: row)
            if groups[dir] == nil { order.append(dir) }
            groups[dir, default: []].append(row)
        }
        for dir in order { try append(batch.take(groups[dir]!), to: dir) }
        return []
    }

    func append(_ batch: RecordBatch, to partitionDirectory: String) throws {
        var file = open[partitionDirectory]
        if let f = file, f.schema != batch.schema {
            try close(partitionDirectory)
            file = nil
        }
        if file == nil {
            if open.count >= sink.maxOpenFiles, let oldest = open.min(by: { $0.value.openedAt < $1.value.openedAt })?.key {
                try close(oldest)
            }
            sequence += 1
            let name = "\(sink.prefix)-\(runStamp)-\(String(format: "%06d", sequence)).parquet"
            let dir: String
            let temp: String
            let final: String
            if let publisher {
                // In object storage: written to the spool, uploaded when closed.
                dir = partitionDirectory
                temp = publisher.spoolPath("\(sequence).parquet")
                final = partitionDirectory.isEmpty ? name : "\(partitionDirectory)/\(name)"
            } else {
                dir = partitionDirectory.isEmpty ? sink.directory : (sink.directory as NSString).appendingPathComponent(partitionDirectory)
                temp = (dir as NSString).appendingPathComponent(
                    FileCommit.tempName(pipeline: context.pipeline, unique: "\(runStamp)-\(sequence)"))
                final = (dir as NSString).appendingPathComponent(name)
            }
            do {
                // The directory and the file's name appear under the lake's lock (a compaction
                // swapping this partition copies the name, or runs after it is published).
                file = try FileCommit.holding(lakeLock) {
                    if publisher == nil { try DurableFile.makeDirectory(dir) }
                    return try OpenFile(
                        tempPath: temp, finalPath: final, directory: dir, schema: batch.schema, options: sink.writerOptions,
                        resources: resources)
                }
            } catch {
                _ = try? FileCommit.holding(lakeLock) { unlink(temp) }
                throw Self.fileFailure("cannot create a Parquet file", error, path: temp)
            }
            open[partitionDirectory] = file
        }
        let f = file!
        do {
            try f.writer.write(batch)
        } catch {
            // The file stays open until the writer closes, which discards it.
            throw Self.fileFailure("writing Parquet failed", error, path: f.tempPath)
        }
        f.rows += batch.count
        f.bytes += batch.byteSize
    }

    /// Writes the footer, fsyncs and moves the file to `closed` (it is published at the next
    /// commit); in object storage, to `finished`, uploaded by the next commit.
    func close(_ partitionDirectory: String) throws {
        guard let f = open.removeValue(forKey: partitionDirectory) else { return }
        do {
            try f.writer.close()
            if publisher == nil { try f.output.sync() }
            try f.output.close()
        } catch {
            // Half a footer: the file is of no use, and no longer among the open ones.
            _ = try? FileCommit.holding(lakeLock) { unlink(f.tempPath) }
            throw Self.fileFailure("finishing a Parquet file failed", error, path: f.tempPath)
        }
        let intent = FileIntent(tempPath: f.tempPath, finalPath: f.finalPath, records: f.rows, bytes: f.output.offset)
        if publisher != nil { finished.append(intent) } else { closed.append(intent) }
    }

    /// The error for a file this writer can no longer use. Its rows cannot be written again in
    /// place (the file's state after a partial write is unknown), so a transient cause (a full
    /// disk) makes the pipeline start over from the checkpoint; any other stops it.
    static func fileFailure(_ what: String, _ error: any Error, path: String) -> any Error {
        let cause = (error as? ParquetError)?.sluiceError ?? SluiceError.classify(error)
        let e = SluiceError(.io, "\(what): \(error)", location: path, retryable: cause.isRetryable, underlying: error)
        return cause.isRetryable ? StartOverFromCheckpoint(stage: "sink", cause: e) : e
    }

    /// Uploads finished spool files, each moved to `closed` once its parts are stored. A failed
    /// upload leaves it (and those after it) in `finished` for the commit's retry: no upload
    /// ever happens while a batch is half written.
    func uploadFinished(_ publisher: ObjectPublisher) async throws {
        while let f = finished.first {
            closed.append(try await publisher.upload(spoolPath: f.tempPath, size: f.bytes, to: f.finalPath, records: f.records))
            finished.removeFirst()
        }
    }

    /// A commit closes every open file (the checkpoint may only cover durable records), so it is
    /// due when the open files together reach the target size, or the oldest reaches its age.
    func commitDue(at now: ContinuousClock.Instant) -> Bool {
        !closed.isEmpty || !finished.isEmpty || open.values.reduce(0) { $0 + $1.bytes } >= sink.targetFileSize
            || open.values.contains { now - $0.openedAt >= sink.maxFileAge }
    }

    func prepareCommit(_ commit: inout StateCommit) async throws {
        for key in Array(open.keys) { try close(key) }
        if let publisher { try await uploadFinished(publisher) }
        // Temporary files' directory entries must be durable before the intents name them.
        if publisher == nil {
            for dir in Set(closed.map { ($0.tempPath as NSString).deletingLastPathComponent }) {
                try DurableFile.syncDirectory(dir)
            }
        }
        prepared += closed
        closed.removeAll()
        commit.fileIntents += prepared
    }

    func lakePartitions() async -> Set<String>? {
        sink.partition == nil ? nil : localLakePartitions(under: sink.directory)
    }

    func finishCommit() async throws {
        if let publisher {
            try await publisher.publish(prepared, pipeline: context.pipeline, state: context.state)
        } else {
            try await FileCommit.publish(prepared, root: sink.directory, pipeline: context.pipeline, state: context.state, lock: lakeLock)
        }
        prepared.removeAll()
    }

    func abortCommit() async {
        // Refused by the state store, so no intent names these files.
        if let publisher {
            await publisher.abort(prepared)
        } else {
            _ = try? FileCommit.holding(lakeLock) { for intent in prepared { unlink(intent.tempPath) } }
        }
        prepared.removeAll()
    }

    func close() async {
        // Uncommitted files are discarded; their records are replayed from the checkpoint.
        let discarded = open.values.map(\.tempPath) + finished.map(\.tempPath) + (publisher == nil ? closed.map(\.tempPath) : [])
        _ = try? FileCommit.holding(lakeLock) { for path in discarded { unlink(path) } }
        finished.removeAll()
        if let publisher {
            await publisher.abort(closed)
            await publisher.shutdown()
        }
        open.removeAll()
        closed.removeAll()
    }
}
