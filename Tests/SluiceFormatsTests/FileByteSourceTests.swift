#if canImport(Glibc)
    import Glibc
#endif
import Foundation
@testable import SluiceFormats
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
        // The precondition: the other file gets the very number the source freed (another test
        // running in parallel may take it first; then try again), else this test cannot fail.
        var source: FileByteSource?
        var other: Int32 = -1
        for _ in 0..<100 {
            source = try FileByteSource(path: "\(dir)/in")
            let freed = source!.fd
            source!.close()
            other = open("\(dir)/out", O_WRONLY | O_CREAT | O_CLOEXEC, 0o644)
            if other == freed { break }
            if other >= 0 { _ = close(other) }
            other = -1
            source = nil
        }
        try #require(other >= 0, "the freed descriptor number was never reused by the next open")
        defer { _ = close(other) }
        source = nil  // deinit
        #expect(fcntl(other, F_GETFD) != -1, "the other file's descriptor is still open")
        #expect(write(other, "x", 1) == 1)
    }
}
