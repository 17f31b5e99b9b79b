import Foundation

/// An object as a listing or `HEAD` shows it.
public struct ObjectInfo: Sendable, Hashable {
    /// The key within the store (no leading `/`).
    public var key: String
    public var size: Int
    /// The entity tag without quotes: changes whenever the content changes.
    public var etag: String
    public var lastModified: Date?

    public init(key: String, size: Int, etag: String, lastModified: Date? = nil) {
        self.key = key
        self.size = size
        self.etag = etag
        self.lastModified = lastModified
    }
}

/// A part of a multipart upload, as `UploadPart` returned it or `ListParts` lists it.
public struct UploadedPart: Sendable, Hashable {
    public var number: Int
    public var etag: String
    public var size: Int

    public init(number: Int, etag: String, size: Int) {
        self.number = number
        self.etag = etag
        self.size = size
    }
}

/// A multipart upload started and neither completed nor aborted.
public struct PendingUpload: Sendable, Hashable {
    public var key: String
    public var uploadID: String
    public var initiated: Date?

    public init(key: String, uploadID: String, initiated: Date?) {
        self.key = key
        self.uploadID = uploadID
        self.initiated = initiated
    }
}

/// The one seam between Sluice's file connectors and where files live: a local directory
/// (``LocalObjectStore``) or a bucket of an S3-compatible server (``S3ObjectStore``).
///
/// Multipart uploads make a large object appear atomically: parts are durable and invisible
/// until ``completeMultipartUpload(_:uploadID:parts:)``, which the file sinks call only after
/// the upload is recorded in a state commit. Errors are ``SluiceError``s that name the store
/// and the key, classified for retries.
public protocol ObjectStore: Sendable {
    /// How logs and errors name the store: `s3://bucket` or a directory path.
    var name: String { get }
    /// Writes a whole object. With `ifNoneMatch`, refuses (``ObjectStoreError/alreadyExists``)
    /// when the key exists.
    func put(_ key: String, bytes: [UInt8], ifNoneMatch: Bool) async throws
    /// The object's bytes, or the `range` of them; with `ifMatch`, fails with
    /// ``ObjectStoreError/changed`` if the object's ETag is no longer that one.
    func get(_ key: String, range: Range<Int>?, ifMatch: String?) async throws -> [UInt8]
    /// The object's size and ETag, nil when there is no such key.
    func head(_ key: String) async throws -> ObjectInfo?
    /// Every object whose key starts with `prefix`, in key order.
    func list(prefix: String) async throws -> [ObjectInfo]
    /// Deletes the object; deleting a missing key is not an error.
    func delete(_ key: String) async throws
    /// Starts a multipart upload and returns its id.
    func createMultipartUpload(_ key: String) async throws -> String
    func uploadPart(_ key: String, uploadID: String, number: Int, bytes: [UInt8]) async throws -> UploadedPart
    /// Uploads a part read from a local file as it is sent (bounded memory).
    func uploadPart(_ key: String, uploadID: String, number: Int, file: FileRange) async throws -> UploadedPart
    /// The parts uploaded so far; nil when the upload does not exist (completed or aborted).
    func listParts(_ key: String, uploadID: String) async throws -> [UploadedPart]?
    func completeMultipartUpload(_ key: String, uploadID: String, parts: [UploadedPart]) async throws
    /// Aborts the upload; a missing upload is not an error.
    func abortMultipartUpload(_ key: String, uploadID: String) async throws
    /// The uploads in progress under `prefix`.
    func listMultipartUploads(prefix: String) async throws -> [PendingUpload]
    /// Closes connections. Call once, when done.
    func shutdown() async
}

/// Answers of an object store that callers act on.
public enum ObjectStoreError: Error, Sendable, Equatable {
    /// `put(ifNoneMatch: true)` found the key taken.
    case alreadyExists(String)
    /// `get(ifMatch:)` found another ETag: the object was replaced.
    case changed(String)
    /// `get` of a key that does not exist.
    case notFound(String)
}

extension ObjectStore {
    public func uploadPart(_ key: String, uploadID: String, number: Int, file: FileRange) async throws -> UploadedPart {
        try await uploadPart(key, uploadID: uploadID, number: number, bytes: try file.bytes())
    }
}
