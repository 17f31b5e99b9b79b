#if canImport(Glibc)
    import Glibc
#endif
import Foundation

/// A file found by a source's path pattern, with what identifies its content.
struct ListedFile: Sendable, Hashable {
    var path: String
    var size: Int
    /// Modification time in whole microseconds since the epoch.
    var modified: Int64
    /// An object's ETag (object storage only): changes whenever its content does.
    var etag: String? = nil
    /// Where the bytes are read from when not at `path` (an object's local spool copy).
    var localPath: String? = nil
    /// The device and inode numbers of a local file (0 for objects).
    var device: UInt64 = 0
    var inode: UInt64 = 0

    /// The local file to open.
    var readPath: String { localPath ?? path }

    /// The modification time: the origin of the file's records for the end-to-end latency.
    var modifiedDate: Date { Date(timeIntervalSince1970: Double(modified) / 1_000_000) }
}

/// Expands a source path (a file, a directory or a glob) into regular files, sorted by path.
enum FileListing {
    static func list(_ pattern: String) throws -> [ListedFile] {
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: pattern, isDirectory: &isDirectory) {
            return isDirectory.boolValue ? try walk(pattern) : [info(pattern)].compactMap { $0 }
        }
        guard pattern.contains(where: { "*?[".contains($0) }) else { return [] }
        var g = glob_t()
        defer { globfree(&g) }
        let rc = glob(pattern, 0, nil, &g)
        guard rc == 0 else { return [] }
        var files: [ListedFile] = []
        for i in 0..<Int(g.gl_pathc) {
            guard let p = g.gl_pathv[i] else { continue }
            let path = String(cString: p)
            if let f = info(path) { files.append(f) }
        }
        return files.sorted { $0.path < $1.path }
    }

    static func walk(_ directory: String) throws -> [ListedFile] {
        guard let e = FileManager.default.enumerator(atPath: directory) else { return [] }
        var files: [ListedFile] = []
        while let relative = e.nextObject() as? String {
            if relative.split(separator: "/").contains(where: { $0.hasPrefix(".") }) { continue }
            if let f = info((directory as NSString).appendingPathComponent(relative)) { files.append(f) }
        }
        return files.sorted { $0.path < $1.path }
    }

    static func info(_ path: String) -> ListedFile? {
        var st = Glibc.stat()
        guard lstat(path, &st) == 0 else { return nil }
        if (st.st_mode & S_IFMT) == S_IFLNK {
            // Follow a symbolic link to what it points at.
            guard let resolved = realpath(path, nil) else { return nil }
            defer { free(resolved) }
            guard lstat(resolved, &st) == 0 else { return nil }
        }
        guard (st.st_mode & S_IFMT) == S_IFREG else { return nil }
        let micros = Int64(st.st_mtim.tv_sec) * 1_000_000 + Int64(st.st_mtim.tv_nsec) / 1000
        return ListedFile(path: path, size: Int(st.st_size), modified: micros, device: UInt64(st.st_dev), inode: UInt64(st.st_ino))
    }
}
