#if canImport(Glibc)
    import Glibc
#endif
import SluiceCore

/// A Parquet file that cannot be written or read, naming the file and what is wrong.
public struct ParquetError: Error, CustomStringConvertible, Sendable {
    public enum Kind: String, Sendable {
        /// The file is not valid Parquet (bad magic, truncated, corrupt metadata or pages).
        case malformed
        /// Valid Parquet that uses a feature Sluice does not read (an unknown codec, a nanosecond timestamp finer than a microsecond…).
        case unsupported
        /// The data handed to the writer does not fit its schema.
        case invalidData
        /// Reading or writing the underlying file failed.
        case io
    }

    public var kind: Kind
    /// The file (or `<memory>`) the error is about.
    public var path: String
    public var message: String
    /// An I/O failure worth retrying (a full disk, a transient device error).
    public var retryable = false

    public init(_ kind: Kind, path: String, _ message: String, retryable: Bool = false) {
        self.kind = kind
        self.path = path
        self.message = message
        self.retryable = retryable
    }

    /// A failed system call on `path`: `errno` says whether it is worth retrying.
    static func io(path: String, _ what: String, errno code: Int32) -> ParquetError {
        ParquetError(
            .io, path: path, "\(what) failed: \(String(cString: strerror(code)))",
            retryable: [ENOSPC, EDQUOT, EIO, EAGAIN].contains(code))
    }

    public var description: String { "\(path): \(message)" }

    /// The error classified for the runtime.
    public var sluiceError: SluiceError {
        let code: SluiceError.Code =
            switch kind {
            case .malformed: .malformedInput
            case .unsupported: .unsupported
            case .invalidData: .schemaViolation
            case .io: .io
            }
        return SluiceError(code, message, location: path, retryable: retryable ? true : nil)
    }
}

/// A failure inside the decoding layers, before the file name is known; ``ParquetReader`` turns
/// it into a ``ParquetError`` with the path and the column.
struct ParquetFormatError: Error, CustomStringConvertible {
    var message: String
    var unsupported = false
    init(_ message: String, unsupported: Bool = false) {
        self.message = message
        self.unsupported = unsupported
    }
    var description: String { message }
}
