import CByteCount
import Foundation
import Logging
import SluiceCore
import SluiceFormats
import SluiceObjectStore

/// Reads the files of a ``FileSource`` one after another, in path order.
///
/// CSV and NDJSON are decoded on ``FileSource/threads`` threads at once in rounds
/// (``readRound()``): each round cuts the buffered input of the current file, and of the next
/// files when it ends, at record boundaries into pieces that are decoded in parallel and handed
/// on in order, so batches, positions and rejects are those of reading one file after another.
final class FileSourceReader: SourceReader {
    let source: FileSource
    let context: SourceContext
    var positions: [String: FilePosition]
    var queue: [ListedFile] = []
    var listed = false
    var current: OpenFile?
    var parquet: ParquetFileCursor?
    /// Files already reported as changed after processing (reported once per run).
    var reportedChanges: Set<String> = []
    var bytesDoneBefore = 0
    var bytesTotal = 0
    /// Set when the path is in object storage: objects are listed there and read from a spool copy.
    let objects: ObjectListing?
    /// The spool copy of the object being read, deleted when the next file starts.
    var spooled: String?

    /// Batches of the last round not yet returned, in order.
    var ready: [SourceBatch] = []
    var readyIndex = 0

    static let chunkSize = 4 << 20
    static let sampleSize = 1 << 20

    /// Threads decoding at once: rounds are used when there are at least two.
    var lanes: Int { source.threads }

    init(source: FileSource, checkpoint: Checkpoint, context: SourceContext, objects: ObjectListing? = nil) {
        self.source = source
        self.context = context
        self.objects = objects
        positions = checkpoint.partitions.compactMapValues(FilePosition.decode)
    }

    /// One file being read.
    final class OpenFile {
        let file: ListedFile
        let stream: any ByteSource
        /// The decoder that reads the file in order (and piece 0 of each round).
        var decoder: any RecordDecoder
        /// The bytes the schema was prepared from (the file's first bytes), for piece decoders.
        var sample: [UInt8] = []
        var sampleIsWholeInput = false
        /// Decoders of pieces 1, 2, … of a round, prepared like ``decoder``.
        var pieceDecoders: [any RecordDecoder] = []
        /// Cleared when the file must be read in order from here on (a schema that changes
        /// mid-file, a record longer than the buffer).
        var parallel = true
        var buffer: UnsafeMutableRawBufferPointer
        var start = 0, end = 0
        var eof = false
        /// Decompressed offset of `buffer[start]`, and its line.
        var offset: Int
        var line: Int

        init(file: ListedFile, stream: any ByteSource, decoder: any RecordDecoder, offset: Int, line: Int, bufferSize: Int) {
            self.file = file
            self.stream = stream
            self.decoder = decoder
            self.offset = offset
            self.line = line
            buffer = .allocate(byteCount: bufferSize, alignment: 64)
        }

        deinit {
            stream.close()
            buffer.deallocate()
        }

        /// Reads more bytes after the unconsumed ones, growing the buffer for a very long record.
        func fill() throws {
            if let deferredError { throw deferredError }
            if start > 0 {
                if end > start { buffer.baseAddress!.copyMemory(from: buffer.baseAddress! + start, byteCount: end - start) }
                end -= start
                start = 0
            }
            if end == buffer.count {
                let bigger = UnsafeMutableRawBufferPointer.allocate(byteCount: buffer.count * 2, alignment: 64)
                bigger.baseAddress!.copyMemory(from: buffer.baseAddress!, byteCount: end)
                buffer.deallocate()
                buffer = bigger
            }
            while end < buffer.count {
                let n: Int
                do {
                    n = try stream.read(into: buffer.baseAddress! + end, count: buffer.count - end)
                } catch {
                    // A stream that fails part-way (a truncated or corrupt gzip): the complete
                    // records read before the failure are decoded first, and it is thrown by the
                    // next fill, whichever way the file is read.
                    guard end > start else { throw error }
                    deferredError = error
                    return
                }
                if n == 0 { eof = true; break }
                end += n
            }
        }

        /// A read failure held back until the bytes before it are decoded.
        var deferredError: (any Error)?
    }

