import CLinux
import Foundation
import SluiceCore
import SluiceFormats

/// Compaction of a partition's small files (see ``LakeLifecycle``).
extension LakeLifecycle {
    /// The groups of small files of `partition` that become one file each: files under three
    /// quarters of the target size, not ``busy``, with the same schema (files of an older schema
    /// are compacted among themselves), packed in name order (the order they were written) up to
    /// the target size. A group of one file is left as it is. None when the partition holds
    /// directories next to its files (a directory cannot be linked into the copy).
    func compactionGroups(_ partition: String, files: [(path: String, bytes: Int)]) -> [[String]] {
        let target = max(1, policy.targetFileSize)
        let small = files.filter { $0.bytes < target / 4 * 3 && !busy.contains(Self.standardized($0.path)) }.sorted { $0.path < $1.path }
        guard small.count >= 2, !hasDirectories(partition) else { return [] }
        var order: [Schema] = []
        var bySchema: [Schema: [(path: String, bytes: Int)]] = [:]
        for file in small {
            // A file that cannot be read is left alone (and named by the reader that hits it).
            guard let schema = Self.leavingAccessTime(file.path, { try? ParquetReader(path: file.path).schema }) else { continue }
            if bySchema[schema] == nil { order.append(schema) }
            bySchema[schema, default: []].append(file)
        }
        var groups: [[String]] = []
        for schema in order {
            var current: [String] = []
            var size = 0
            for file in bySchema[schema] ?? [] {
                if !current.isEmpty && size + file.bytes > target {
                    if current.count > 1 { groups.append(current) }
                    current = []
                    size = 0
                }
                current.append(file.path)
                size += file.bytes
            }
            if current.count > 1 { groups.append(current) }
        }
        return groups
    }

