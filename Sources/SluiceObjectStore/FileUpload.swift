import SluiceCore

/// Uploads a local file as a multipart upload that is left open (parts durable, object not
/// yet visible): the caller records the upload and completes it once that record is committed.
public struct FileUpload: Sendable {
    public var store: any ObjectStore
    /// Bytes per part (the last may be smaller).
    public var partSize: Int
    /// Parts in flight at once. Each is read from the file 1 MB at a time as it is sent
    /// (``FileRange``), so memory does not grow with `partSize`.
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
        let count = max(1, (size + partSize - 1) / partSize)
        let store = store
        let partSize = partSize
        return try await withThrowingTaskGroup(of: UploadedPart.self) { group in
            var parts: [UploadedPart] = []
            var next = 0
            func start(_ index: Int) {
                let range = FileRange(path: path, offset: index * partSize, length: min(partSize, size - index * partSize))
                group.addTask { try await store.uploadPart(key, uploadID: uploadID, number: index + 1, file: range) }
            }
            while next < min(count, parallelParts) {
                start(next)
                next += 1
            }
            while let part = try await group.next() {
                parts.append(part)
                if next < count {
                    start(next)
                    next += 1
                }
            }
            return parts.sorted { $0.number < $1.number }
        }
    }
}
