#if canImport(Glibc)
    import Glibc
#endif
import Foundation
import SluiceCore
import SluiceFormats

/// Follows growing files (`tail: true`): reads the complete lines appended to every file the
/// path matches, and goes on across rotation by rename and by copy-truncate.
///
/// Files are known by a fingerprint of their first lines (``TailFingerprint``); each one is a
/// checkpoint partition (`tail:<fingerprint>`) holding the offset of its next unread line.
/// A scan every `poll_interval` lists the files, fingerprints those that changed, and lets
/// ``TailPlan`` decide which file holds each fingerprint; the reader then reads, round robin,
/// every followed file that has more bytes than it has read. A line is read only once its
/// newline is written, so a line half-written at a crash or a kill is never cut.
final class FileTailReader: SourceReader {
    let source: FileSource
    let context: SourceContext
    /// Offsets read so far, by fingerprint (the committed ones at start).
    var positions: [UInt64: TailPosition] = [:]
    /// Open files, by fingerprint.
    var handles: [UInt64: TailHandle] = [:]
    /// Files that left the path (deleted, or moved out of it): read to their end, then closed.
    var draining: [TailHandle] = []
    /// Fingerprints with bytes to read, in the order they are served (round robin).
    var ready: [UInt64] = []
    /// The last scan's view of each file, to fingerprint only files that changed.
    var lastSeen: [TailInode: TailObservation] = [:]
    /// Files already reported as skipped (reported once per run).
    var reported: Set<TailInode> = []
    var scanned = false
    var bytesRead = 0

    /// A handle caught up with a file unchanged for this long is closed (opened again if it grows).
    static let idleClose: Int64 = 300 * 1_000_000

    init(source: FileSource, checkpoint: Checkpoint, context: SourceContext) {
        self.source = source
        self.context = context
        for (partition, value) in checkpoint.partitions {
            if let fingerprint = TailFingerprint.fingerprint(ofPartition: partition), let position = TailPosition.decode(value) {
                positions[fingerprint] = position
            }
        }
    }

    /// Lines per fingerprint: the configured ones, after a CSV header.
    var fingerprintLines: Int {
        let header = (source.format ?? FileSource.format(ofPath: source.pattern)) == .csv && source.csv.header
        return source.fingerprintLines + (header ? 1 : 0)
    }

    func next() async throws -> SourceBatch? {
        while true {
            try Task.checkCancellation()
            if let handle = draining.first {
                if let batch = try read(handle) { return batch }
                draining.removeFirst()
                context.logger.info("file left the path; read to its end and closed", metadata: ["file": "\(handle.path)"])
                continue
            }
            if let fingerprint = ready.first {
                ready.removeFirst()
                guard let handle = handles[fingerprint] else { continue }
                if let batch = try read(handle) {
                    // Round robin: a file written faster than it is read does not starve the others.
                    ready.append(fingerprint)
                    return batch
                }
                if handle.lostFingerprint { handles[fingerprint] = nil }
                continue
            }
            if scanned { try await Task.sleep(for: source.pollInterval) }
            scanned = true
            try scan()
        }
    }