    func hasDirectories(_ partition: String) -> Bool {
        let dir = path(of: partition)
        return ((try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []).contains { name in
            var isDirectory: ObjCBool = false
            return FileManager.default.fileExists(atPath: (dir as NSString).appendingPathComponent(name), isDirectory: &isDirectory) && isDirectory.boolValue
        }
    }

    /// Compacts `partition`: writes one file per group into a copy staged next to the lake
    /// (with the partition directory's mode and, when run as root, owner), then, holding the
    /// lake's lock, links every other entry of the partition into the copy (files of running
    /// sinks included, committed or not), swaps the two directories and makes the swap durable.
    /// The old one, now the copy, is removed. Returns the files written and their size, or nil
    /// when the partition changed under the run (an input or the partition gone, a directory
    /// appeared): left as it was.
    func compact(partition: String, groups: [[String]], archive: Bool) throws -> (files: Int, bytes: Int)? {
        let partitionPath = path(of: partition)
        var original = stat()
        guard stat(partitionPath, &original) == 0 else { return nil }
        let stage = stagingPath()
        try DurableFile.makeDirectory(stage)
        do {
            // The partition keeps its permissions (a pipeline may run as another user).
            chmod(stage, original.st_mode & 0o7777)
            if geteuid() == 0 { chown(stage, original.st_uid, original.st_gid) }
            let stamp = FileCommit.runStamp()
            var bytes = 0
            for (index, group) in groups.enumerated() {
                let name = "compacted-\(stamp)-\(String(format: "%06d", index + 1)).parquet"
                bytes += try writeCompacted(group, to: (stage as NSString).appendingPathComponent(name), archive: archive)
            }
            let inputs = Set(groups.joined().map { ($0 as NSString).lastPathComponent })
            let swapped = try LakeLock(root: directory).exclusive { () throws -> Bool in
                guard let entries = try? FileManager.default.contentsOfDirectory(atPath: partitionPath), inputs.isSubset(of: entries) else {
                    return false
                }
                for entry in entries where !inputs.contains(entry) {
                    let from = (partitionPath as NSString).appendingPathComponent(entry)
                    var info = stat()
                    guard lstat(from, &info) == 0 else { return false }
                    if info.st_mode & S_IFMT == S_IFDIR { return false }  // a directory cannot be linked
                    guard link(from, (stage as NSString).appendingPathComponent(entry)) == 0 else {
                        throw SluiceError(
                            .io,
                            "cannot link \(entry) into the compacted copy of the partition (\(String(cString: strerror(errno))))"
                                + (errno == EPERM ? "; run the lifecycle as the user that owns the lake (protected hard links)" : ""),
                            location: from)
                    }
                }
                try DurableFile.syncDirectory(stage)
                guard sluice_rename_exchange(partitionPath, stage) == 0 else {
                    let code = errno
                    throw SluiceError(
                        .unsupported,
                        "cannot swap the partition for its compacted copy (renameat2 RENAME_EXCHANGE: \(String(cString: strerror(code))))"
                            + (code == EINVAL || code == ENOSYS
                                ? "; this filesystem cannot exchange directories atomically, so its lakes cannot be compacted" : ""),
                        location: partitionPath)
                }
                // Durable before any sink publishes into the new directory.
                try DurableFile.syncDirectory((partitionPath as NSString).deletingLastPathComponent)
                try DurableFile.syncDirectory(staging.parent)
                return true
            }
            try? FileManager.default.removeItem(atPath: stage)
            return swapped ? (groups.count, bytes) : nil
        } catch {
            try? FileManager.default.removeItem(atPath: stage)
            throw error
        }
    }

    /// Why copies cannot be staged next to the lake (its parent must be writable and on the
    /// lake's filesystem), or nil when they can.
    func stagingProblem() -> String? {
        let root = Self.standardized(directory)
        var lake = stat()
        var parent = stat()
        guard stat(root, &lake) == 0, stat(staging.parent, &parent) == 0 else { return "the lake or its parent directory cannot be read" }
        if lake.st_dev != parent.st_dev { return "the lake is a mount point: its parent \(staging.parent) is on another filesystem" }
        if access(staging.parent, W_OK) != 0 { return "the lake's parent directory \(staging.parent) is not writable" }
        return nil
    }

    /// Writes the rows of `files` (one schema), in order, to `path` with the sink's writer
    /// options (or zstd at the tier's level when `archive`), fsynced, and returns its size. It
    /// is dated like its inputs: modified when the newest was (the partition does not look
    /// younger than its data), accessed when the last was read (`sluice cost` tells unread
    /// lakes by access times); the inputs' own times are put back (a partition left as it was
    /// must not look read).
    func writeCompacted(_ files: [String], to path: String, archive: Bool) throws -> Int {
        var times: [(path: String, times: stat)] = []
        for file in files {
            var info = stat()
            if stat(file, &info) == 0 { times.append((file, info)) }
        }
        defer {
            for (file, info) in times {
                var both = [info.st_atim, info.st_mtim]
                _ = utimensat(AT_FDCWD, file, &both, 0)
            }
        }
        let first = try ParquetReader(path: files[0])
        var options = writerOptions
        if archive {
            options.compression = .zstd
            options.zstdLevel = policy.tierLevel
        }
        var metadata = first.metadata.keyValue.filter { !ParquetWriterOptions.reservedMetadataKeys.contains($0.key) }
        metadata[Self.tierKey] = archive ? "archive" : nil
        options.keyValueMetadata = metadata
        let output = try ParquetFileOutput(path: path)
        let writer = try ParquetWriter(schema: first.schema, options: options, output: output)
        var rows = 0
        for file in files {
            let reader = file == files[0] ? first : try ParquetReader(path: file, sharingContextWith: first)
            guard reader.schema == first.schema else {
                throw SluiceError(.conflict, "the file's schema changed during compaction", location: file)
            }
            for group in 0..<reader.rowGroupCount { try writer.write(try reader.readRowGroup(group)) }
            rows += reader.metadata.rows
        }
        let summary = try writer.close()
        guard summary.rows == rows else {
            throw SluiceError(.io, "the compacted file holds \(summary.rows) rows, its inputs \(rows)", location: path)
        }
        try output.sync()
        try output.close()
        if let modified = times.map(\.times.st_mtim).max(by: Self.earlier), let accessed = times.map(\.times.st_atim).max(by: Self.earlier) {
            var both = [accessed, modified]
            _ = utimensat(AT_FDCWD, path, &both, 0)
        }
        return (try? FileManager.default.attributesOfItem(atPath: path)[.size] as? Int) ?? 0
    }

    static func earlier(_ a: timespec, _ b: timespec) -> Bool { (a.tv_sec, a.tv_nsec) < (b.tv_sec, b.tv_nsec) }
}
