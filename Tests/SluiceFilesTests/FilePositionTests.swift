import Testing

@testable import SluiceFiles

/// A checkpointed position comes back exactly as written, an object's ETag included.
@Suite struct FilePositionTests {
    @Test func etagsSurviveTheCheckpointExactly() throws {
        for etag in ["764efa883dda1e11db47671c4a3bbd9e", "abc-12", #"we"ird\tag"# + "\u{1}", "é"] {
            let position = FilePosition(offset: 42, line: 3, done: false, size: 100, modified: 7, etag: etag)
            #expect(FilePosition.decode(position.encoded()) == position, "\(position.encoded())")
        }
        let plain = FilePosition(offset: 1, line: 2, done: true, size: 3, modified: 4)
        #expect(FilePosition.decode(plain.encoded()) == plain)
    }
}
