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
/// Every `poll_interval` a scan lists the files, fingerprints those that changed, and lets
/// ``TailPlan`` decide which file holds each fingerprint; between scans the reader reads, in
/// turn, every followed file that has more bytes than it has read. A line is read only once
/// its newline is written, so a line half-written at a crash or a kill is never cut.
///
/// Bounded: at most ``maxOpen`` files are open at once (caught-up ones are closed first to
/// make room), and one read buffer is shared by all of them (a file keeps it for as long as
/// it has unread bytes in it; a file's turn ends when its buffer is spent).
final class FileTailReader: SourceReader {
    let source: FileSource
    let context: SourceContext
    /// Offsets read so far, by fingerprint (the committed ones at start).
    var positions: [UInt64: TailPosition] = [:]
    /// Offsets of the `file` source without `tail` (by path), taken over by the first scan of
    /// a pipeline that switches to tailing (its checkpoint has no `tail:` partition yet), so
    /// the files it read are not read again.
    var untailed: [String: FilePosition] = [:]
    /// Open files, by fingerprint.
    var handles: [UInt64: TailHandle] = [:]
    /// Files that left the path, read to their end (in ``ready``), by fingerprint: no other
    /// file is opened under their fingerprint meanwhile, and one that comes back is adopted again.
    var draining: [UInt64: TailHandle] = [:]
    /// Files with bytes to read, in turn; files that left the path are read to their end here too.
    var ready: [TailHandle] = []
    /// The last scan's view of each file, to fingerprint only files that changed.
    var lastSeen: [TailInode: TailObservation] = [:]
    /// The size of each file when its handle was closed caught up: it is opened again only
    /// once it is larger (a file ending in a partial line is not reopened at every scan).
    var closedAt: [UInt64: Int] = [:]
    /// Files already reported as skipped (reported once per run).
    var reported: Set<TailInode> = []
    var lastScan: ContinuousClock.Instant?
    var bytesRead = 0
    /// The shared read buffer and the handle whose bytes it holds.
    let buffer = TailBuffer()
    var maxOpen: Int

    /// A handle caught up with a file unchanged for this long is closed (opened again if it grows).
    static let idleClose: Int64 = 300 * 1_000_000
    static let defaultMaxOpen = 64

    init(source: FileSource, checkpoint: Checkpoint, context: SourceContext, maxOpen: Int = FileTailReader.defaultMaxOpen) {
        self.source = source
        self.context = context
        self.maxOpen = max(1, maxOpen)
        for (partition, value) in checkpoint.sourcePartitions {
            if let fingerprint = TailFingerprint.fingerprint(ofPartition: partition) {
                if let position = TailPosition.decode(value) { positions[fingerprint] = position }
            } else if let position = FilePosition.decode(value) {
                untailed[partition] = position
            }
        }
        if !positions.isEmpty { untailed = [:] }
    }

    /// Lines per fingerprint: the configured ones, after a CSV header.
    var fingerprintLines: Int {
        let header = (source.format ?? FileSource.format(ofPath: source.pattern)) == .csv && source.csv.header
        return source.fingerprintLines + (header ? 1 : 0)
    }

    func next() async throws -> SourceBatch? {
        while true {
            try Task.checkCancellation()
            // Files are listed again every poll interval, however much is left to read, so
            // rotations, new files and the lag are seen while a backlog is read.
            if lastScan.map({ ContinuousClock.now - $0 >= source.pollInterval }) ?? true {
                lastScan = .now
                try scan()
            }
            guard let handle = ready.first else {
                try await Task.sleep(until: lastScan! + source.pollInterval)
                continue
            }
            if let batch = try read(handle) {
                // A file's turn ends when its buffered bytes run low: a file written faster than
                // it is read does not starve the others, and one buffer serves them all.
                if buffer.count(for: handle) < FileSourceReader.chunkSize / 2 {
                    ready.removeFirst()
                    ready.append(handle)
                }
                return batch
            }
            ready.removeFirst()
            // Caught up: queued again only once the file holds more than this (a file ending in
            // a partial line is not read again at every scan, and can be closed to make room).
            handle.caughtUpAt = handle.offset + buffer.count(for: handle)
            buffer.release(handle)
            if handle.lostFingerprint {
                if handles[handle.fingerprint] === handle { handles[handle.fingerprint] = nil }
            } else if handle.leftPath {
                if draining[handle.fingerprint] === handle { draining[handle.fingerprint] = nil }
                context.logger.info("file left the path; read to its end and closed", metadata: ["file": "\(handle.path)"])
            }
        }
    }

