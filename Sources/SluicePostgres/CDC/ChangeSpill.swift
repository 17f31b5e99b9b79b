import Foundation
import SluiceCore

/// The changes of one large transaction, kept in a temporary file instead of memory.
///
/// A transaction is handed over only once its commit has arrived, so until then all of its
/// changes are held. Past ``ReplicationStream/spillChanges`` in memory they are appended here,
/// and after the commit they are read back in order, a batch at a time. The file is unlinked as
/// soon as it is created: it takes disk space only while open, and a crash leaves nothing
/// behind. It lives in the system's temporary directory (`TMPDIR`, default `/tmp`).
///
/// Owned by the one reader whose stream holds the transaction; never used by two tasks at once.
final class ChangeSpill: @unchecked Sendable {
    private let descriptor: Int32
    /// Encoded changes not yet written (written once they pass ``flushBytes``).
    private var pending: [UInt8] = []
    private var writeOffset: off_t = 0
    /// Read back: the file's bytes from `readOffset` on, starting with `buffer[bufferStart...]`.
    private var buffer: [UInt8] = []
    private var bufferStart = 0
    private var readOffset: off_t = 0
    /// Changes appended, and read back.
    private(set) var count = 0
    private(set) var read = 0

    static let flushBytes = 1 << 20

    init(directory: String = NSTemporaryDirectory()) throws {
        let template = (directory as NSString).appendingPathComponent("sluice-cdc-spill-XXXXXX")
        var path = Array(template.utf8CString)
        let fd = path.withUnsafeMutableBufferPointer { mkstemp($0.baseAddress!) }
        guard fd >= 0 else {
            throw SluiceError(
                .io, "cannot create a file to hold a large transaction's changes: \(String(cString: strerror(errno)))",
                location: directory, retryable: true)
        }
        unlink(path.withUnsafeBufferPointer { String(cString: $0.baseAddress!) })
        // Close-on-exec: a child process must not keep the file (and its disk space) alive.
        _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
        descriptor = fd
    }

    deinit { close(descriptor) }

    /// Whether every change appended has been read back.
    var isDrained: Bool { read == count }

    func append(_ changes: [ChangeEvents.Change]) throws {
        for change in changes { ChangeSpill.encode(change, into: &pending) }
        count += changes.count
        if pending.count >= Self.flushBytes { try flush() }
    }

    /// Up to `limit` changes, in the order they were appended.
    func next(_ limit: Int) throws -> [ChangeEvents.Change] {
        try flush()
        var out: [ChangeEvents.Change] = []
        out.reserveCapacity(min(limit, count - read))
        while out.count < limit && read < count {
            if let (change, length) = ChangeSpill.decode(buffer, at: bufferStart) {
                out.append(change)
                bufferStart += length
                read += 1
            } else {
                try refill()
            }
        }
        return out
    }

    private func flush() throws {
        guard !pending.isEmpty else { return }
        // The error of the write that failed (`errno` read right there), or 0.
        let failure = pending.withUnsafeBytes { bytes -> Int32 in
            var done = 0
            while done < bytes.count {
                let n = pwrite(descriptor, bytes.baseAddress! + done, bytes.count - done, writeOffset + off_t(done))
                if n < 0 && errno == EINTR { continue }
                if n < 0 { return errno }
                if n == 0 { return ENOSPC }
                done += n
            }
            return 0
        }
        guard failure == 0 else {
            throw SluiceError(
                .io, "cannot write a large transaction's changes to the temporary directory: \(String(cString: strerror(failure)))",
                location: NSTemporaryDirectory(), retryable: true)
        }
        writeOffset += off_t(pending.count)
        pending.removeAll(keepingCapacity: true)
    }

