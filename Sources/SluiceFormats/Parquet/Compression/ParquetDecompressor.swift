import CSnappy
import CZlib
import CZstd

/// Decompresses page bodies; every result must have exactly the size the page header declares.
final class ParquetDecompressor {
    private var zstdContext: OpaquePointer?

    init() {}

    deinit {
        if let zstdContext { ZSTD_freeDCtx(zstdContext) }
    }

    /// Decompresses `input` (a page body compressed with `codec`) into `uncompressedSize` bytes.
    func decompress(_ codec: ParquetCodec, _ input: UnsafeRawBufferPointer, uncompressedSize: Int) throws -> [UInt8] {
        if codec == .uncompressed {
            guard input.count == uncompressedSize else {
                throw ParquetFormatError("uncompressed page holds \(input.count) bytes but its header says \(uncompressedSize)")
            }
            return Array(input)
        }
        guard uncompressedSize >= 0 && uncompressedSize <= Int(Int32.max) else {
            throw ParquetFormatError("page uncompressed size \(uncompressedSize) out of range")
        }
        try checkDeclaredSize(codec, input, uncompressedSize)
        var output = [UInt8](repeating: 0, count: uncompressedSize)
        let produced = try output.withUnsafeMutableBytes { dst -> Int in
            switch codec {
            case .zstd: return try zstd(input, dst)
            case .snappy: return try snappy(input, dst)
            case .gzip: return try gzip(input, dst)
            default: throw ParquetFormatError("compression codec \(codec) is not supported", unsupported: true)
            }
        }
        guard produced == uncompressedSize else {
            throw ParquetFormatError("\(codec) page decompressed to \(produced) bytes but its header says \(uncompressedSize)")
        }
        return output
    }

    /// Refuses sizes the compressed bytes cannot produce, before allocating for them.
    private func checkDeclaredSize(_ codec: ParquetCodec, _ input: UnsafeRawBufferPointer, _ size: Int) throws {
        switch codec {
        case .snappy:
            guard let src = input.baseAddress?.assumingMemoryBound(to: CChar.self) else { break }
            var length = 0
            guard snappy_uncompressed_length(src, input.count, &length) == SNAPPY_OK else {
                throw ParquetFormatError("corrupt snappy page (bad length header)")
            }
            guard length == size else {
                throw ParquetFormatError("snappy page decompresses to \(length) bytes but its header says \(size)")
            }
        case .zstd:
            let content = ZSTD_getFrameContentSize(input.baseAddress, input.count)
            // ZSTD_CONTENTSIZE_UNKNOWN / _ERROR are the two largest values; a known size (of the
            // first frame) cannot exceed the page's.
            if content < UInt64.max - 1 && content > UInt64(size) {
                throw ParquetFormatError("zstd page decompresses to \(content) bytes but its header says \(size)")
            }
        case .gzip:
            // Deflate expands at most about 1032:1.
            guard size <= input.count * 1032 + 1024 else {
                throw ParquetFormatError("gzip page of \(input.count) bytes cannot hold the \(size) bytes its header says")
            }
        default:
            break
        }
    }

    private func zstd(_ input: UnsafeRawBufferPointer, _ dst: UnsafeMutableRawBufferPointer) throws -> Int {
        if zstdContext == nil { zstdContext = ZSTD_createDCtx() }
        guard let ctx = zstdContext else { throw ParquetFormatError("cannot create a zstd decompression context") }
        let n = ZSTD_decompressDCtx(ctx, dst.baseAddress, dst.count, input.baseAddress, input.count)
        guard ZSTD_isError(n) == 0 else {
            throw ParquetFormatError("corrupt zstd page: \(String(cString: ZSTD_getErrorName(n)))")
        }
        return n
    }

    private func snappy(_ input: UnsafeRawBufferPointer, _ dst: UnsafeMutableRawBufferPointer) throws -> Int {
        guard let src = input.baseAddress?.assumingMemoryBound(to: CChar.self) else {
            throw ParquetFormatError("empty snappy page")
        }
        var length = 0
        guard snappy_uncompressed_length(src, input.count, &length) == SNAPPY_OK else {
            throw ParquetFormatError("corrupt snappy page (bad length header)")
        }
        guard length == dst.count else {
            throw ParquetFormatError("snappy page decompresses to \(length) bytes but its header says \(dst.count)")
        }
        if length == 0 { return 0 }
        var outLength = dst.count
        let status = snappy_uncompress(src, input.count, dst.baseAddress!.assumingMemoryBound(to: CChar.self), &outLength)
        guard status == SNAPPY_OK else { throw ParquetFormatError("corrupt snappy page (\(status))") }
        return outLength
    }

    private func gzip(_ input: UnsafeRawBufferPointer, _ dst: UnsafeMutableRawBufferPointer) throws -> Int {
        // zlib keeps a pointer back to its stream, so it lives at a fixed address.
        let stream = UnsafeMutablePointer<z_stream>.allocate(capacity: 1)
        stream.initialize(to: z_stream())
        defer { stream.deallocate() }
        // 15 + 32: accept a gzip or zlib header.
        guard inflateInit2_(stream, 15 + 32, ZLIB_VERSION, Int32(MemoryLayout<z_stream>.size)) == Z_OK else {
            throw ParquetFormatError("zlib initialisation failed")
        }
        defer { inflateEnd(stream) }
        var scratch: UInt8 = 0
        return try withUnsafeMutablePointer(to: &scratch) { scratchPointer in
            stream.pointee.next_in = UnsafeMutablePointer(mutating: input.baseAddress?.assumingMemoryBound(to: Bytef.self))
            stream.pointee.avail_in = uInt(input.count)
            stream.pointee.next_out = dst.count > 0 ? dst.baseAddress!.assumingMemoryBound(to: Bytef.self) : scratchPointer
            stream.pointee.avail_out = uInt(dst.count)
            var rc = inflate(stream, Z_FINISH)
            // Concatenated members (some writers emit them): continue into the rest of the buffer.
            while rc == Z_STREAM_END && stream.pointee.avail_in > 0 && stream.pointee.avail_out > 0 {
                inflateReset(stream)
                rc = inflate(stream, Z_FINISH)
            }
            guard rc == Z_STREAM_END else {
                let detail = stream.pointee.msg.map { String(cString: $0) } ?? (rc == Z_BUF_ERROR ? "truncated or larger than declared" : "code \(rc)")
                throw ParquetFormatError("corrupt gzip page: \(detail)")
            }
            return dst.count - Int(stream.pointee.avail_out)
        }
    }
}