    /// Lists and fingerprints the files, decides who holds each fingerprint, opens and closes
    /// handles, and queues the files that have bytes to read.
    func scan() throws {
        var observed: [TailObservation] = []
        // The listing's own stat (of a link's target) tells whether a file changed since the last scan.
        for file in try FileListing.list(source.pattern) {
            let inode = TailInode(device: file.device, number: file.inode)
            if var last = lastSeen[inode], last.size == file.size, last.modified == file.modified {
                last.path = file.path
                lastSeen[inode] = last
                observed.append(last)
                continue
            }
            // The inode, size and fingerprint come from one open descriptor: a rename between
            // listing and reading cannot pin one file's fingerprint on another.
            guard let o = try observe(file.path) else { continue }
            lastSeen[o.inode] = o
            observed.append(o)
        }
        let present = Set(observed.map(\.inode))
        lastSeen = lastSeen.filter { present.contains($0.key) }
        let following = handles.mapValues(\.inode).merging(draining.mapValues(\.inode)) { open, _ in open }
        let outcome = TailPlan.plan(observed: observed, following: following, offsets: positions.mapValues(\.offset))
        // A file that left the path and is back (renamed into it again, or missed by one
        // listing) is followed again by the same handle: never two handles on one partition.
        for (fingerprint, handle) in draining where outcome.owners[fingerprint] == handle.inode {
            draining[fingerprint] = nil
            handle.leftPath = false
            handles[fingerprint] = handle
        }
        for (fingerprint, handle) in handles where outcome.owners[fingerprint] != handle.inode {
            handles[fingerprint] = nil
            if present.contains(handle.inode) || handle.lostFingerprint || outcome.owners[fingerprint] != nil {
                // Truncated, or written again from its start: its bytes are someone else's now
                // (or a copy took its place and is read on from the same offset).
                handle.lostFingerprint = true
                context.logger.info(
                    "file no longer holds the lines it was followed by (truncated or rewritten); closed", metadata: ["file": "\(handle.path)"])
            } else {
                // Left the path (deleted, or moved out of it): read to its end from the descriptor.
                handle.leftPath = true
                draining[fingerprint] = handle
                if !ready.contains(where: { $0 === handle }) { ready.append(handle) }
            }
        }
        ready.removeAll { $0.lostFingerprint }
        for (inode, skip) in outcome.skipped where reported.insert(inode).inserted {
            let path = observed.first { $0.inode == inode }?.path ?? "?"
            switch skip {
            case .duplicate(let owner):
                let ownerPath = observed.first { $0.inode == owner }?.path ?? "?"
                context.logger.info(
                    "file starts like one already followed (a copy); not read while that one is", metadata: ["file": "\(path)", "followed": "\(ownerPath)"])
            case .shorter(let offset):
                context.logger.warning(
                    "file starts like one read up to a later offset but is shorter (truncated and written again with the same first lines?); not read",
                    metadata: ["file": "\(path)", "offset": "\(offset)"])
            }
        }
        let now = Int64(Date().timeIntervalSince1970 * 1_000_000)
        var behind = 0
        var mayEvict = true
        for o in observed.sorted(by: { ($0.modified, $0.path) < ($1.modified, $1.path) }) {
            guard let fingerprint = o.fingerprint, outcome.owners[fingerprint] == o.inode else { continue }
            let offset = handles[fingerprint]?.offset ?? positions[fingerprint]?.offset ?? 0
            behind += max(0, o.size - offset)
            if let handle = handles[fingerprint] {
                handle.path = o.path
                handle.modified = o.modified
                if o.size > max(handle.offset + buffer.count(for: handle), handle.caughtUpAt ?? 0) {
                    if !ready.contains(where: { $0 === handle }) { ready.append(handle) }
                } else if now - o.modified > Self.idleClose, !ready.contains(where: { $0 === handle }) {
                    close(handle, size: o.size)
                }
                continue
            }
            // No second file under a fingerprint whose file is still being read to its end.
            guard o.size > offset, o.size > closedAt[fingerprint] ?? -1, draining[fingerprint] == nil else { continue }
            // One file that waits takes the place of one being read per scan, at most: files
            // beyond the limit are read in turn, without reopening files at every scan.
            guard makeRoom(evict: &mayEvict) else { break }  // the rest wait for the next scan
            do {
                guard let handle = try open(o, fingerprint: fingerprint) else { continue }
                handles[fingerprint] = handle
                closedAt[fingerprint] = nil
                ready.append(handle)
            } catch {
                // One unreadable file does not stop the others; it is tried again at each scan.
                if reported.insert(o.inode).inserted {
                    context.logger.error("cannot follow file; tried again at every scan", metadata: ["file": "\(o.path)", "error": "\(error)"])
                }
            }
        }
        context.reportLag(Double(behind), "bytes")
        untailed = [:]  // taken over by the first scan only: a later file at one of those paths is another file
    }

