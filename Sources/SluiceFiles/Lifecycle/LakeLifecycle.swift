import Foundation
import SluiceCore
import SluiceFormats

/// Compaction, tiering and retention of a local Parquet lake, safe while pipelines keep writing
/// to it (they only add files) and across a crash at any moment:
///
/// - compaction writes a partition's new files into a copy of the partition next to the lake,
///   links the partition's other files into it, and swaps the two directories in one atomic
///   `renameat2(RENAME_EXCHANGE)` under the lake's lock (``LakeLock``): readers listing the
///   partition see the small files or the compacted ones, never both, never neither;
/// - a tiered file is written next to the original under a hidden name, fsynced, and renamed
///   over it: readers see the old file or the new one, with the same rows;
/// - a partition directory to delete is first moved out of the lake (readers see all of it or
///   none of it), then removed; files at the lake's root (no partitions) are deleted one by one;
/// - what a crash leaves (copies next to the lake, hidden temporary files) is removed by the
///   next run. Staging happens beside the lake, not in it, because readers such as DuckDB glob
///   hidden directories too (a reader globbing the lake's parent sees the copies: glob the lake).
///
/// Files already tiered carry `sluice.tier=archive` in their footer and are not rewritten.
public struct LakeLifecycle: Sendable {
    public let directory: String
    public let policy: LifecyclePolicy
    public var now: Date
    /// Files compaction leaves alone: published files whose commit a pipeline has not finished
    /// (its recovery looks for them by name).
    public var busy: Set<String>
    /// The sink's writer options: compacted files are written as the sink writes its files.
    public var writerOptions: ParquetWriterOptions

    public init(
        directory: String, policy: LifecyclePolicy, now: Date = Date(), busy: Set<String> = [], writerOptions: ParquetWriterOptions = ParquetWriterOptions()
    ) {
        self.directory = directory
        self.policy = policy
        self.now = now
        self.busy = Set(busy.map(Self.standardized))
        self.writerOptions = writerOptions
    }

    static let tierKey = "sluice.tier"
    /// Hidden temporary files inside the lake (a tiered file before its rename).
    static let tempPrefix = ".sluice-lifecycle-"

    /// The lake's parent directory and the name prefix of the copies a run stages there.
    var staging: (parent: String, prefix: String) {
        let root = Self.standardized(directory)
        return ((root as NSString).deletingLastPathComponent, ".sluice-lifecycle@\((root as NSString).lastPathComponent)@")
    }

    /// A new staging path next to the lake.
    func stagingPath() -> String {
        let (parent, prefix) = staging
        return (parent as NSString).appendingPathComponent(prefix + UUID().uuidString)
    }

    static func standardized(_ path: String) -> String { URL(fileURLWithPath: path).standardizedFileURL.path }

    func path(of partition: String) -> String {
        partition.isEmpty ? directory : (directory as NSString).appendingPathComponent(partition)
    }

    /// The partitions of the lake: relative directory ("" for the root) → data files and the
    /// newest modification time.
    func partitions() -> [String: (files: [(path: String, bytes: Int)], newest: Date)] {
        var out: [String: (files: [(path: String, bytes: Int)], newest: Date)] = [:]
        guard let walker = FileManager.default.enumerator(atPath: directory) else { return out }
        while let relative = walker.nextObject() as? String {
            let name = (relative as NSString).lastPathComponent
            if name.hasPrefix(".") {
                walker.skipDescendants()
                continue
            }
            guard name.hasSuffix(".parquet") else { continue }
            let path = (directory as NSString).appendingPathComponent(relative)
            guard let attributes = try? FileManager.default.attributesOfItem(atPath: path),
                attributes[.type] as? FileAttributeType == .typeRegular
            else { continue }
            let partition = (relative as NSString).deletingLastPathComponent
            let modified = attributes[.modificationDate] as? Date ?? .distantPast
            var entry = out[partition] ?? ([], .distantPast)
            entry.files.append((path, attributes[.size] as? Int ?? 0))
            entry.newest = max(entry.newest, modified)
            out[partition] = entry
        }
        return out
    }

