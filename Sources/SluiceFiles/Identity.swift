import Foundation
import SluiceCore
import SluiceFormats

extension FileSource {
    public var readIdentities: [String] { ["files:\(pattern)"] }
}

extension ParquetFileSink {
    public var outputIdentity: String? { "dir:\(directory)" }
    public func readEvidence() async throws -> ReadEvidence? { LakeReads.evidence(directory) }

    /// Columns whose every column chunk, in the newest 1000 files, counts only nulls (by the
    /// footers' statistics; a chunk without a null count keeps its column off the list).
    public func alwaysNullColumns() async throws -> [String]? {
        guard !directory.contains("://"), let walker = FileManager.default.enumerator(atPath: directory) else { return nil }
        var files: [(path: String, modified: Date)] = []
        while let name = walker.nextObject() as? String {
            guard name.hasSuffix(".parquet"), !(name as NSString).lastPathComponent.hasPrefix(".") else { continue }
            let path = "\(directory)/\(name)"
            let modified = (try? FileManager.default.attributesOfItem(atPath: path)[.modificationDate] as? Date) ?? .distantPast
            files.append((path, modified))
        }
        guard !files.isEmpty else { return nil }
        var onlyNull: [String: Bool] = [:]
        var order: [String] = []
        for file in files.sorted(by: { $0.modified > $1.modified }).prefix(1000) {
            // Reading the footer must not look like a reader to ``LakeReads``: the access time is put back.
            var before = stat()
            let known = stat(file.path, &before) == 0
            let report = try? ParquetReader(path: file.path).report()
            if known {
                var times = [before.st_atim, before.st_mtim]
                _ = utimensat(AT_FDCWD, file.path, &times, 0)
            }
            guard let report else { continue }
            for group in report.rowGroups {
                for chunk in group.columns {
                    if onlyNull[chunk.column] == nil { order.append(chunk.column) }
                    let empty = chunk.nullCount.map { $0 == chunk.values } ?? false
                    onlyNull[chunk.column] = (onlyNull[chunk.column] ?? true) && empty
                }
            }
        }
        return order.filter { onlyNull[$0] == true }
    }
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