    func next() async throws -> SourceBatch? {
        if readyIndex < ready.count {
            defer {
                readyIndex += 1
                if readyIndex == ready.count { ready.removeAll(keepingCapacity: true); readyIndex = 0 }
            }
            return ready[readyIndex]
        }
        while true {
            try Task.checkCancellation()
            if let cursor = parquet {
                do {
                    return try readRowGroup(cursor)
                } catch let error as FileReadError where error.errno == nil {
                    parquet = nil
                    return finishUnreadable(cursor.file, error: error)
                }
            }
            if current == nil {
                guard var file = try await nextFile() else { return nil }
                if let objects {
                    if let spooled { unlink(spooled) }
                    spooled = nil
                    do {
                        file.localPath = try await fetch(file, from: objects)
                        spooled = file.localPath
                    } catch let ObjectStoreError.changed(key) {
                        return finishUnreadable(
                            file,
                            error: FileReadError(
                                path: file.path, message: "the object \(key) was replaced while being read (its ETag changed); it is not mixed with the old one"
                            ))
                    } catch ObjectStoreError.notFound {
                        context.logger.warning("an object listed a moment ago is gone; skipped", metadata: ["object": "\(file.path)"])
                        continue
                    }
                }
                if source.isParquet(file.path) {
                    do {
                        parquet = try ParquetFileCursor(file: file, resumeAt: positions[file.path]?.offset ?? 0)
                    } catch let error as FileReadError where error.errno == nil {
                        return finishUnreadable(file, error: error)
                    }
                    continue
                }
                do {
                    current = try open(file)
                } catch let error as FileReadError where error.errno == nil {
                    // A corrupt file is one bad input: dead-letter it and go on. I/O errors
                    // (permissions, EIO) stop the pipeline instead, so the file is read once fixed.
                    return finishUnreadable(file, error: error)
                }
                if current == nil { continue }
            }
            do {
                if lanes > 1, current!.parallel, try readRound() {
                    return try await next()
                }
                if let batch = try readBatch(current!) { return batch }
            } catch let error as FileReadError where error.errno == nil {
                let failed = current!
                current = nil
                return finishUnreadable(failed.file, error: error, line: failed.line)
            }
        }
    }

    /// Decodes the next chunk of the open file; nil after the file's final batch was returned.
    func readBatch(_ f: OpenFile) throws -> SourceBatch? {
        // After a held-back read failure, the bytes before it are decoded before it is thrown.
        if f.start == f.end || f.deferredError == nil && !f.eof && (f.end - f.start) < f.buffer.count / 2 {
            if !f.eof { try f.fill() }
        }
        let input = UnsafeRawBufferPointer(rebasing: f.buffer[f.start..<f.end])
        var output = f.decoder.decode(input, isFinal: f.eof)
        if output.consumed == 0 && !f.eof && output.batch.count == 0 && output.rejects.isEmpty {
            // Not even one whole record: read more (fill grows the buffer when it is full).
            try f.fill()
            output = f.decoder.decode(UnsafeRawBufferPointer(rebasing: f.buffer[f.start..<f.end]), isFinal: f.eof)
            if output.consumed == 0 && !f.eof { return try readBatch(f) }
        }
        let lines = Self.countLines(UnsafeRawBufferPointer(rebasing: f.buffer[f.start..<(f.start + output.consumed)]))
        let finished = f.eof && f.start + output.consumed == f.end
        if !finished && output.consumed == 0 { return nil }
        return advance(f, by: output, lines: lines)
    }

    /// Moves `f` past the bytes `output` consumed (holding `lines` LFs) and makes their batch:
    /// the file's new position, the rows' dead letters, progress, and the file's end when reached.
    func advance(_ f: OpenFile, by output: DecodeOutput, lines: Int) -> SourceBatch {
        f.start += output.consumed
        f.offset += output.consumed
        f.line += lines
        let finished = f.eof && f.start == f.end
        let position = FilePosition(
            offset: f.offset, line: f.line, done: finished,
            size: f.file.size, modified: f.file.modified, etag: f.file.etag)
        positions[f.file.path] = position
        let rejects = output.rejects.map { r in
            DeadLetter(stage: "decode", errorKind: r.kind, message: r.message, location: "\(f.file.path):\(r.line)", raw: r.raw)
        }
        context.reportProgress(SourceProgress(bytesDone: bytesDoneBefore + f.stream.fileBytesRead, bytesTotal: bytesTotal))
        if finished {
            bytesDoneBefore += f.file.size
            if current === f { current = nil }
            context.logger.info("file read", metadata: ["file": "\(f.file.path)", "lines": "\(f.line - 1)"])
        }
        var batch = SourceBatch(
            records: output.batch, rejects: rejects,
            position: SourcePosition(partition: f.file.path, value: position.encoded()),
            inputBytes: output.consumed)
        batch.originTime = f.file.modifiedDate
        return batch
    }

