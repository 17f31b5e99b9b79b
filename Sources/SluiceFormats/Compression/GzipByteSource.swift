import CZlib

/// Streaming gzip (and zlib) decompression over another ``ByteSource``, through zlib.
/// Concatenated gzip members are read as one stream, as `gzip -d` does.
public final class GzipByteSource: ByteSource {
    let inner: any ByteSource
    var stream = z_stream()
    var input: UnsafeMutableRawBufferPointer
    var ended = false
    var inputEOF = false
    /// Corruption found after some bytes were produced: those are returned first, so what is read
    /// before the error does not depend on the size of the reads.
    var pendingError: FileReadError?

    public var fileBytesRead: Int { inner.fileBytesRead }

    public init(_ inner: any ByteSource) throws {
        self.inner = inner
        input = .allocate(byteCount: 256 << 10, alignment: 16)
        // 15 + 32: accept gzip or zlib headers, maximum window.
        let rc = inflateInit2_(&stream, 15 + 32, ZLIB_VERSION, Int32(MemoryLayout<z_stream>.size))
        guard rc == Z_OK else {
            input.deallocate()
            throw FileReadError(path: "\(inner)", message: "zlib initialisation failed (\(rc))")
        }
    }

    public func read(into buffer: UnsafeMutableRawPointer, count: Int) throws -> Int {
        if let pendingError { throw pendingError }
        guard !ended else { return 0 }
        stream.next_out = buffer.assumingMemoryBound(to: Bytef.self)
        stream.avail_out = UInt32(min(count, Int(UInt32.max)))
        while stream.avail_out > 0 {
            if stream.avail_in == 0 && !inputEOF {
                let n = try inner.read(into: input.baseAddress!, count: input.count)
                if n == 0 {
                    inputEOF = true
                } else {
                    stream.next_in = input.baseAddress!.assumingMemoryBound(to: Bytef.self)
                    stream.avail_in = UInt32(n)
                }
            }
            if stream.avail_in == 0 && inputEOF { break }
            let rc = inflate(&stream, Z_NO_FLUSH)
            if rc == Z_STREAM_END {
                // Another member may follow.
                if stream.avail_in == 0 {
                    let n = try inner.read(into: input.baseAddress!, count: input.count)
                    if n == 0 { inputEOF = true; ended = true; break }
                    stream.next_in = input.baseAddress!.assumingMemoryBound(to: Bytef.self)
                    stream.avail_in = UInt32(n)
                }
                inflateReset(&stream)
            } else if rc != Z_OK && rc != Z_BUF_ERROR {
                let detail = stream.msg.map { String(cString: $0) } ?? "code \(rc)"
                let error = FileReadError(path: "gzip stream", message: "corrupt gzip data: \(detail)")
                guard count - Int(stream.avail_out) > 0 else { throw error }
                pendingError = error
                break
            }
        }
        let produced = count - Int(stream.avail_out)
        if produced == 0 && inputEOF && !ended {
            ended = true
            throw FileReadError(path: "gzip stream", message: "truncated gzip data (the file ends inside a compressed block)")
        }
        return produced
    }

    public func close() { inner.close() }

    deinit {
        inflateEnd(&stream)
        input.deallocate()
    }
}
