#if canImport(Glibc)
    import Glibc
#endif
import Foundation
import Logging
import SluiceCore
import SluiceFormats
import SluiceObjectStore

/// The `file` source's view of object storage: lists the objects a `s3://` path or glob names,
/// and downloads one into a local spool file for the readers, with ranged GETs pinned to the
/// object's ETag (a replaced object is reported, never mixed with the old one).
final class ObjectListing {
    let store: S3ObjectStore
    let pattern: ObjectLocation
    let spool: String
    /// Bytes per ranged GET, and GETs at once.
    static let rangeSize = 8 << 20
    static let parallelRanges = 4

    /// - Parameter pipeline: names the spool directory (nil: a throwaway listing, no spool).
    init(
        pattern: ObjectLocation, storage: StorageConfig, logger: Logger, pipeline: String? = nil, othersMayBeRunning: Bool = true,
        requests: RequestTally? = nil
    ) throws {
        self.pattern = pattern
        store = S3ObjectStore(bucket: pattern.bucket, settings: try S3Settings.resolve(storage), logger: logger, requests: requests)
        spool = try pipeline.map { try SpoolDirectory.make(pipeline: $0, name: "source", othersMayBeRunning: othersMayBeRunning) } ?? ""
    }

    func shutdown() async {
        if !spool.isEmpty { try? FileManager.default.removeItem(atPath: spool) }
        await store.shutdown()
    }

    /// Objects matching the pattern, sorted by key: a glob (`*` and `?` do not cross `/`), a
    /// prefix ending in `/` (everything below, hidden names skipped) or one key.
    func list() async throws -> [ListedFile] {
        let key = pattern.key
        let globStart = key.firstIndex { "*?[".contains($0) }
        let prefix = globStart.map { String(key[..<$0]) } ?? key
        var files: [ListedFile] = []
        for object in try await store.list(prefix: prefix) {
            let relative = object.key.dropFirst(prefix.count)
            if globStart != nil {
                guard fnmatch(key, object.key, FNM_PATHNAME) == 0 else { continue }
            } else if object.key != key {
                // A "directory": the key names a prefix.
                guard key.isEmpty || key.hasSuffix("/") || relative.hasPrefix("/") else { continue }
            }
            if object.key.split(separator: "/").contains(where: { $0.hasPrefix(".") }) { continue }
            let micros = Int64(((object.lastModified?.timeIntervalSince1970 ?? 0) * 1_000_000).rounded())
            files.append(
                ListedFile(path: "s3://\(pattern.bucket)/\(object.key)", size: object.size, modified: micros, etag: object.etag))
        }
        return files.sorted { $0.path < $1.path }
    }

    /// Whether the object's bytes are read as they are (not gzip or zstd), so a resume can
    /// skip ahead: by the declared compression, else by its first bytes.
    func isPlain(_ file: ListedFile, declared: InputCompression?) async throws -> Bool {
        if let declared { return declared == InputCompression.none }
        let key = String(file.path.dropFirst("s3://\(pattern.bucket)/".count))
        let magic = try await store.get(key, range: 0..<min(4, file.size), ifMatch: file.etag)
        return InputCompression.detect(magic) == InputCompression.none
    }

    /// Downloads `file` into a spool file and returns its path. With `from` > 0 only the first
    /// `head` bytes (the header and the schema sample) and the bytes from `from` on are fetched;
    /// the gap reads as zeros and is skipped by the reader.
    func download(_ file: ListedFile, from: Int = 0, head: Int = 0) async throws -> String {
        let key = String(file.path.dropFirst("s3://\(pattern.bucket)/".count))
        let path = (spool as NSString).appendingPathComponent(UUID().uuidString)
        let fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw SluiceError(.io, "cannot create a spool file: \(String(cString: strerror(errno)))", location: path) }
        defer { close(fd) }
        guard ftruncate(fd, off_t(file.size)) == 0 else {
            throw SluiceError(.io, "cannot size a spool file: \(String(cString: strerror(errno)))", location: path)
        }
        var ranges: [Range<Int>] = []
        func add(_ r: Range<Int>) {
            var start = r.lowerBound
            while start < r.upperBound {
                ranges.append(start..<min(start + Self.rangeSize, r.upperBound))
                start += Self.rangeSize
            }
        }
        if from > head {
            add(0..<min(head, file.size))
            add(min(from, file.size)..<file.size)
        } else {
            add(0..<file.size)
        }
        let store = store
        let etag = file.etag
        try await withThrowingTaskGroup(of: (Range<Int>, [UInt8]).self) { group in
            var next = 0
            func start() {
                let range = ranges[next]
                next += 1
                group.addTask { (range, try await store.get(key, range: range, ifMatch: etag)) }
            }
            while next < min(ranges.count, Self.parallelRanges) { start() }
            while let (range, bytes) = try await group.next() {
                guard bytes.count == range.count else {
                    throw ObjectStoreError.changed(key)  // shorter than listed: replaced meanwhile
                }
                try bytes.withUnsafeBytes { raw in
                    var done = 0
                    while done < raw.count {
                        let n = pwrite(fd, raw.baseAddress! + done, raw.count - done, off_t(range.lowerBound + done))
                        if n < 0 && errno == EINTR { continue }
                        guard n > 0 else { throw SluiceError(.io, "writing the spool file failed: \(String(cString: strerror(errno)))", location: path) }
                        done += n
                    }
                }
                if next < ranges.count { start() }
            }
        }
        return path
    }
}