    /// Lists and fingerprints the files, decides who holds each fingerprint, opens and closes
    /// handles, and queues the files that have bytes to read.
    func scan() throws {
        var observed: [TailObservation] = []
        var behind = 0
        for file in try FileListing.list(source.pattern) {
            var st = stat()
            guard stat(file.path, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG else { continue }
            let inode = TailInode(device: UInt64(st.st_dev), number: UInt64(st.st_ino))
            let modified = Int64(st.st_mtim.tv_sec) * 1_000_000 + Int64(st.st_mtim.tv_nsec) / 1000
            var o = TailObservation(inode: inode, path: file.path, size: Int(st.st_size), modified: modified, fingerprint: nil)
            if let last = lastSeen[inode], last.size == o.size, last.modified == o.modified, last.fingerprint != nil {
                o.fingerprint = last.fingerprint
            } else {
                o.fingerprint = try fingerprint(path: file.path, inode: inode)
            }
            lastSeen[inode] = o
            observed.append(o)
        }
        let present = Set(observed.map(\.inode))
        lastSeen = lastSeen.filter { present.contains($0.key) }
        let following = handles.mapValues(\.inode)
        let outcome = TailPlan.plan(observed: observed, following: following, offsets: positions.mapValues(\.offset))
        // Handles whose file lost its fingerprint (truncated and written again) are closed
        // without reading on: their bytes are someone else's now. Handles whose file left the
        // path are read to their end.
        for (fingerprint, handle) in handles where outcome.owners[fingerprint] != handle.inode {
            handles[fingerprint] = nil
            // Left the path: read to its end, unless a copy took its place (read on from the same offset).
            if present.contains(handle.inode) || handle.lostFingerprint || outcome.owners[fingerprint] != nil {
                context.logger.info(
                    "file no longer starts with the lines it was followed by (truncated or rewritten); closed", metadata: ["file": "\(handle.path)"])
            } else {
                draining.append(handle)
            }
        }
        for (inode, skip) in outcome.skipped where !reported.contains(inode) {
            reported.insert(inode)
            let path = observed.first { $0.inode == inode }?.path ?? "?"
            switch skip {
            case .duplicate(let owner):
                let ownerPath = observed.first { $0.inode == owner }?.path ?? "?"
                context.logger.info(
                    "file starts like one already followed (a copy); not read while that one is", metadata: ["file": "\(path)", "followed": "\(ownerPath)"])
            case .shorter(let offset):
                context.logger.warning(
                    "file starts like one read up to a later offset but is shorter; not read (it cannot be that file)",
                    metadata: ["file": "\(path)", "offset": "\(offset)"])
            }
        }
        let now = Int64(Date().timeIntervalSince1970 * 1_000_000)
        for o in observed.sorted(by: { ($0.modified, $0.path) < ($1.modified, $1.path) }) {
            guard let fingerprint = o.fingerprint, outcome.owners[fingerprint] == o.inode else { continue }
            let offset = positions[fingerprint]?.offset ?? 0
            behind += max(0, o.size - offset)
            if let handle = handles[fingerprint] {
                handle.path = o.path
                handle.modified = o.modified
                if o.size > handle.offset + handle.buffered {
                    if !ready.contains(fingerprint) { ready.append(fingerprint) }
                } else if now - o.modified > Self.idleClose {
                    handles[fingerprint] = nil
                }
                continue
            }
            guard o.size > offset else { continue }
            let opened: TailHandle?
            do {
                opened = try open(o, fingerprint: fingerprint)
            } catch {
                // One unreadable file does not stop the others; it is tried again when it changes.
                if reported.insert(o.inode).inserted {
                    context.logger.error("cannot follow file; tried again at every scan", metadata: ["file": "\(o.path)", "error": "\(error)"])
                }
                continue
            }
            guard let handle = opened else { continue }
            handles[fingerprint] = handle
            if !ready.contains(fingerprint) { ready.append(fingerprint) }
        }
        context.reportLag(Double(behind), "bytes")
    }

    /// The fingerprint of the file at `path`; nil while it has too few lines, and for
    /// compressed files (rotated logs compressed later: their lines were read from the plain file).
    func fingerprint(path: String, inode: TailInode) throws -> UInt64? {
        let fd = Glibc.open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }  // gone since the listing
        defer { Glibc.close(fd) }
        var prefix = [UInt8](repeating: 0, count: TailFingerprint.limit)
        let n = prefix.withUnsafeMutableBytes { pread(fd, $0.baseAddress!, TailFingerprint.limit, 0) }
        guard n > 0 else { return nil }
        if InputCompression.detect(Array(prefix.prefix(4))) != .none {
            if !reported.contains(inode) {
                reported.insert(inode)
                context.logger.info("compressed file skipped: tailing reads plain files", metadata: ["file": "\(path)"])
            }
            return nil
        }
        return prefix.withUnsafeBytes { TailFingerprint.of(UnsafeRawBufferPointer(rebasing: $0[0..<n]), lines: fingerprintLines) }
    }

