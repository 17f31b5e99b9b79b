import CZstd

/// Streaming zstd decompression over another ``ByteSource``, through libzstd.
public final class ZstdByteSource: ByteSource {
    let inner: any ByteSource
    let context: OpaquePointer
    var input: UnsafeMutableRawBufferPointer
    var inBuffer = ZSTD_inBuffer(src: nil, size: 0, pos: 0)
    var inputEOF = false
    /// True while a frame is only partly decoded.
    var midFrame = false

    public var fileBytesRead: Int { inner.fileBytesRead }

    public init(_ inner: any ByteSource) throws {
        self.inner = inner
        guard let ctx = ZSTD_createDCtx() else {
            throw FileReadError(path: "zstd stream", message: "cannot create a zstd context")
        }
        context = ctx
        input = .allocate(byteCount: ZSTD_DStreamInSize(), alignment: 16)
    }

    /// Corruption found after some bytes were produced: those are returned first, so what is read
    /// before the error does not depend on the size of the reads.
    var pendingError: FileReadError?

    public func read(into buffer: UnsafeMutableRawPointer, count: Int) throws -> Int {
        if let pendingError { throw pendingError }
        var out = ZSTD_outBuffer(dst: buffer, size: count, pos: 0)
        while out.pos < out.size {
            if inBuffer.pos == inBuffer.size {
                if inputEOF { break }
                let n = try inner.read(into: input.baseAddress!, count: input.count)
                if n == 0 { inputEOF = true; continue }
                inBuffer = ZSTD_inBuffer(src: UnsafeRawPointer(input.baseAddress!), size: n, pos: 0)
            }
            let rc = ZSTD_decompressStream(context, &out, &inBuffer)
            if ZSTD_isError(rc) != 0 {
                let error = FileReadError(path: "zstd stream", message: "corrupt zstd data: \(String(cString: ZSTD_getErrorName(rc)))")
                guard out.pos > 0 else { throw error }
                pendingError = error
                break
            }
            midFrame = rc != 0
        }
        if out.pos == 0 && inputEOF && midFrame {
            midFrame = false
            throw FileReadError(path: "zstd stream", message: "truncated zstd data (the file ends inside a frame)")
        }
        return out.pos
    }

    public func close() { inner.close() }

    deinit {
        ZSTD_freeDCtx(context)
        input.deallocate()
    }
}