    /// What a run would do now (what `--dry-run` prints), oldest partitions first.
    public func plan() -> [LifecycleAction] {
        var actions: [LifecycleAction] = []
        let parts = partitions().sorted { $0.value.newest < $1.value.newest }
        for (partition, entry) in parts {
            let age = now.timeIntervalSince(entry.newest)
            if let after = policy.deleteAfter, age > seconds(after) {
                // A pipeline writing a late record there right now: its file must land first.
                guard !hasFilesInFlight(partition) else { continue }
                actions.append(.delete(partition: partition, files: entry.files.map(\.path).sorted(), bytes: entry.files.reduce(0) { $0 + $1.bytes }))
                continue
            }
            let archive = policy.tierAfter.map { age > seconds($0) } ?? false
            var compacted: Set<String> = []
            if policy.compact {
                let groups = compactionGroups(partition, files: entry.files)
                if !groups.isEmpty {
                    let sizes = Dictionary(entry.files.map { ($0.path, $0.bytes) }, uniquingKeysWith: { a, _ in a })
                    compacted = Set(groups.joined())
                    actions.append(.compact(partition: partition, groups: groups, bytes: compacted.reduce(0) { $0 + (sizes[$1] ?? 0) }, archive: archive))
                }
            }
            if archive {
                for file in entry.files.sorted(by: { $0.path < $1.path }) where !compacted.contains(file.path) && !Self.isTiered(file.path) {
                    actions.append(.tier(file: file.path, bytes: file.bytes))
                }
            }
        }
        return actions
    }

    /// Does what ``plan()`` says, after removing what an interrupted run left; `progress` gets
    /// each action as it is done. One run at a time per lake: a second one stops at once.
    public func run(progress: (LifecycleAction) -> Void = { _ in }) throws -> LifecycleReport {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: directory, isDirectory: &isDirectory), isDirectory.boolValue else {
            return LifecycleReport()  // no lake yet
        }
        // Inside the lake (a swap of an unpartitioned lake's root keeps it: it is linked too).
        let runLock = (directory as NSString).appendingPathComponent(".sluice-lifecycle.lock")
        let fd = open(runLock, O_RDONLY | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0 else {
            throw SluiceError(.io, "cannot create the lifecycle lock in the lake (\(String(cString: strerror(errno))))", location: runLock)
        }
        defer { close(fd) }
        guard flock(fd, LOCK_EX | LOCK_NB) == 0 else {
            throw SluiceError(.io, "another `sluice lifecycle run` is working on this lake; run one at a time", location: directory)
        }
        removeLeftovers()
        let actions = plan()
        if actions.contains(where: { if case .compact = $0 { true } else { false } }), let problem = stagingProblem() {
            throw SluiceError(
                .unsupported,
                "compaction stages a copy of each partition next to the lake, and here it cannot: \(problem). "
                    + "Move the lake one directory down (path: lake/events), or leave compaction off for it",
                location: directory)
        }
        var report = LifecycleReport()
        for action in actions {
            switch action {
            case let .tier(file, bytes):
                let after = try tier(file)
                report.filesTiered += 1
                report.bytesBeforeTiering += bytes
                report.bytesAfterTiering += after
            case let .delete(partition, files, bytes):
                guard try delete(partition: partition, files: files) else {
                    report.partitionsSkipped += 1
                    continue
                }
                report.partitionsDeleted += partition.isEmpty ? 0 : 1
                report.filesDeleted += files.count
                report.bytesDeleted += bytes
            case let .compact(partition, groups, bytes, archive):
                guard let written = try compact(partition: partition, groups: groups, archive: archive) else {
                    report.partitionsSkipped += 1
                    continue
                }
                report.partitionsCompacted += 1
                report.filesCompacted += groups.reduce(0) { $0 + $1.count }
                report.filesWritten += written.files
                report.bytesBeforeCompaction += bytes
                report.bytesAfterCompaction += written.bytes
            }
            progress(action)
        }
        return report
    }

    /// Rewrites `path` with zstd at the tier's level; returns its new size. The new file keeps
    /// the old one's access and modification times: the partition's age, and whether anyone
    /// read it, stay what they were.
    func tier(_ path: String) throws -> Int {
        var original = stat()
        guard stat(path, &original) == 0 else { throw FileWriteError(path: path, operation: "stat", errno: errno).sluiceError }
        let reader = try ParquetReader(path: path)
        let options = policy.tierOptions(for: reader)
        let dir = (path as NSString).deletingLastPathComponent
        let temp = "\(dir)/\(Self.tempPrefix)\(UUID().uuidString).tmp"
        do {
            let output = try ParquetFileOutput(path: temp)
            let writer = try ParquetWriter(schema: reader.schema, options: options, output: output)
            for group in 0..<reader.rowGroupCount { try writer.write(try reader.readRowGroup(group)) }
            _ = try writer.close()
            try output.sync()
            try output.close()
            var times = [original.st_atim, original.st_mtim]
            _ = utimensat(AT_FDCWD, temp, &times, 0)
            try DurableFile.rename(temp, to: path)
            try DurableFile.syncDirectory(dir)
        } catch {
            unlink(temp)
            throw error
        }
        return (try? FileManager.default.attributesOfItem(atPath: path)[.size] as? Int) ?? 0
    }

