import Foundation

/// The checkpointed position within one file (the value of its checkpoint partition).
struct FilePosition: Codable, Sendable, Hashable {
    /// Byte offset in the decompressed stream of the next unread record.
    var offset: Int
    /// 1-based line number of that record.
    var line: Int
    /// True once the whole file was read.
    var done: Bool
    /// Size and modification time when the file was first opened, to notice later changes.
    var size: Int
    var modified: Int64
    /// An object's ETag when it was first opened (object storage only).
    var etag: String? = nil

    func encoded() -> String {
        let tag = etag.map { ",\"etag\":\"\($0.filter { $0 != "\"" && $0 != "\\" })\"" } ?? ""
        return "{\"offset\":\(offset),\"line\":\(line),\"done\":\(done),\"size\":\(size),\"modified\":\(modified)\(tag)}"
    }

    static func decode(_ text: String) -> FilePosition? {
        try? JSONDecoder().decode(FilePosition.self, from: Data(text.utf8))
    }
}
