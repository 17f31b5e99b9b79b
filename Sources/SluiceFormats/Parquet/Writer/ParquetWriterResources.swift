/// Scratch buffers and the codec context that column writers use only while cutting a page.
///
/// One set serves every column of a ``ParquetWriter``; a sink writing many files at once (one
/// per partition) passes the same set to all its writers, so memory does not grow by two page
/// buffers per column per open file. Not thread-safe: share only between writers used from
/// one task.
public final class ParquetWriterResources {
    let compressor: ParquetCompressor
    /// A page body before compression.
    let body = GrowableBytes(capacity: 1 << 16)
    /// A page body after compression.
    let compressed = GrowableBytes(capacity: 1 << 16)

    public init(options: ParquetWriterOptions) {
        compressor = ParquetCompressor(codec: options.compression.codec, level: options.compressionLevel)
    }

    /// Whether writers with `options` can use these resources (same codec and level).
    func fits(_ options: ParquetWriterOptions) -> Bool {
        compressor.codec == options.compression.codec && compressor.level == options.compressionLevel
    }
}