    /// Opens a file at its resume offset (or its first data line), its schema prepared from its start.
    func open(_ o: TailObservation, fingerprint: UInt64) throws -> TailHandle? {
        let fd = Glibc.open(o.path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        var st = stat()
        guard fstat(fd, &st) == 0, TailInode(device: UInt64(st.st_dev), number: UInt64(st.st_ino)) == o.inode else {
            Glibc.close(fd)
            return nil  // replaced since the scan: the next scan sees the new file
        }
        let decoder: any RecordDecoder
        do {
            decoder = try source.makeDecoder(for: o.path)
        } catch {
            Glibc.close(fd)
            throw error
        }
        let handle = TailHandle(inode: o.inode, fingerprint: fingerprint, path: o.path, fd: fd, decoder: decoder, modified: o.modified)
        let sample = try handle.pread(at: 0, count: FileSourceReader.sampleSize)
        let dataStart: Int
        do {
            dataStart = try sample.withUnsafeBytes { try decoder.prepare(sample: $0, isWholeInput: false) }
        } catch {
            throw SluiceError(.malformedInput, "cannot read the header or infer the schema: \(error)", location: o.path)
        }
        if let resume = positions[fingerprint], resume.offset > dataStart {
            handle.offset = resume.offset
            handle.line = resume.line
            context.logger.info(
                "following file", metadata: ["file": "\(o.path)", "offset": "\(resume.offset)", "line": "\(resume.line)", "was": "\(resume.path)"])
        } else {
            handle.offset = dataStart
            handle.line = 1 + sample.prefix(dataStart).reduce(0) { $0 + ($1 == 0x0A ? 1 : 0) }
            context.logger.info("following new file", metadata: ["file": "\(o.path)"])
        }
        decoder.seek(offset: handle.offset, line: handle.line)
        return handle
    }

    /// The next batch of complete lines from `handle`; nil when it has none (caught up, or its
    /// file no longer starts with its fingerprint's lines).
    func read(_ handle: TailHandle) throws -> SourceBatch? {
        guard !handle.lostFingerprint else { return nil }
        while true {
            let added = try handle.fill()
            let output = handle.decoder.decode(handle.unread, isFinal: false)
            if output.consumed == 0 && output.batch.count == 0 && output.rejects.isEmpty {
                if added == 0 { return nil }  // a partial line at the end: wait for its newline
                continue  // one record longer than the buffer held: read more
            }
            // The bytes were read from the file that starts with this fingerprint's lines: a
            // file truncated and written again meanwhile would have handed over a stranger's lines.
            guard try handle.stillStartsWith(fingerprintLines: fingerprintLines) else {
                handle.lostFingerprint = true
                context.logger.info("file truncated while being read; its copy (if any) is read instead", metadata: ["file": "\(handle.path)"])
                return nil
            }
            let lines = FileSourceReader.countLines(UnsafeRawBufferPointer(rebasing: handle.unread.prefix(output.consumed)))
            handle.consume(output.consumed)
            handle.line += lines
            bytesRead += output.consumed
            let position = TailPosition(offset: handle.offset, line: handle.line, path: handle.path)
            positions[handle.fingerprint] = position
            let rejects = output.rejects.map { r in
                DeadLetter(stage: "decode", errorKind: r.kind, message: r.message, location: "\(handle.path):\(r.line)", raw: r.raw)
            }
            context.reportProgress(SourceProgress(bytesDone: bytesRead, bytesTotal: nil))
            var batch = SourceBatch(
                records: output.batch, rejects: rejects,
                position: SourcePosition(partition: TailFingerprint.partition(handle.fingerprint), value: position.encoded()),
                inputBytes: output.consumed)
            batch.originTime = Date(timeIntervalSince1970: Double(handle.modified) / 1_000_000)
            return batch
        }
    }

    func close() async {
        handles = [:]
        draining = []
        ready = []
    }
}

/// One followed file: its descriptor, decoder and the bytes read but not yet decoded.
final class TailHandle {
    let inode: TailInode
    let fingerprint: UInt64
    var path: String
    let fd: Int32
    let decoder: any RecordDecoder
    var modified: Int64
    /// File offset of the next undecoded byte, and its line.
    var offset = 0
    var line = 1
    var lostFingerprint = false
    private var buffer: UnsafeMutableRawBufferPointer
    private var start = 0, end = 0

    init(inode: TailInode, fingerprint: UInt64, path: String, fd: Int32, decoder: any RecordDecoder, modified: Int64) {
        self.inode = inode
        self.fingerprint = fingerprint
        self.path = path
        self.fd = fd
        self.decoder = decoder
        self.modified = modified
        buffer = .allocate(byteCount: FileSourceReader.chunkSize, alignment: 64)
    }

    deinit {
        Glibc.close(fd)
        buffer.deallocate()
    }

    /// Bytes read from the file and not yet decoded.
    var buffered: Int { end - start }
    var unread: UnsafeRawBufferPointer { UnsafeRawBufferPointer(rebasing: buffer[start..<end]) }

    func consume(_ count: Int) {
        start += count
        offset += count
    }

    /// Reads what the file has after the buffered bytes (growing the buffer when one record
    /// fills it); returns how many bytes were added.
    func fill() throws -> Int {
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
        var added = 0
        while end < buffer.count {
            let n = Glibc.pread(fd, buffer.baseAddress! + end, buffer.count - end, off_t(offset + end))
            if n < 0 {
                if errno == EINTR { continue }
                let code = errno
                throw FileReadError(path: path, message: "read failed: \(String(cString: strerror(code)))", errno: code)
            }
            if n == 0 { break }
            end += n
            added += n
        }
        return added
    }

    /// Up to `count` bytes from `at`.
    func pread(at position: Int, count: Int) throws -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: count)
        var got = 0
        while got < count {
            let n = bytes.withUnsafeMutableBytes { Glibc.pread(fd, $0.baseAddress! + got, count - got, off_t(position + got)) }
            if n < 0 {
                if errno == EINTR { continue }
                let code = errno
                throw FileReadError(path: path, message: "read failed: \(String(cString: strerror(code)))", errno: code)
            }
            if n == 0 { break }
            got += n
        }
        return Array(bytes.prefix(got))
    }

    /// Whether the file still starts with the lines of this handle's fingerprint.
    func stillStartsWith(fingerprintLines lines: Int) throws -> Bool {
        let prefix = try pread(at: 0, count: TailFingerprint.limit)
        return prefix.withUnsafeBytes { TailFingerprint.of($0, lines: lines) } == fingerprint
    }
}
