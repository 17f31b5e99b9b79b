/// A deduplicator's Bloom filter as a state store keeps it, so a pipeline with many live keys
/// starts without reading them all: the filter holds every key of the pipeline's runs up to
/// and including `run` (and perhaps keys never committed, which cost only a lookup). The
/// deduplicator reads the runs after `run` into it when it starts.
///
/// Stores keep the words in chunks of ``chunkWords`` (8 MiB), so neither saving nor loading
/// holds a second copy of the whole filter.
public struct DedupeFilterSnapshot: Sendable {
    /// Every key of the pipeline's runs up to this one is in the filter.
    public var run: Int64
    /// The filter's own description (format, byte order, seed, sizes), opaque to stores.
    public var header: [UInt8]
    /// The filter's bits, 64 a word.
    public var words: [UInt64]

    public init(run: Int64, header: [UInt8], words: [UInt64]) {
        self.run = run
        self.header = header
        self.words = words
    }

    /// Words a stored chunk holds (8 MiB).
    public static let chunkWords = 1 << 20

    /// How many chunks `wordCount` words take.
    public static func chunkCount(words wordCount: Int) -> Int { (wordCount + chunkWords - 1) / chunkWords }

    /// The words of chunk `index`, as the bytes a store writes (host byte order: the header
    /// says which, and a filter saved on a host of the other order is not used).
    public func withChunk<T>(_ index: Int, _ body: (UnsafeRawBufferPointer) throws -> T) rethrows -> T {
        let range = index * Self.chunkWords..<min(words.count, (index + 1) * Self.chunkWords)
        return try words.withUnsafeBytes { all in
            try body(UnsafeRawBufferPointer(rebasing: all[range.lowerBound * 8..<range.upperBound * 8]))
        }
    }

    /// Builds a snapshot from its chunks, read in order by `readChunk`, which copies chunk
    /// `index` into the buffer it is given when the chunk has exactly that size and says
    /// whether it did; nil when a chunk is missing or has another size.
    public static func assemble(
        run: Int64, header: [UInt8], wordCount: Int, readChunk: (_ index: Int, _ into: UnsafeMutableRawBufferPointer) throws -> Bool
    ) rethrows -> DedupeFilterSnapshot? {
        // A damaged row must not make the process allocate what no filter can be.
        guard wordCount > 0, wordCount <= DedupeFilter.maxBytes / 8 else { return nil }
        var complete = true
        let words = try [UInt64](unsafeUninitializedCapacity: wordCount) { buffer, written in
            let raw = UnsafeMutableRawBufferPointer(buffer)
            HugePages.advise(raw)
            for index in 0..<chunkCount(words: wordCount) {
                let start = index * chunkWords * 8
                let end = min(wordCount, (index + 1) * chunkWords) * 8
                if try !readChunk(index, UnsafeMutableRawBufferPointer(rebasing: raw[start..<end])) {
                    complete = false
                    break
                }
            }
            // Zeros where a chunk was missing: the array must be initialized either way.
            if !complete { raw.initializeMemory(as: UInt8.self, repeating: 0) }
            written = wordCount
        }
        return complete ? DedupeFilterSnapshot(run: run, header: header, words: words) : nil
    }
}
