#if canImport(Glibc)
    import Glibc
#endif
import SluiceCore

/// A sequential reader of bytes (a file, or a decompressor over one).
public protocol ByteSource: AnyObject {
    /// Reads up to `count` bytes into `buffer`; returns 0 only at the end of input.
    func read(into buffer: UnsafeMutableRawPointer, count: Int) throws -> Int
    /// Bytes consumed from the underlying file so far (compressed bytes for decompressors).
    var fileBytesRead: Int { get }
    func close()
}

/// Reading errors with their file and cause.
public struct FileReadError: Error, CustomStringConvertible, POSIXErrorLike {
    public var path: String
    public var message: String
    public var errno: Int32?

    public init(path: String, message: String, errno: Int32? = nil) {
        self.path = path
        self.message = message
        self.errno = errno
    }

    public var description: String { "\(path): \(message)" }

    public var sluiceError: SluiceError {
        let retryable = errno.map { $0 == EINTR || $0 == EAGAIN || $0 == EIO } ?? false
        return SluiceError(errno == nil ? .malformedInput : .io, message, location: path, retryable: retryable)
    }
}

/// Plain file reading through POSIX `read`.
public final class FileByteSource: ByteSource {
    let fd: Int32
    public let path: String
    public private(set) var fileBytesRead = 0

    public init(path: String) throws {
        self.path = path
        fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else {
            let code = errno
            throw FileReadError(path: path, message: "cannot open: \(String(cString: strerror(code)))", errno: code)
        }
    }

    public func read(into buffer: UnsafeMutableRawPointer, count: Int) throws -> Int {
        while true {
            let n = Glibc.read(fd, buffer, count)
            if n >= 0 { fileBytesRead += n; return n }
            if errno == EINTR { continue }
            let code = errno
            throw FileReadError(path: path, message: "read failed: \(String(cString: strerror(code)))", errno: code)
        }
    }

    /// Set by ``close()``: the descriptor number may already belong to another file then, so
    /// closing it again (in `deinit`) would close that file under its owner.
    private var isClosed = false

    public func close() {
        guard !isClosed else { return }
        isClosed = true
        _ = Glibc.close(fd)
    }

    deinit { if !isClosed { _ = Glibc.close(fd) } }
}

/// The compression of an input file.
public enum InputCompression: String, Sendable, CaseIterable {
    case none, gzip, zstd

    /// Detects gzip (`1f 8b`) and zstd (`28 b5 2f fd`) by their magic bytes.
    public static func detect(_ prefix: [UInt8]) -> InputCompression {
        if prefix.count >= 2, prefix[0] == 0x1F, prefix[1] == 0x8B { return .gzip }
        if prefix.count >= 4, prefix[0] == 0x28, prefix[1] == 0xB5, prefix[2] == 0x2F, prefix[3] == 0xFD { return .zstd }
        return .none
    }

    /// Opens `path` with the right decompressor (`nil` = detect from the first bytes).
    public static func open(path: String, compression: InputCompression?) throws -> any ByteSource {
        var kind = compression
        if kind == nil {
            let probe = try FileByteSource(path: path)
            var magic = [UInt8](repeating: 0, count: 4)
            let n = try magic.withUnsafeMutableBytes { try probe.read(into: $0.baseAddress!, count: 4) }
            probe.close()
            kind = detect(Array(magic.prefix(n)))
        }
        let file = try FileByteSource(path: path)
        switch kind! {
        case .none: return file
        case .gzip: return try GzipByteSource(file)
        case .zstd: return try ZstdByteSource(file)
        }
    }
}
