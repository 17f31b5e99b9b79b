import Foundation
import SluiceCore
import SluiceFormats
import SluiceObjectStore

/// Tiering and retention of a Parquet lake in object storage (`s3://bucket/prefix`), while
/// pipelines keep writing to it:
///
/// - a tiered object is rewritten with zstd at the tier's level and replaces the old one under
///   its own key, by a multipart upload completed at once: readers see the old object or the
///   new one, with the same rows. The store dates the new object anew, so its footer keeps the
///   old one's date (`sluice.modified`): a partition's age stays that of its data;
/// - a partition to delete loses its objects one by one (a store cannot remove a prefix at
///   once: a reader listing meanwhile sees part of it); one a pipeline is uploading into (an
///   upload in progress under it) is left for the next run;
/// - compaction is refused: a store has no rename, so the compacted object and the removal of
///   its inputs cannot be one step, and a reader listing between them would see rows twice.
///
/// A run killed while it uploads leaves an unfinished multipart upload (invisible); the sink
/// aborts it when its pipeline next starts.
public struct ObjectLakeLifecycle: Sendable {
    public let root: ObjectLocation
    public let store: any ObjectStore
    public let policy: LifecyclePolicy
    public var now: Date
    /// Multipart upload settings (`storage.part_size`, `storage.parallel_parts`).
    public var partSize = 16 << 20
    public var parallelParts = 4

    static let modifiedKey = "sluice.modified"

    public init(root: ObjectLocation, store: any ObjectStore, policy: LifecyclePolicy, now: Date = Date()) {
        self.root = root
        self.store = store
        self.policy = policy
        self.now = now
    }

    /// An object of the lake: its listing, footer metadata and the date its data was written
    /// (nil when the store gives none: its partition is then left alone).
    struct Object {
        var info: ObjectInfo
        var tiered: Bool
        var written: Date?
    }

    var prefix: String { root.key.isEmpty ? "" : root.key.hasSuffix("/") ? root.key : root.key + "/" }

    /// The partitions of the lake: relative prefix ("" for the root) → its Parquet objects.
    func partitions() async throws -> [String: [Object]] {
        var out: [String: [Object]] = [:]
        for info in try await store.list(prefix: prefix) {
            let relative = String(info.key.dropFirst(prefix.count))
            let components = relative.split(separator: "/")
            guard relative.hasSuffix(".parquet"), !components.contains(where: { $0.hasPrefix(".") }) else { continue }
            let partition = components.dropLast().joined(separator: "/")
            let metadata = try await footer(info)
            let stored = metadata?.keyValue[Self.modifiedKey].flatMap(Double.init).map { Date(timeIntervalSince1970: $0) }
            out[partition, default: []].append(
                Object(info: info, tiered: metadata?.keyValue[LakeLifecycle.tierKey] == "archive", written: stored ?? info.lastModified))
        }
        return out
    }

    /// The footer's metadata of an object (one or two suffix reads), nil if it is not Parquet.
    func footer(_ info: ObjectInfo) async throws -> ParquetMetadata? {
        guard info.size >= 12 else { return nil }
        do {
            var tail = try await store.get(info.key, range: max(0, info.size - (64 << 10))..<info.size, ifMatch: info.etag)
            guard let length = ParquetReader.footerLength(tail: tail), length + 12 <= info.size else { return nil }
            if length + 8 > tail.count {
                tail = try await store.get(info.key, range: (info.size - length - 8)..<info.size, ifMatch: info.etag)
            }
            return try? ParquetReader.metadata(name: "\(store.name)/\(info.key)", size: info.size, tail: tail)
        } catch is ObjectStoreError {
            return nil  // replaced or deleted since the listing: the next run sees it as it is
        }
    }

    /// What a run would do now, oldest partitions first.
    public func plan() async throws -> [LifecycleAction] {
        if policy.compact { throw SluiceError(.unsupported, LifecyclePolicy.noCompactionInObjectStorage, location: root.description) }
        var actions: [LifecycleAction] = []
        // A partition with an undated object is left alone: its age is unknown.
        let parts = try await partitions().compactMap { entry -> (String, [Object], Date)? in
            let dates = entry.value.compactMap(\.written)
            guard dates.count == entry.value.count, let newest = dates.max() else { return nil }
            return (entry.key, entry.value, newest)
        }.sorted { $0.2 < $1.2 }
        for (partition, objects, newest) in parts {
            let age = now.timeIntervalSince(newest)
            let location = partition.isEmpty ? root : root.appending(partition)
            if let after = policy.deleteAfter, age > seconds(after) {
                // A pipeline uploading a late record there right now: its object must land first.
                guard try await store.listMultipartUploads(prefix: prefix + (partition.isEmpty ? "" : partition + "/")).isEmpty else { continue }
                actions.append(
                    .delete(
                        partition: partition.isEmpty ? "" : location.description, files: objects.map { "s3://\(root.bucket)/\($0.info.key)" }.sorted(),
                        bytes: objects.reduce(0) { $0 + $1.info.size }))
            } else if let after = policy.tierAfter, age > seconds(after) {
                for object in objects.sorted(by: { $0.info.key < $1.info.key }) where !object.tiered {
                    actions.append(.tier(file: "s3://\(root.bucket)/\(object.info.key)", bytes: object.info.size))
                }
            }
        }
        return actions
    }

