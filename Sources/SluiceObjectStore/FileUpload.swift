#if canImport(Glibc)
    import Glibc
#endif
import SluiceCore

/// Uploads a local file as a multipart upload that is left open (parts durable, object not
/// yet visible): the caller records the upload and completes it once that record is committed.
public struct FileUpload: Sendable {
    public var store: any ObjectStore
    /// Bytes per part (the last may be smaller).
    public var partSize: Int
    /// Parts in flight at once; memory held is at most `partSize × parallelParts`.
    public var parallelParts: Int

    public init(store: any ObjectStore, partSize: Int = 16 << 20, parallelParts: Int = 4) {
        self.store = store
        self.partSize = max(partSize, 5 << 20)
        self.parallelParts = max(parallelParts, 1)
    }

    /// Uploads `path` to `key` and returns the open upload's id and its parts. On failure the
    /// upload is aborted (best effort; start-up recovery aborts what is left).
    public func upload(path: String, size: Int, to key: String) async throws -> (uploadID: String, parts: [UploadedPart]) {
        let uploadID = try await store.createMultipartUpload(key)
        do {
            let parts = try await uploadParts(path: path, size: size, key: key, uploadID: uploadID)
            return (uploadID, parts)
        } catch {
            try? await store.abortMultipartUpload(key, uploadID: uploadID)
            throw error
        }
    }

    func uploadParts(path: String, size: Int, key: String, uploadID: String) async throws -> [UploadedPart] {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw SluiceError(.io, "cannot open the file to upload: \(String(cString: strerror(errno)))", location: path) }
        defer { close(fd) }
        let count = max(1, (size + partSize - 1) / partSize)
        let store = store
        let partSize = partSize
        return try await withThrowingTaskGroup(of: UploadedPart.self) { group in
            var parts: [UploadedPart] = []
            var next = 0
            func start(_ index: Int) throws {
                let offset = index * partSize
                let length = min(partSize, size - offset)
                let bytes = try Self.read(fd: fd, offset: offset, length: length, path: path)
                group.addTask { try await store.uploadPart(key, uploadID: uploadID, number: index + 1, bytes: bytes) }
            }
            while next < min(count, parallelParts) {
                try start(next)
                next += 1
            }
            while let part = try await group.next() {
                parts.append(part)
                if next < count {
                    try start(next)
                    next += 1
                }
            }
            return parts.sorted { $0.number < $1.number }
        }
    }

    static func read(fd: Int32, offset: Int, length: Int, path: String) throws -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: length)
        var done = 0
        try bytes.withUnsafeMutableBytes { raw in
            while done < length {
                let n = pread(fd, raw.baseAddress! + done, length - done, off_t(offset + done))
                if n < 0 && errno == EINTR { continue }
                guard n > 0 else {
                    throw SluiceError(.io, "reading the file to upload failed at byte \(offset + done)", location: path)
                }
                done += n
            }
        }
        return bytes
    }
}
