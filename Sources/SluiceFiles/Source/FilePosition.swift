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
        // Escaped, never filtered: a stored ETag must compare equal to the listed one.
        let tag = etag.map { ",\"etag\":\(Self.jsonString($0))" } ?? ""
        return "{\"offset\":\(offset),\"line\":\(line),\"done\":\(done),\"size\":\(size),\"modified\":\(modified)\(tag)}"
    }

    /// `text` as a JSON string literal.
    static func jsonString(_ text: String) -> String {
        var out = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case _ where scalar.value < 0x20: out += String(format: "\\u%04x", scalar.value)
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out + "\""
    }

    static func decode(_ text: String) -> FilePosition? {
        try? JSONDecoder().decode(FilePosition.self, from: Data(text.utf8))
    }
}
