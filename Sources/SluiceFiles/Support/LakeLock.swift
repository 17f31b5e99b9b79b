#if canImport(Glibc)
    import Glibc
#endif
import SluiceCore

/// Orders the changes a Parquet sink makes to a local lake's directories with the moments
/// `sluice lifecycle run` swaps a partition directory for its compacted copy, or moves one away.
///
/// A sink holds it shared around each change it makes: creating a partition directory and a
/// temporary file, renaming a file to publish it, removing an uncommitted one. A lifecycle run
/// holds it exclusively only while it links a partition's files into the copy, swaps the two
/// directories and fsyncs them (usually milliseconds), or moves a partition out of the lake, so
/// no change of a sink can fall between the two and be lost.
/// It is an advisory `flock(2)` on `<lake>/.sluice-lake.lock`: the kernel releases it when its
/// process dies, so a `kill -9` never leaves it held.
public struct LakeLock: Sendable {
    /// The lock file's name at the lake's root.
    public static let fileName = ".sluice-lake.lock"
    public let root: String
    public var path: String { root.hasSuffix("/") ? root + Self.fileName : "\(root)/\(Self.fileName)" }

    public init(root: String) { self.root = root }

    /// Runs `body` holding the lock shared (a sink's change).
    public func shared<T>(_ body: () throws -> T) throws -> T { try holding(LOCK_SH, body) }

    /// Runs `body` holding the lock exclusively (a lifecycle swap).
    public func exclusive<T>(_ body: () throws -> T) throws -> T { try holding(LOCK_EX, body) }

    private func holding<T>(_ operation: Int32, _ body: () throws -> T) throws -> T {
        try DurableFile.makeDirectory(root)
        // Read-only is enough for flock, and works whoever created the file.
        let fd = open(path, O_RDONLY | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw FileWriteError(path: path, operation: "open the lake's lock file", errno: errno).sluiceError }
        // Closing the descriptor releases the lock.
        defer { _ = Glibc.close(fd) }
        while flock(fd, operation) != 0 {
            guard errno == EINTR else { throw FileWriteError(path: path, operation: "lock the lake", errno: errno).sluiceError }
        }
        return try body()
    }
}