    /// Deletes a partition directory whole (moved out of the lake first, under the lake's lock,
    /// unless a sink started a file there meanwhile: then false), or root-level files.
    func delete(partition: String, files: [String]) throws -> Bool {
        guard !partition.isEmpty else {
            for file in files { unlink(file) }
            try DurableFile.syncDirectory(directory)
            return true
        }
        let path = path(of: partition)
        let parent = (path as NSString).deletingLastPathComponent
        // Out of the lake when its parent allows it; else (a mount point) under a hidden name in it.
        let hidden = stagingProblem() == nil ? stagingPath() : (parent as NSString).appendingPathComponent("\(Self.tempPrefix)\(UUID().uuidString)")
        let moved = try LakeLock(root: directory).exclusive { () throws -> Bool in
            guard !hasFilesInFlight(partition) else { return false }
            try DurableFile.rename(path, to: hidden)
            try DurableFile.syncDirectory(parent)
            // Parent directories left empty (`year=2025/` once its days are gone) go too, while
            // no sink can be creating a partition in them (rmdir removes only empty ones).
            var dir = parent
            while dir != directory, dir.hasPrefix(directory), rmdir(dir) == 0 {
                dir = (dir as NSString).deletingLastPathComponent
            }
            return true
        }
        guard moved else { return false }
        try FileManager.default.removeItem(atPath: hidden)
        return true
    }

    /// True when a sink is writing into `partition` (a `.sluice@…tmp` file is there).
    func hasFilesInFlight(_ partition: String) -> Bool {
        ((try? FileManager.default.contentsOfDirectory(atPath: path(of: partition))) ?? []).contains { $0.hasPrefix(".sluice@") }
    }

    /// What an interrupted run left: copies staged next to the lake, hidden temporary files in it.
    func removeLeftovers() {
        let (parent, prefix) = staging
        for name in (try? FileManager.default.contentsOfDirectory(atPath: parent)) ?? [] where name.hasPrefix(prefix) {
            try? FileManager.default.removeItem(atPath: (parent as NSString).appendingPathComponent(name))
        }
        guard let walker = FileManager.default.enumerator(atPath: directory) else { return }
        var leftovers: [String] = []
        while let relative = walker.nextObject() as? String {
            if (relative as NSString).lastPathComponent.hasPrefix(Self.tempPrefix) {
                leftovers.append((directory as NSString).appendingPathComponent(relative))
                walker.skipDescendants()
            }
        }
        for path in leftovers { try? FileManager.default.removeItem(atPath: path) }
    }

    static func isTiered(_ path: String) -> Bool {
        leavingAccessTime(path) { (try? ParquetReader(path: path))?.metadata.keyValue[tierKey] == "archive" }
    }

    /// Runs `body` (which reads `path`) and puts the file's access time back: a lifecycle run
    /// must not look like a reader to `sluice cost`, which tells unread lakes by access times.
    static func leavingAccessTime<T>(_ path: String, _ body: () throws -> T) rethrows -> T {
        var before = stat()
        let known = stat(path, &before) == 0
        defer {
            if known {
                var times = [before.st_atim, before.st_mtim]
                _ = utimensat(AT_FDCWD, path, &times, 0)
            }
        }
        return try body()
    }

    func seconds(_ d: Duration) -> Double { Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18 }
}

extension LifecyclePolicy {
    /// The writer options of a tiered copy of `reader`'s file: zstd at the tier's level, the
    /// footer's metadata kept (the writer writes its own schema key) and marked
    /// `sluice.tier=archive`, with `extra` keys added where the footer has none.
    func tierOptions(for reader: ParquetReader, extra: [String: String] = [:]) -> ParquetWriterOptions {
        var options = ParquetWriterOptions()
        options.compression = .zstd
        options.zstdLevel = tierLevel
        var metadata = reader.metadata.keyValue.filter { !ParquetWriterOptions.reservedMetadataKeys.contains($0.key) }
        metadata[LakeLifecycle.tierKey] = "archive"
        metadata.merge(extra) { existing, _ in existing }
        options.keyValueMetadata = metadata
        return options
    }
}
