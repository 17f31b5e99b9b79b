#if canImport(Glibc)
import Glibc
#endif
import Foundation
import SluiceFormats
import Testing

@Suite struct FileByteSourceTests {
    /// Regression: `close()` and then `deinit` closed the descriptor twice. The number is reused by
    /// the next `open` (the lowest free one), so the second close shut another file, e.g. a Parquet
    /// output still being written ("write failed: Bad file descriptor" under kill -9 tests).
    @Test func closingTwiceNeverClosesAnotherFilesDescriptor() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("fbs-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try Data("abc".utf8).write(to: URL(fileURLWithPath: "\(dir)/in"))
        var source: FileByteSource? = try FileByteSource(path: "\(dir)/in")
        source!.close()
        let other = open("\(dir)/out", O_WRONLY | O_CREAT, 0o644)  // likely the number just freed
        #expect(other >= 0)
        defer { _ = close(other) }
        source = nil  // deinit
        #expect(fcntl(other, F_GETFD) != -1, "the other file's descriptor is still open")
        #expect(write(other, "x", 1) == 1)
    }
}
