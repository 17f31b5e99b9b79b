#if canImport(Glibc)
    import Glibc
#endif
import SluiceCore

/// Where ``ParquetWriter`` puts the bytes of a file, in order.
public protocol ParquetOutput: AnyObject {
    /// Appends `bytes`.
    func write(_ bytes: UnsafeRawBufferPointer) throws
    /// The number of bytes written so far: the file offset of the next write.
    var offset: Int { get }
    /// A name for error messages (a path).
    var name: String { get }
}

extension ParquetOutput {
    public var name: String { "<output>" }
}

/// Collects the file in memory.
public final class ParquetMemoryOutput: ParquetOutput {
    public private(set) var bytes: [UInt8] = []
    public init() {}
    public var offset: Int { bytes.count }
    public var name: String { "<memory>" }
    public func write(_ data: UnsafeRawBufferPointer) throws { bytes.append(contentsOf: data) }
}

/// Writes to a file descriptor with POSIX `write`, buffering small writes.
public final class ParquetFileOutput: ParquetOutput {
    public let name: String
    private let fd: Int32
    private let ownsDescriptor: Bool
    public private(set) var offset = 0
    private let buffer = GrowableBytes(capacity: 1 << 20)
    private var closed = false
    private var writeback = WritebackHint()

    /// Creates (or truncates) the file at `path`.
    public init(path: String, permissions: mode_t = 0o644) throws {
        name = path
        fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, permissions)
        guard fd >= 0 else {
            throw ParquetError.io(path: path, "create", errno: errno)
        }
        ownsDescriptor = true
    }

    /// Writes to an open descriptor (positioned at the file start); `close()` leaves it open.
    public init(descriptor: Int32, name: String) {
        fd = descriptor
        self.name = name
        ownsDescriptor = false
    }

    public func write(_ data: UnsafeRawBufferPointer) throws {
        if buffer.count + data.count > buffer.capacity { try drain() }
        if data.count >= buffer.capacity {
            try writeAll(data)
        } else {
            buffer.append(data)
        }
        offset += data.count
    }

    private func drain() throws {
        guard !buffer.isEmpty else { return }
        try writeAll(buffer.bytes)
        buffer.removeAll()
    }

    private func writeAll(_ data: UnsafeRawBufferPointer) throws {
        var done = 0
        while done < data.count {
            let n = Glibc.write(fd, data.baseAddress! + done, data.count - done)
            if n < 0 {
                if errno == EINTR { continue }
                throw ParquetError.io(path: name, "write", errno: errno)
            }
            done += n
        }
        writeback.wrote(data.count, to: fd)
    }

    /// Writes out buffered bytes.
    public func flush() throws { try drain() }

    /// Flushes and `fsync`s the file.
    public func sync() throws {
        try drain()
        guard fsync(fd) == 0 else {
            // Worth retrying (a full disk reported at fsync) only by writing the file again: the
            // Parquet sink discards it and starts over from its checkpoint.
            throw ParquetError.io(path: name, "fsync", errno: errno)
        }
    }

    /// Flushes and closes the descriptor (when this output opened it).
    public func close() throws {
        guard !closed else { return }
        closed = true
        // The descriptor is closed whatever the drain does: a failed one (a full disk) must not
        // keep an unlinked file's blocks allocated.
        var drainFailure: (any Error)?
        do { try drain() } catch { drainFailure = error }
        if ownsDescriptor, Glibc.close(fd) != 0, drainFailure == nil {
            throw ParquetError.io(path: name, "close", errno: errno)
        }
        if let drainFailure { throw drainFailure }
    }

    deinit {
        if !closed && ownsDescriptor { _ = Glibc.close(fd) }
    }
}