    /// Closes a caught-up handle (the least recently modified) when no more files may be
    /// opened, or, when every open file has bytes to read and `evict` allows, the one served
    /// last. False when no file may be opened now.
    func makeRoom(evict: inout Bool) -> Bool {
        guard handles.count + draining.count >= maxOpen else { return true }
        let idle = handles.values.filter { h in !ready.contains { $0 === h } }.sorted { $0.modified < $1.modified }
        if let oldest = idle.first {
            close(oldest, size: oldest.caughtUpAt ?? oldest.offset)
            return true
        }
        // Every open file has lines to read: the one served last gives its place (it is opened
        // again, at its offset, at a later scan), so files beyond the limit are read too.
        guard evict, let last = ready.last(where: { !$0.leftPath && !buffer.holdsBytes(of: $0) }) else { return false }
        ready.removeAll { $0 === last }
        close(last, size: last.offset)
        evict = false
        return true
    }

    func close(_ handle: TailHandle, size: Int) {
        handles[handle.fingerprint] = nil
        closedAt[handle.fingerprint] = size
        buffer.release(handle)
    }

    /// What identifies the file at `path` now: inode, size and modification time from the
    /// descriptor the fingerprint is read through. Nil when it is gone.
    func observe(_ path: String) throws -> TailObservation? {
        let fd = Glibc.open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }  // gone since the listing
        defer { Glibc.close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG else { return nil }
        let inode = TailInode(device: UInt64(st.st_dev), number: UInt64(st.st_ino))
        var o = TailObservation(
            inode: inode, path: path, size: Int(st.st_size),
            modified: Int64(st.st_mtim.tv_sec) * 1_000_000 + Int64(st.st_mtim.tv_nsec) / 1000, fingerprint: nil)
        var prefix = [UInt8](repeating: 0, count: TailFingerprint.limit)
        let n = prefix.withUnsafeMutableBytes { pread(fd, $0.baseAddress!, TailFingerprint.limit, 0) }
        guard n > 0 else { return o }
        if InputCompression.detect(Array(prefix.prefix(4))) != .none {
            // Rotated logs compressed later: their lines were read from the plain file.
            if reported.insert(inode).inserted {
                context.logger.info("compressed file skipped: tailing reads plain files", metadata: ["file": "\(path)"])
            }
            return o
        }
        o.fingerprint = prefix.withUnsafeBytes { TailFingerprint.of(UnsafeRawBufferPointer(rebasing: $0[0..<n]), lines: fingerprintLines) }
        return o
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
        guard handle.startsWith(sample, fingerprintLines: fingerprintLines) else { return nil }  // rewritten since the scan
        let dataStart: Int
        do {
            dataStart = try sample.withUnsafeBytes { try decoder.prepare(sample: $0, isWholeInput: false) }
        } catch {
            throw SluiceError(.malformedInput, "cannot read the header or infer the schema: \(error)", location: o.path)
        }
        let resume =
            positions[fingerprint]
            ?? untailed.removeValue(forKey: o.path).flatMap { old in
                // A pipeline that read this file before it tailed: go on from where that left it
                // (the same file, grown or not; a smaller one is another file).
                o.size >= old.size ? TailPosition(offset: old.offset, line: old.line, path: o.path) : nil
            }
        if let resume, resume.offset > dataStart {
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
        var needMore = buffer.count(for: handle) < FileSourceReader.chunkSize / 2
        while true {
            let added = needMore ? try buffer.fill(from: handle) : 0
            let output = handle.decoder.decode(buffer.unread, isFinal: false)
            if output.consumed == 0 && output.batch.count == 0 && output.rejects.isEmpty {
                if needMore && added == 0 { return nil }  // a partial line at the end: wait for its newline
                needMore = true  // one record longer than what is held: read more
                continue
            }
            // The bytes were read from the file that starts with this fingerprint's lines and
            // is not shorter than them: a file truncated (and written again) meanwhile would
            // have handed over a stranger's lines. Checked after the read, so what was read
            // came before any such change.
            guard try handle.isStill(fingerprintLines: fingerprintLines, through: handle.offset + output.consumed) else {
                handle.lostFingerprint = true
                buffer.release(handle)
                context.logger.info("file truncated while being read; its copy (if any) is read instead", metadata: ["file": "\(handle.path)"])
                return nil
            }
            let lines = FileSourceReader.countLines(UnsafeRawBufferPointer(rebasing: buffer.unread.prefix(output.consumed)))
            buffer.consume(output.consumed)
            handle.offset += output.consumed
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
        draining = [:]
        ready = []
        buffer.release(nil)
    }
}

/// One followed file: its descriptor, decoder and where its next line starts.
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
    /// The file no longer starts with the fingerprint's lines (truncated, rewritten): not read on.
    var lostFingerprint = false
    /// The file left the path: read to its end, then closed.
    var leftPath = false
    /// The file's size (as read) when the handle last caught up with it.
    var caughtUpAt: Int?

    init(inode: TailInode, fingerprint: UInt64, path: String, fd: Int32, decoder: any RecordDecoder, modified: Int64) {
        self.inode = inode
        self.fingerprint = fingerprint
        self.path = path
        self.fd = fd
        self.decoder = decoder
        self.modified = modified
    }

    deinit { Glibc.close(fd) }

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

    func startsWith(_ prefix: [UInt8], fingerprintLines lines: Int) -> Bool {
        prefix.withUnsafeBytes { TailFingerprint.of(UnsafeRawBufferPointer(rebasing: $0.prefix(TailFingerprint.limit)), lines: lines) } == fingerprint
    }

    /// Whether the file still starts with this handle's fingerprint lines and still holds `end` bytes.
    func isStill(fingerprintLines lines: Int, through end: Int) throws -> Bool {
        var st = stat()
        guard fstat(fd, &st) == 0, Int(st.st_size) >= end else { return false }
        return startsWith(try pread(at: 0, count: TailFingerprint.limit), fingerprintLines: lines)
    }
}

/// The read buffer the followed files share: it holds bytes of one handle at a time, from
/// that handle's offset on.
final class TailBuffer {
    private var storage: UnsafeMutableRawBufferPointer?
    private var start = 0, end = 0
    private weak var owner: TailHandle?