    /// The next row group of a Parquet file.
    func readRowGroup(_ cursor: ParquetFileCursor) throws -> SourceBatch {
        let (batch, position, bytes) = try cursor.next()
        positions[cursor.file.path] = position
        if position.done {
            parquet = nil
            bytesDoneBefore += cursor.file.size
            context.logger.info("file read", metadata: ["file": "\(cursor.file.path)", "row_groups": "\(position.offset)"])
        }
        context.reportProgress(SourceProgress(bytesDone: bytesDoneBefore, bytesTotal: bytesTotal))
        var read = SourceBatch(
            records: batch, position: SourcePosition(partition: cursor.file.path, value: position.encoded()),
            inputBytes: bytes)
        read.originTime = cursor.file.modifiedDate
        return read
    }

    /// The LFs in `bytes` (vectorized, see `sluice_count_byte`).
    static func countLines(_ bytes: UnsafeRawBufferPointer) -> Int {
        guard let base = bytes.baseAddress else { return 0 }
        return sluice_count_byte(base.assumingMemoryBound(to: UInt8.self), bytes.count, 0x0A)
    }

    /// Opens a file at its resume point; nil when it turns out to be empty.
    func open(_ file: ListedFile) throws -> OpenFile? {
        let decoder = try makeDecoder(file.path)
        let stream = try InputCompression.open(path: file.readPath, compression: source.compression)
        let resume = positions[file.path]
        let f = OpenFile(
            file: file, stream: stream, decoder: decoder, offset: 0, line: 1,
            bufferSize: Self.bufferSize(for: file, lanes: lanes))
        // The schema is always prepared from the start of the file, so it is the same on resume.
        try f.fill()
        let sampleEnd = min(f.end, Self.sampleSize)
        let dataStart: Int
        do {
            let sample = UnsafeRawBufferPointer(rebasing: f.buffer[0..<sampleEnd])
            f.sampleIsWholeInput = f.eof && sampleEnd == f.end
            if lanes > 1 { f.sample = Array(sample) }
            dataStart = try decoder.prepare(sample: sample, isWholeInput: f.sampleIsWholeInput)
        } catch {
            throw FileReadError(path: file.path, message: "cannot read the header or infer the schema: \(error)")
        }
        var skip = dataStart
        var line = 1 + Self.countLines(UnsafeRawBufferPointer(rebasing: f.buffer[0..<min(dataStart, f.end)]))
        if let resume, resume.offset > dataStart {
            skip = resume.offset
            line = resume.line
            context.logger.info("resuming file", metadata: ["file": "\(file.path)", "offset": "\(resume.offset)", "line": "\(resume.line)"])
        }
        // Skip to the resume offset (decompressing what comes before it for compressed files).
        while skip > f.end - f.start {
            skip -= f.end - f.start
            f.start = f.end
            try f.fill()
            if f.eof && f.start == f.end { break }
        }
        f.start += min(skip, f.end - f.start)
        f.offset = resume.map { max($0.offset, dataStart) } ?? dataStart
        f.line = line
        decoder.seek(offset: f.offset, line: f.line)
        return f
    }

    /// A file's read buffer: a chunk per lane, or less for a small file (so a round reading many
    /// small files holds little), never less than twice the schema sample; it grows for a record
    /// longer than it.
    static func bufferSize(for file: ListedFile, lanes: Int) -> Int {
        let full = chunkSize * max(1, min(lanes, 16))
        // At least twice the schema sample: a small compressed file holds more than its size.
        var size = 2 * sampleSize
        while size <= file.size && size < full { size <<= 1 }
        return min(size, full)
    }

    func makeDecoder(_ path: String) throws -> any RecordDecoder {
        do {
            return try source.makeDecoder(for: path)
        } catch let e as SluiceError {
            throw FileReadError(path: path, message: e.message)
        }
    }

