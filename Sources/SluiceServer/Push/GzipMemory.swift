import SluiceFormats

/// Decompresses a gzip body held in memory, refusing to produce more than a limit (gzip bombs).
enum GzipMemory {
    enum Failure: Error { case tooLarge, noMemory }

    /// A ``ByteSource`` over bytes in memory.
    final class Bytes: ByteSource {
        let data: [UInt8]
        var offset = 0
        init(_ data: [UInt8]) { self.data = data }
        var fileBytesRead: Int { offset }
        func read(into buffer: UnsafeMutableRawPointer, count: Int) throws -> Int {
            let n = min(count, data.count - offset)
            guard n > 0 else { return 0 }
            data.withUnsafeBytes { buffer.copyMemory(from: $0.baseAddress! + offset, byteCount: n) }
            offset += n
            return n
        }
        func close() {}
    }

    /// `reserve` is asked for memory before each chunk is kept; false stops with ``Failure/noMemory``.
    static func decompress(_ data: [UInt8], limit: Int, reserve: (Int) -> Bool = { _ in true }) throws -> [UInt8] {
        let source = try GzipByteSource(Bytes(data))
        var out: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 64 << 10)
        while true {
            let n = try chunk.withUnsafeMutableBytes { try source.read(into: $0.baseAddress!, count: $0.count) }
            if n == 0 { return out }
            guard out.count + n <= limit else { throw Failure.tooLarge }
            // Growing an array may double its capacity: reserve for that.
            guard reserve(out.count + n > out.capacity ? max(n, out.capacity) : n) else { throw Failure.noMemory }
            out.append(contentsOf: chunk[0..<n])
        }
    }
}
