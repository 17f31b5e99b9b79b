import Foundation
import SluiceCore
import SluiceFormats

/// Tiering and retention of a local Parquet lake, safe while pipelines keep writing to it (they
/// only add files, to recent partitions) and across a crash at any moment:
///
/// - a tiered file is written next to the original under a hidden name, fsynced, and renamed
///   over it: readers see the old file or the new one, with the same rows;
/// - a partition directory to delete is first renamed to a hidden name (readers see all of it or
///   none of it), then removed; files at the lake's root (no partitions) are deleted one by one;
/// - what a crash leaves (hidden temporary files and directories) is removed by the next run.
///
/// Files already tiered carry `sluice.tier=archive` in their footer and are not rewritten.
public struct LakeLifecycle: Sendable {
    public let directory: String
    public let policy: LifecyclePolicy
    public var now: Date

    public init(directory: String, policy: LifecyclePolicy, now: Date = Date()) {
        self.directory = directory
        self.policy = policy
        self.now = now
    }

    static let tierKey = "sluice.tier"
    static let tempPrefix = ".sluice-lifecycle-"

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
            let path = "\(directory)/\(relative)"
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
            } else if let after = policy.tierAfter, age > seconds(after) {
                for file in entry.files.sorted(by: { $0.path < $1.path }) where !Self.isTiered(file.path) {
                    actions.append(.tier(file: file.path, bytes: file.bytes))
                }
            }
        }
        return actions
    }

    /// Does what ``plan()`` says, after removing what an interrupted run left; `progress` gets
    /// each action as it is done.
    public func run(progress: (LifecycleAction) -> Void = { _ in }) throws -> LifecycleReport {
        removeLeftovers()
        var report = LifecycleReport()
        for action in plan() {
            switch action {
            case let .tier(file, bytes):
                let after = try tier(file)
                report.filesTiered += 1
                report.bytesBeforeTiering += bytes
                report.bytesAfterTiering += after
            case let .delete(partition, files, bytes):
                try delete(partition: partition, files: files)
                report.partitionsDeleted += partition.isEmpty ? 0 : 1
                report.filesDeleted += files.count
                report.bytesDeleted += bytes
            }
            progress(action)
        }
        return report
    }

    /// Rewrites `path` with zstd at the tier's level; returns its new size.
    func tier(_ path: String) throws -> Int {
        let reader = try ParquetReader(path: path)
        var options = ParquetWriterOptions()
        options.compression = .zstd
        options.zstdLevel = policy.tierLevel
        // The footer's other metadata is kept (the writer writes its own schema key itself).
        var metadata = reader.metadata.keyValue.filter { !ParquetWriterOptions.reservedMetadataKeys.contains($0.key) }
        metadata[Self.tierKey] = "archive"
        options.keyValueMetadata = metadata
        let dir = (path as NSString).deletingLastPathComponent
        let temp = "\(dir)/\(Self.tempPrefix)\(UUID().uuidString).tmp"
        do {
            let output = try ParquetFileOutput(path: temp)
            let writer = try ParquetWriter(schema: reader.schema, options: options, output: output)
            for group in 0..<reader.rowGroupCount { try writer.write(try reader.readRowGroup(group)) }
            _ = try writer.close()
            try output.sync()
            try output.close()
            try DurableFile.rename(temp, to: path)
            try DurableFile.syncDirectory(dir)
        } catch {
            unlink(temp)
            throw error
        }
        return (try? FileManager.default.attributesOfItem(atPath: path)[.size] as? Int) ?? 0
    }

    /// Deletes a partition directory whole (renamed out of sight first), or root-level files.
    func delete(partition: String, files: [String]) throws {
        guard !partition.isEmpty else {
            for file in files { unlink(file) }
            try DurableFile.syncDirectory(directory)
            return
        }
        let path = "\(directory)/\(partition)"
        let parent = (path as NSString).deletingLastPathComponent
        let hidden = "\(parent)/\(Self.tempPrefix)\(UUID().uuidString)"
        try DurableFile.rename(path, to: hidden)
        try DurableFile.syncDirectory(parent)
        try FileManager.default.removeItem(atPath: hidden)
        // Parent directories left empty (`year=2025/` once its days are gone) go too.
        var dir = parent
        while dir != directory, dir.hasPrefix(directory), (try? FileManager.default.contentsOfDirectory(atPath: dir))?.isEmpty == true {
            try? FileManager.default.removeItem(atPath: dir)
            dir = (dir as NSString).deletingLastPathComponent
        }
    }

    /// True when a sink is writing into `partition` (a `.sluice@…tmp` file is there).
    func hasFilesInFlight(_ partition: String) -> Bool {
        let path = partition.isEmpty ? directory : "\(directory)/\(partition)"
        return ((try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []).contains { $0.hasPrefix(".sluice@") }
    }

    /// Hidden temporary files and directories an interrupted run left.
    func removeLeftovers() {
        guard let walker = FileManager.default.enumerator(atPath: directory) else { return }
        var leftovers: [String] = []
        while let relative = walker.nextObject() as? String {
            if (relative as NSString).lastPathComponent.hasPrefix(Self.tempPrefix) {
                leftovers.append("\(directory)/\(relative)")
                walker.skipDescendants()
            }
        }
        for path in leftovers { try? FileManager.default.removeItem(atPath: path) }
    }

    static func isTiered(_ path: String) -> Bool {
        (try? ParquetReader(path: path))?.metadata.keyValue[tierKey] == "archive"
    }

    func seconds(_ d: Duration) -> Double { Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18 }
}
