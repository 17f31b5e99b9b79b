#if canImport(Glibc)
    import Glibc
#endif
import SluiceCore

/// Errors of writing output files, classified for retries (ENOSPC and EIO are worth retrying).
struct FileWriteError: Error, CustomStringConvertible, POSIXErrorLike {
    var path: String
    var operation: String
    var errno: Int32

    var description: String { "\(operation) \(path): \(String(cString: strerror(errno)))" }

    var sluiceError: SluiceError {
        // A failed fsync may have dropped dirty pages (Linux): retrying it could report success
        // for data that is gone, so it is never retried; the run stops and replays from the
        // checkpoint into a new file.
        let retryable = !operation.contains("fsync") && [ENOSPC, EIO, EINTR, EAGAIN, EDQUOT].contains(errno)
        return SluiceError(
            .io,
            "\(operation) failed: \(String(cString: strerror(errno)))"
                + (errno == EACCES ? "; check the permissions of the output directory" : ""),
            location: path, retryable: retryable)
    }
}

/// A file written with an output buffer and made durable with `fsync` (POSIX calls, no Foundation).
final class DurableFile {
    let path: String
    let fd: Int32
    var buffer: [UInt8] = []
    private(set) var bytesWritten = 0
    private var writeback = WritebackHint()

    init(creating path: String) throws {
        self.path = path
        fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw FileWriteError(path: path, operation: "create", errno: errno) }
        buffer.reserveCapacity(1 << 20)
    }

    deinit { _ = Glibc.close(fd) }

    /// Total size once buffered bytes are written.
    var size: Int { bytesWritten + buffer.count }

    func flushIfLarge() throws {
        if buffer.count >= 1 << 20 { try flush() }
    }

    /// Writes the buffered bytes. On failure the bytes already written leave the buffer, so a
    /// retry continues where the failure happened and never writes anything twice.
    func flush() throws {
        var written = 0
        var failure: FileWriteError?
        buffer.withUnsafeBytes { raw in
            while written < raw.count {
                let n = write(fd, raw.baseAddress! + written, raw.count - written)
                if n < 0 {
                    if errno == EINTR { continue }
                    failure = FileWriteError(path: path, operation: "write", errno: errno)
                    return
                }
                written += n
            }
        }
        bytesWritten += written
        writeback.wrote(written, to: fd)
        if let failure {
            buffer.removeFirst(written)
            throw failure
        }
        buffer.removeAll(keepingCapacity: true)
    }

    /// Writes the buffer and waits until the data is on disk.
    func sync() throws {
        try flush()
        guard fsync(fd) == 0 else { throw FileWriteError(path: path, operation: "fsync", errno: errno) }
    }

    static func syncDirectory(_ path: String) throws {
        let fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { throw FileWriteError(path: path, operation: "open directory", errno: errno) }
        defer { _ = Glibc.close(fd) }
        guard fsync(fd) == 0 else { throw FileWriteError(path: path, operation: "fsync directory", errno: errno) }
    }

    static func rename(_ from: String, to: String) throws {
        guard Glibc.rename(from, to) == 0 else { throw FileWriteError(path: to, operation: "rename", errno: errno) }
    }

    static func exists(_ path: String) -> Bool { access(path, F_OK) == 0 }

    static func makeDirectory(_ path: String) throws {
        var partial = path.hasPrefix("/") ? "" : "."
        for component in path.split(separator: "/") {
            partial += "/" + component
            if mkdir(partial, 0o755) != 0 && errno != EEXIST {
                throw FileWriteError(path: partial, operation: "create directory", errno: errno)
            }
        }
    }
}