    /// Does what ``plan()`` says; `progress` gets each action as it is done.
    public func run(progress: (LifecycleAction) -> Void = { _ in }) async throws -> LifecycleReport {
        let actions = try await plan()
        var report = LifecycleReport()
        let spool = FileManager.default.temporaryDirectory.appendingPathComponent("sluice-lifecycle-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: spool, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: spool) }
        for action in actions {
            switch action {
            case let .tier(file, bytes):
                guard let after = try await tier(key: try key(of: file), spool: spool) else {
                    report.partitionsSkipped += 1
                    continue
                }
                report.filesTiered += 1
                report.bytesBeforeTiering += bytes
                report.bytesAfterTiering += after
            case let .delete(partition, files, bytes):
                for file in files { try await store.delete(try key(of: file)) }
                report.partitionsDeleted += partition.isEmpty ? 0 : 1
                report.filesDeleted += files.count
                report.bytesDeleted += bytes
            case .compact:
                continue
            }
            progress(action)
        }
        return report
    }

    func key(of file: String) throws -> String {
        guard let location = try ObjectLocation(parsing: file) else { throw SluiceError(.internalError, "not an object path", location: file) }
        return location.key
    }

    /// Rewrites the object at `key` with zstd at the tier's level and replaces it; returns its
    /// new size, or nil when it changed or went meanwhile, or its replacement could not be
    /// completed (its upload is then aborted; the object stays as it was, for the next run).
    func tier(key: String, spool: String) async throws -> Int? {
        guard let info = try await store.head(key) else { return nil }
        let original = (spool as NSString).appendingPathComponent("original.parquet")
        let tiered = (spool as NSString).appendingPathComponent("tiered.parquet")
        defer {
            unlink(original)
            unlink(tiered)
        }
        // Downloaded 8 MB at a time into the spool (memory does not grow with the object).
        do {
            guard FileManager.default.createFile(atPath: original, contents: nil), let out = FileHandle(forWritingAtPath: original) else {
                throw SluiceError(.io, "cannot create a spool file", location: original)
            }
            defer { try? out.close() }
            var offset = 0
            while offset < info.size {
                let end = min(info.size, offset + (8 << 20))
                try out.write(contentsOf: try await store.get(key, range: offset..<end, ifMatch: info.etag))
                offset = end
            }
        } catch is ObjectStoreError {
            return nil  // replaced or deleted since the listing
        }
        let reader = try ParquetReader(path: original)
        // The store dates the new object anew: the footer keeps the data's date.
        let options = policy.tierOptions(for: reader, extra: info.lastModified.map { [Self.modifiedKey: String(Int($0.timeIntervalSince1970))] } ?? [:])
        let output = try ParquetFileOutput(path: tiered)
        let writer = try ParquetWriter(schema: reader.schema, options: options, output: output)
        for group in 0..<reader.rowGroupCount { try writer.write(try reader.readRowGroup(group)) }
        let summary = try writer.close()
        try output.close()
        guard summary.rows == reader.metadata.rows else {
            throw SluiceError(.io, "the tiered object holds \(summary.rows) rows, the original \(reader.metadata.rows)", location: key)
        }
        let size = Int((try FileManager.default.attributesOfItem(atPath: tiered)[.size] as? NSNumber)?.intValue ?? 0)
        let (uploadID, parts) = try await FileUpload(store: store, partSize: partSize, parallelParts: parallelParts).upload(path: tiered, size: size, to: key)
        do {
            // Still the object that was read: else it was replaced meanwhile, and stays as it is.
            guard try await store.head(key)?.etag == info.etag else {
                try? await store.abortMultipartUpload(key, uploadID: uploadID)
                return nil
            }
            try await store.completeMultipartUpload(key, uploadID: uploadID, parts: parts)
            return size
        } catch {
            // E.g. a pipeline starting now aborted this upload as one of its own leftovers.
            try? await store.abortMultipartUpload(key, uploadID: uploadID)
            return nil
        }
    }

    func seconds(_ d: Duration) -> Double { Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18 }
}
