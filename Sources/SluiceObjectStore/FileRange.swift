#if canImport(Glibc)
    import Glibc
#endif
import Crypto
import NIOCore
import SluiceCore

/// A byte range of a local file: a part of a multipart upload, read from disk as it is sent
/// (memory per part in flight: one chunk, not the part).
public struct FileRange: Sendable, Hashable {
    public var path: String
    public var offset: Int
    public var length: Int

    public init(path: String, offset: Int, length: Int) {
        self.path = path
        self.offset = offset
        self.length = length
    }

    /// Bytes read at a time.
    static let chunk = 1 << 20

    /// Calls `body` with each chunk of the range, in order.
    func forEachChunk(_ body: (UnsafeRawBufferPointer) throws -> Void) throws {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw SluiceError(.io, "cannot open the file to upload: \(String(cString: strerror(errno)))", location: path) }
        defer { close(fd) }
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: Self.chunk, alignment: 16)
        defer { buffer.deallocate() }
        var done = 0
        while done < length {
            let n = pread(fd, buffer.baseAddress!, min(Self.chunk, length - done), off_t(offset + done))
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { throw SluiceError(.io, "reading the file to upload failed at byte \(offset + done)", location: path) }
            try body(UnsafeRawBufferPointer(rebasing: buffer[0..<n]))
            done += n
        }
    }

    /// The range's SHA-256 in lowercase hex (read from the page cache, the file was just written).
    func sha256Hex() throws -> String {
        var hash = SHA256()
        try forEachChunk { hash.update(bufferPointer: $0) }
        return SigV4Signer.hex(hash.finalize())
    }

    /// The whole range in memory (for stores without streaming).
    func bytes() throws -> [UInt8] {
        var all: [UInt8] = []
        all.reserveCapacity(length)
        try forEachChunk { all.append(contentsOf: $0) }
        return all
    }

    /// The range as a sequence of buffers read one chunk at a time, for a request body.
    var chunks: Chunks { Chunks(range: self) }

    struct Chunks: AsyncSequence, Sendable {
        typealias Element = ByteBuffer
        let range: FileRange

        func makeAsyncIterator() -> Iterator { Iterator(range: range) }

        struct Iterator: AsyncIteratorProtocol {
            let range: FileRange
            var done = 0
            var file: Descriptor?

            init(range: FileRange) { self.range = range }

            /// Closes the file when the iterator goes away, read to the end or not.
            final class Descriptor {
                let fd: Int32
                init(_ fd: Int32) { self.fd = fd }
                deinit { close(fd) }
            }

            mutating func next() async throws -> ByteBuffer? {
                guard done < range.length else {
                    file = nil
                    return nil
                }
                if file == nil {
                    let fd = open(range.path, O_RDONLY | O_CLOEXEC)
                    guard fd >= 0 else { throw SluiceError(.io, "cannot open the file to upload", location: range.path) }
                    file = Descriptor(fd)
                }
                let count = Swift.min(FileRange.chunk, range.length - done)
                var buffer = ByteBufferAllocator().buffer(capacity: count)
                let offset = range.offset + done
                let fd = file!.fd
                let n = buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: count) { raw in
                    var got = 0
                    while got < count {
                        let r = pread(fd, raw.baseAddress! + got, count - got, off_t(offset + got))
                        if r < 0 && errno == EINTR { continue }
                        if r <= 0 { break }
                        got += r
                    }
                    return got
                }
                guard n == count else {
                    throw SluiceError(.io, "reading the file to upload failed at byte \(offset + n)", location: range.path)
                }
                done += n
                return buffer
            }
        }
    }
}
