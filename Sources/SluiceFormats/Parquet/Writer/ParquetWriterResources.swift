/// Scratch buffers and the codec context that column writers use only while cutting a page.
///
/// One set serves every column of a ``ParquetWriter``; a sink writing many files at once (one
/// per partition) passes the same set to all its writers, so memory does not grow by two page
/// buffers per column per open file. A writer that encodes columns on several threads at once
/// takes one more set per extra thread (``lane(_:)``), made on first use. Not thread-safe: share
/// only between writers used from one task.
public final class ParquetWriterResources {
    let compressor: ParquetCompressor
    /// A page body before compression.
    let body = GrowableBytes(capacity: 1 << 16)
    /// A page body after compression.
    let compressed = GrowableBytes(capacity: 1 << 16)

    /// The sets of lanes 1, 2, … of a parallel write (lane 0 is this set).
    private var otherLanes: [ParquetWriterResources] = []

    public init(options: ParquetWriterOptions) {
        compressor = ParquetCompressor(codec: options.compression.codec, level: options.compressionLevel)
    }

    /// Whether writers with `options` can use these resources (same codec and level).
    func fits(_ options: ParquetWriterOptions) -> Bool {
        compressor.codec == options.compression.codec && compressor.level == options.compressionLevel
    }

    /// Makes sure lanes `0..<count` have their sets; call before the lanes start.
    func prepareLanes(_ count: Int) {
        while otherLanes.count < count - 1 {
            otherLanes.append(ParquetWriterResources(codec: compressor.codec, level: compressor.level))
        }
    }

    /// The set lane `index` uses (``prepareLanes(_:)`` made it).
    func lane(_ index: Int) -> ParquetWriterResources { index == 0 ? self : otherLanes[index - 1] }

    private init(codec: ParquetCodec, level: Int32) {
        compressor = ParquetCompressor(codec: codec, level: level)
    }
}
