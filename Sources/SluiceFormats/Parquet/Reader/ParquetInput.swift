#if canImport(Glibc)
    import Glibc
#endif

/// Random access to the bytes of a Parquet file.
protocol ParquetInput: AnyObject {
    var size: Int { get }
    var name: String { get }
    /// Reads `count` bytes at `offset`; the range has been checked against `size`.
    func read(offset: Int, count: Int) throws -> [UInt8]
}

/// A file read with `pread`.
final class ParquetFileInput: ParquetInput {
    let name: String
    let size: Int
    private let fd: Int32

    init(path: String) throws {
        name = path
        fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else {
            throw ParquetError(.io, path: path, "cannot open: \(String(cString: strerror(errno)))")
        }
        var st = stat()
        guard fstat(fd, &st) == 0 else {
            let message = String(cString: strerror(errno))
            _ = close(fd)
            throw ParquetError(.io, path: path, "cannot stat: \(message)")
        }
        size = Int(st.st_size)
    }

    deinit { _ = close(fd) }

    func read(offset: Int, count: Int) throws -> [UInt8] {
        precondition(offset >= 0 && count >= 0 && offset + count <= size)
        var result = [UInt8](repeating: 0, count: count)
        var done = 0
        try result.withUnsafeMutableBytes { buffer in
            while done < count {
                let n = pread(fd, buffer.baseAddress! + done, count - done, off_t(offset + done))
                if n < 0 {
                    if errno == EINTR { continue }
                    throw ParquetError(.io, path: name, "read failed at offset \(offset + done): \(String(cString: strerror(errno)))")
                }
                if n == 0 {
                    throw ParquetError(.malformed, path: name, "file shrank while reading (ends at \(offset + done))")
                }
                done += n
            }
        }
        return result
    }
}

/// A file already in memory.
final class ParquetMemoryInput: ParquetInput {
    let name: String
    let bytes: [UInt8]
    var size: Int { bytes.count }

    init(bytes: [UInt8], name: String) {
        self.bytes = bytes
        self.name = name
    }

    func read(offset: Int, count: Int) throws -> [UInt8] {
        Array(bytes[offset..<(offset + count)])
    }
}

/// The end of a file (its footer) without its data: for reading an object's footer from a
/// suffix range. Its head reads as the magic (not fetched); data reads fail.
final class ParquetTailInput: ParquetInput {
    let name: String
    let size: Int
    let tail: [UInt8]

    init(name: String, size: Int, tail: [UInt8]) {
        self.name = name
        self.size = size
        self.tail = tail
    }

    func read(offset: Int, count: Int) throws -> [UInt8] {
        if offset == 0 && count == 4 { return ParquetWriter.magic }
        let start = size - tail.count
        guard offset >= start else { throw ParquetError(.malformed, path: name, "only the footer of this file was fetched") }
        return Array(tail[(offset - start)..<(offset - start + count)])
    }
}
