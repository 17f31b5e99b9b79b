import CSnappy
import CZlib
import CZstd

/// Compresses page bodies with the chosen codec through the system libraries, reusing its
/// zstd/zlib context from page to page.
final class ParquetCompressor {
    let codec: ParquetCodec
    let level: Int32
    private var zstdContext: OpaquePointer?
    /// zlib keeps a pointer back to its stream, so it lives at a fixed address.
    private var zlibStream: UnsafeMutablePointer<z_stream>?

    init(codec: ParquetCodec, level: Int32) {
        self.codec = codec
        self.level = level
    }

    deinit {
        if let zstdContext { ZSTD_freeCCtx(zstdContext) }
        if let zlibStream {
            deflateEnd(zlibStream)
            zlibStream.deallocate()
        }
    }

    /// Appends `input` compressed to `out`; returns the number of bytes appended.
    @discardableResult
    func compress(_ input: UnsafeRawBufferPointer, into out: GrowableBytes) throws -> Int {
        switch codec {
        case .uncompressed:
            out.append(input)
            return input.count
        case .zstd: return try zstd(input, into: out)
        case .snappy: return try snappy(input, into: out)
        case .gzip: return try gzip(input, into: out)
        default: throw ParquetFormatError("cannot write codec \(codec)", unsupported: true)
        }
    }

    private func zstd(_ input: UnsafeRawBufferPointer, into out: GrowableBytes) throws -> Int {
        if zstdContext == nil { zstdContext = ZSTD_createCCtx() }
        guard let ctx = zstdContext else { throw ParquetFormatError("cannot create a zstd compression context") }
        let bound = ZSTD_compressBound(input.count)
        let dst = out.writableTail(minimum: bound)
        let n = ZSTD_compressCCtx(ctx, dst, bound, input.baseAddress, input.count, level)
        guard ZSTD_isError(n) == 0 else {
            throw ParquetFormatError("zstd compression failed: \(String(cString: ZSTD_getErrorName(n)))")
        }
        out.commit(n)
        return n
    }

    private func snappy(_ input: UnsafeRawBufferPointer, into out: GrowableBytes) throws -> Int {
        var length = snappy_max_compressed_length(input.count)
        let dst = out.writableTail(minimum: length)
        let source = input.baseAddress?.assumingMemoryBound(to: CChar.self) ?? UnsafePointer(bitPattern: 1)!
        let status = snappy_compress(source, input.count, dst.assumingMemoryBound(to: CChar.self), &length)
        guard status == SNAPPY_OK else { throw ParquetFormatError("snappy compression failed (\(status))") }
        out.commit(length)
        return length
    }

    private func gzip(_ input: UnsafeRawBufferPointer, into out: GrowableBytes) throws -> Int {
        let stream: UnsafeMutablePointer<z_stream>
        if let existing = zlibStream {
            stream = existing
            deflateReset(stream)
        } else {
            stream = .allocate(capacity: 1)
            stream.initialize(to: z_stream())
            // windowBits 15 + 16: a gzip wrapper, as the Parquet GZIP codec requires.
            let rc = deflateInit2_(
                stream, level == 0 ? Z_DEFAULT_COMPRESSION : min(level, 9), Z_DEFLATED, 31, 8,
                Z_DEFAULT_STRATEGY, ZLIB_VERSION, Int32(MemoryLayout<z_stream>.size))
            guard rc == Z_OK else {
                stream.deallocate()
                throw ParquetFormatError("zlib initialisation failed (\(rc))")
            }
            zlibStream = stream
        }
        let bound = Int(deflateBound(stream, uLong(input.count))) + 32
        let dst = out.writableTail(minimum: bound)
        stream.pointee.next_in = UnsafeMutablePointer(mutating: input.baseAddress?.assumingMemoryBound(to: Bytef.self))
        stream.pointee.avail_in = uInt(input.count)
        stream.pointee.next_out = dst.assumingMemoryBound(to: Bytef.self)
        stream.pointee.avail_out = uInt(bound)
        let rc = deflate(stream, Z_FINISH)
        guard rc == Z_STREAM_END else { throw ParquetFormatError("gzip compression failed (\(rc))") }
        let n = bound - Int(stream.pointee.avail_out)
        out.commit(n)
        return n
    }
}