    /// Keeps the bytes not yet decoded and reads the next megabyte (more if one change is larger).
    private func refill() throws {
        let keep = buffer.count - bufferStart
        let want = max(Self.flushBytes, ChangeSpill.needed(buffer, at: bufferStart) - keep)
        var got = 0
        let next = try [UInt8](unsafeUninitializedCapacity: keep + want) { out, initialized in
            buffer.withUnsafeBytes { old in
                if keep > 0 { UnsafeMutableRawPointer(out.baseAddress!).copyMemory(from: old.baseAddress! + bufferStart, byteCount: keep) }
            }
            got = pread(descriptor, out.baseAddress! + keep, want, readOffset)
            guard got > 0 else {
                initialized = 0
                throw SluiceError(.io, "a large transaction's changes could not be read back from the temporary directory", retryable: true)
            }
            initialized = keep + got
        }
        buffer = next
        bufferStart = 0
        readOffset += off_t(got)
    }

    // MARK: Encoding

    /// `u32` length of the record, then: op, table, key, before, after, types (each a `u32`
    /// length, `UInt32.max` for none, then the bytes), seq (`i64`), snapshot epoch (`u8` flag,
    /// `u64`). Little-endian: the file never leaves this process.
    static func encode(_ c: ChangeEvents.Change, into out: inout [UInt8]) {
        let start = out.count
        out.append(contentsOf: [0, 0, 0, 0])
        func bytes<C: Collection>(_ b: C?) where C.Element == UInt8 {
            guard let b else { return integer(UInt32.max) }
            integer(UInt32(b.count))
            out.append(contentsOf: b)
        }
        func integer<I: FixedWidthInteger>(_ v: I) {
            withUnsafeBytes(of: v.littleEndian) { out.append(contentsOf: $0) }
        }
        bytes(c.op.utf8)
        bytes(c.table.utf8)
        bytes(c.key)
        bytes(c.before)
        bytes(c.after)
        bytes(c.types)
        integer(Int64(c.seq))
        // Flags: 1 a snapshot epoch follows (else zeros), 2 the change is partial.
        out.append((c.snapshotEpoch == nil ? 0 : 1) | (c.partial ? 2 : 0))
        integer(c.snapshotEpoch ?? 0)
        let length = UInt32(out.count - start)
        withUnsafeBytes(of: length.littleEndian) { out.replaceSubrange(start..<start + 4, with: $0) }
    }

    /// The bytes the record at `offset` of `buffer` takes (4 while its length is not read).
    static func needed(_ buffer: [UInt8], at offset: Int) -> Int {
        guard buffer.count - offset >= 4 else { return 4 }
        return Int(buffer.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: offset, as: UInt32.self).littleEndian })
    }

    /// The change encoded at `offset`, and its length; nil when its bytes are not all there.
    static func decode(_ buffer: [UInt8], at offset: Int) -> (ChangeEvents.Change, Int)? {
        buffer.withUnsafeBytes { raw -> (ChangeEvents.Change, Int)? in
            guard raw.count - offset >= 4 else { return nil }
            let length = Int(raw.loadUnaligned(fromByteOffset: offset, as: UInt32.self).littleEndian)
            guard raw.count - offset >= length else { return nil }
            var at = offset + 4
            func integer<I: FixedWidthInteger>(_: I.Type) -> I {
                defer { at += MemoryLayout<I>.size }
                return I(littleEndian: raw.loadUnaligned(fromByteOffset: at, as: I.self))
            }
            func bytes() -> [UInt8]? {
                let n = integer(UInt32.self)
                guard n != UInt32.max else { return nil }
                defer { at += Int(n) }
                return Array(raw[at..<at + Int(n)])
            }
            let op = String(decoding: bytes() ?? [], as: UTF8.self)
            let table = String(decoding: bytes() ?? [], as: UTF8.self)
            let key = bytes(), before = bytes(), after = bytes(), types = bytes()
            let seq = Int(integer(Int64.self))
            let flags = raw[at]
            at += 1
            let epoch = integer(UInt64.self)
            var change = ChangeEvents.Change(op: op, table: table, key: key, before: before, after: after, seq: seq, types: types)
            change.snapshotEpoch = flags & 1 != 0 ? epoch : nil
            change.partial = flags & 2 != 0
            return (change, length)
        }
    }
}