    /// A file that could not be read at all becomes one dead letter, and is marked done.
    func finishUnreadable(_ file: ListedFile, error: FileReadError, line: Int? = nil) -> SourceBatch {
        context.logger.error("cannot read file; it is sent to the dead-letter queue", metadata: ["file": "\(file.path)", "error": "\(error.message)"])
        let previous = positions[file.path]
        let position = FilePosition(
            offset: previous?.offset ?? 0, line: previous?.line ?? 1, done: true,
            size: file.size, modified: file.modified, etag: file.etag)
        positions[file.path] = position
        bytesDoneBefore += file.size
        let letter = DeadLetter(
            stage: "decode", errorKind: "unreadable_file",
            message: error.message + " (the rest of the file from this line on is not ingested)",
            location: "\(file.path):\(line ?? previous?.line ?? 1)", raw: [])
        return SourceBatch(
            records: RecordBatch.empty(Schema([])), rejects: [letter],
            position: SourcePosition(partition: file.path, value: position.encoded()), inputBytes: 0)
    }

    /// The next file to read, waiting for new files when watching.
    func nextFile() async throws -> ListedFile? {
        while true {
            if !queue.isEmpty { return queue.removeFirst() }
            if listed && !source.watch { return nil }
            if listed { try await Task.sleep(for: source.pollInterval) }
            listed = true
            queue = try await scan()
            if listed, queue.isEmpty, !source.watch { return nil }
        }
    }

    /// Lists files, skipping finished ones and reporting finished files that changed since.
    func scan() async throws -> [ListedFile] {
        let now = Int64(Date().timeIntervalSince1970 * 1_000_000)
        let minAge = source.watch ? Int64(source.minAge.components.seconds * 1_000_000 + source.minAge.components.attoseconds / 1_000_000_000_000) : 0
        var pending: [ListedFile] = []
        let listed = try await objects?.list() ?? FileListing.list(source.pattern)
        for file in listed {
            if let p = positions[file.path] {
                let changed = p.size != file.size || p.modified != file.modified || (p.etag != nil && p.etag != file.etag)
                if !p.done, changed, p.etag != nil {
                    // An object replaced after part of it was committed: its rest is not mixed
                    // with the old part. Reported as a dead letter; re-ingest with `sluice state reset`.
                    pending.append(file)
                    continue
                }
                if p.done {
                    if changed && !reportedChanges.contains(file.path) {
                        reportedChanges.insert(file.path)
                        context.logger.warning(
                            "file changed after it was ingested; it is not read again (run `sluice state reset` to re-ingest everything)",
                            metadata: ["file": "\(file.path)", "size_then": "\(p.size)", "size_now": "\(file.size)"])
                    }
                    continue
                }
            }
            if source.watch, now - file.modified < minAge { continue }
            pending.append(file)
        }
        bytesTotal = bytesDoneBefore + pending.reduce(0) { $0 + $1.size }
        if pending.isEmpty && !source.watch && positions.isEmpty {
            context.logger.warning("no input files match the path", metadata: ["path": "\(source.pattern)"])
        }
        return pending
    }

    func close() async {
        current = nil
        parquet = nil
        if let spooled { unlink(spooled) }
        await objects?.shutdown()
    }

    /// Downloads an object to the spool. Resuming a plain (uncompressed, not Parquet) object
    /// mid-way fetches only its head (for the header and the schema sample) and the rest from
    /// the resume offset; a replaced object (another ETag than the one being read) throws
    /// ``ObjectStoreError/changed(_:)``.
    func fetch(_ file: ListedFile, from objects: ObjectListing) async throws -> String {
        let resume = positions[file.path]
        if let resume, let etag = resume.etag, etag != file.etag {
            throw ObjectStoreError.changed(String(file.path.dropFirst(5)))
        }
        if let resume, resume.offset > Self.sampleSize, !source.isParquet(file.path),
            try await objects.isPlain(file, declared: source.compression)
        {
            context.logger.info("fetching the rest of an object from its resume point", metadata: ["object": "\(file.path)", "offset": "\(resume.offset)"])
            return try await objects.download(file, from: resume.offset, head: Self.sampleSize)
        }
        return try await objects.download(file)
    }
}