    deinit { storage?.deallocate() }

    func count(for handle: TailHandle) -> Int { owner === handle ? end - start : 0 }
    func holdsBytes(of handle: TailHandle) -> Bool { owner === handle && end > start }

    var unread: UnsafeRawBufferPointer {
        guard let storage else { return UnsafeRawBufferPointer(start: nil, count: 0) }
        return UnsafeRawBufferPointer(rebasing: storage[start..<end])
    }

    func consume(_ count: Int) { start += count }

    /// Forgets `handle`'s bytes (all bytes when nil); its next read starts again at its offset.
    /// A buffer grown for one long record goes back to its usual size.
    func release(_ handle: TailHandle?) {
        guard handle == nil || owner === handle else { return }
        owner = nil
        start = 0
        end = 0
        if let storage, storage.count > FileSourceReader.chunkSize {
            storage.deallocate()
            self.storage = nil
        }
    }

    /// Reads what `handle`'s file has after the bytes held (taking the buffer over from another
    /// handle, and growing it when one record fills it); returns how many bytes were added.
    func fill(from handle: TailHandle) throws -> Int {
        if owner !== handle {
            owner = handle
            start = 0
            end = 0
        }
        if storage == nil { storage = .allocate(byteCount: FileSourceReader.chunkSize, alignment: 64) }
        var buffer = storage!
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
            storage = bigger
        }
        var added = 0
        while end < buffer.count {
            let n = Glibc.pread(handle.fd, buffer.baseAddress! + end, buffer.count - end, off_t(handle.offset + end))
            if n < 0 {
                if errno == EINTR { continue }
                let code = errno
                throw FileReadError(path: handle.path, message: "read failed: \(String(cString: strerror(code)))", errno: code)
            }
            if n == 0 { break }
            end += n
            added += n
        }
        return added
    }
}
