import Foundation
import SluiceCore

extension FileSource {
    public var readIdentities: [String] { ["files:\(pattern)"] }
}

extension ParquetFileSink {
    public var outputIdentity: String? { "dir:\(directory)" }
    public func readEvidence() async throws -> ReadEvidence? { LakeReads.evidence(directory) }
}

extension NDJSONFileSink {
    public var outputIdentity: String? { "dir:\(directory)" }
    public func readEvidence() async throws -> ReadEvidence? { LakeReads.evidence(directory) }
}

/// Whether a local lake's files were read after they were written, by their access times.
/// Linux's default `relatime` updates a file's access time on its first read after a write, so
/// a file read since it was written has `atime > mtime`; a file system mounted `noatime` never
/// tells (every lake looks unread there).
enum LakeReads {
    static func evidence(_ directory: String) -> ReadEvidence? {
        guard !directory.contains("://"), let walker = FileManager.default.enumerator(atPath: directory) else { return nil }
        var last: Date?
        var files = 0
        while let name = walker.nextObject() as? String {
            guard !(name as NSString).lastPathComponent.hasPrefix(".") else { continue }
            var s = stat()
            guard stat("\(directory)/\(name)", &s) == 0, (s.st_mode & S_IFMT) == S_IFREG else { continue }
            files += 1
            let accessed = Double(s.st_atim.tv_sec) + Double(s.st_atim.tv_nsec) / 1e9
            let modified = Double(s.st_mtim.tv_sec) + Double(s.st_mtim.tv_nsec) / 1e9
            if accessed > modified { last = max(last ?? .distantPast, Date(timeIntervalSince1970: accessed)) }
        }
        return files == 0 ? nil : .lastRead(last)
    }
}
