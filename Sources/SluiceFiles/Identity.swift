import Foundation
import Logging
import SluiceCore
import SluiceFormats
import SluiceObjectStore

extension FileSource {
    public var readIdentities: [String] { ["files:\(pattern)"] }
}

extension ParquetFileSink {
    public var outputIdentity: String? { "dir:\(directory)" }
    public func readEvidence() async throws -> ReadEvidence? { try await LakeReads.evidence(directory, storage: storage) }

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
    public func readEvidence() async throws -> ReadEvidence? { try await LakeReads.evidence(directory, storage: storage) }
}

/// Whether a local lake's files were read after they were written, by their access times.
/// Linux's default `relatime` updates a file's access time on its first read after a write, so
/// a file read since it was written has `atime > mtime`; a file system mounted `noatime` never
/// tells (every lake looks unread there).
enum LakeReads {
    /// By access times for a local lake; for one in object storage, by the bucket's access logs
    /// (`storage.access_logs`), nil without them (a store records no access time).
    static func evidence(_ directory: String, storage: StorageConfig) async throws -> ReadEvidence? {
        guard let lake = try ObjectLocation(parsing: directory) else { return evidence(directory) }
        guard let path = storage.accessLogs, let logs = try ObjectLocation(parsing: path) else { return nil }
        let store = S3ObjectStore(bucket: logs.bucket, settings: try S3Settings.resolve(storage), logger: Logger(label: "sluice.cost"))
        do {
            let last = try await lastRead(lake, logs: logs, store: store)
            await store.shutdown()
            return .lastRead(last)
        } catch {
            await store.shutdown()
            throw error
        }
    }

    /// The newest successful `GET` of an object under `lake` in the access logs under `logs`,
    /// by another client than a lifecycle run (which names itself in its user agent; a
    /// pipeline reading the lake is a reader).
    static func lastRead(_ lake: ObjectLocation, logs: ObjectLocation, store: any ObjectStore) async throws -> Date? {
        let prefix = lake.key.isEmpty || lake.key.hasSuffix("/") ? lake.key : lake.key + "/"
        var last: Date?
        for info in try await store.list(prefix: logs.key) {
            let text = String(decoding: try await store.get(info.key, range: nil, ifMatch: nil), as: UTF8.self)
            for line in text.split(separator: "\n") {
                guard let record = S3AccessLogRecord.parse(line), record.bucket == lake.bucket, record.operation == "REST.GET.OBJECT",
                    let key = record.key, key.hasPrefix(prefix), (200..<300).contains(record.status ?? 0),
                    !(record.userAgent ?? "").hasPrefix("sluice-lifecycle/")
                else { continue }
                last = max(last ?? .distantPast, record.time)
            }
        }
        return last
    }

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
