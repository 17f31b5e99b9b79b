import Foundation
import SluiceCore

/// A directory as an object store: keys are relative paths, a completed upload is written under
/// a hidden name, fsynced and renamed, so it appears atomically, as an S3 object does. Uploads in
/// progress live in `.sluice-uploads/` under the root.
///
/// It gives tests and tools one behaviour for both kinds of storage; the file sinks write local
/// directories with their own rename commit, which this mirrors.
public struct LocalObjectStore: ObjectStore {
    public let root: String
    public var name: String { root }
    var uploads: String { (root as NSString).appendingPathComponent(".sluice-uploads") }

    public init(root: String) { self.root = root }

    public func shutdown() async {}

    func path(_ key: String) -> String { (root as NSString).appendingPathComponent(key) }

    func failure(_ what: String, _ key: String, _ error: any Error) -> SluiceError {
        SluiceError(.io, "\(what) failed: \(error)", location: path(key), retryable: false, underlying: error)
    }

    public func put(_ key: String, bytes: [UInt8], ifNoneMatch: Bool) async throws {
        if ifNoneMatch && FileManager.default.fileExists(atPath: path(key)) { throw ObjectStoreError.alreadyExists(key) }
        try write(bytes, to: key)
    }

    func write(_ bytes: [UInt8], to key: String) throws {
        let final = path(key)
        do {
            try FileManager.default.createDirectory(atPath: (final as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
            let temp = (final as NSString).deletingLastPathComponent + "/.sluice-put-\(UUID().uuidString).tmp"
            try Data(bytes).write(to: URL(fileURLWithPath: temp))
            let fd = open(temp, O_RDONLY)
            if fd >= 0 {
                fsync(fd)
                close(fd)
            }
            guard rename(temp, final) == 0 else { throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO) }
        } catch {
            throw failure("write", key, error)
        }
    }

    public func get(_ key: String, range: Range<Int>?, ifMatch: String?) async throws -> [UInt8] {
        guard let info = try await head(key) else { throw ObjectStoreError.notFound(key) }
        if let ifMatch, ifMatch != info.etag { throw ObjectStoreError.changed(key) }
        guard let handle = FileHandle(forReadingAtPath: path(key)) else { throw ObjectStoreError.notFound(key) }
        defer { try? handle.close() }
        do {
            guard let range else { return Array(try handle.readToEnd() ?? Data()) }
            try handle.seek(toOffset: UInt64(range.lowerBound))
            return Array(try handle.read(upToCount: range.count) ?? Data())
        } catch {
            throw failure("read", key, error)
        }
    }

    public func head(_ key: String) async throws -> ObjectInfo? {
        guard let attributes = try? FileManager.default.attributesOfItem(atPath: path(key)),
            attributes[.type] as? FileAttributeType == .typeRegular
        else { return nil }
        let size = (attributes[.size] as? NSNumber)?.intValue ?? 0
        let modified = attributes[.modificationDate] as? Date
        // Size and modification time in microseconds identify a version, as an ETag does.
        let micros = Int64(((modified?.timeIntervalSince1970 ?? 0) * 1_000_000).rounded())
        return ObjectInfo(key: key, size: size, etag: "\(size)-\(micros)", lastModified: modified)
    }

    public func list(prefix: String) async throws -> [ObjectInfo] {
        guard let e = FileManager.default.enumerator(atPath: root) else { return [] }
        var found: [ObjectInfo] = []
        while let relative = e.nextObject() as? String {
            guard relative.hasPrefix(prefix), !relative.split(separator: "/").contains(where: { $0.hasPrefix(".") }) else { continue }
            if let info = try await head(relative) { found.append(info) }
        }
        return found.sorted { $0.key < $1.key }
    }

    public func delete(_ key: String) async throws {
        if unlink(path(key)) != 0 && errno != ENOENT { throw failure("delete", key, POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO)) }
    }

    func uploadDirectory(_ uploadID: String) -> String { (uploads as NSString).appendingPathComponent(uploadID) }

    public func createMultipartUpload(_ key: String) async throws -> String {
        let id = UUID().uuidString
        do {
            try FileManager.default.createDirectory(atPath: uploadDirectory(id), withIntermediateDirectories: true)
            try Data(key.utf8).write(to: URL(fileURLWithPath: uploadDirectory(id) + "/key"))
        } catch {
            throw failure("create upload", key, error)
        }
        return id
    }

    public func uploadPart(_ key: String, uploadID: String, number: Int, bytes: [UInt8]) async throws -> UploadedPart {
        let part = uploadDirectory(uploadID) + "/\(number)"
        guard FileManager.default.fileExists(atPath: uploadDirectory(uploadID)) else {
            throw SluiceError(.io, "no such upload \(uploadID)", location: path(key))
        }
        do {
            try Data(bytes).write(to: URL(fileURLWithPath: part))
        } catch {
            throw failure("upload part", key, error)
        }
        return UploadedPart(number: number, etag: SigV4Signer.sha256Hex(bytes), size: bytes.count)
    }

    public func listParts(_ key: String, uploadID: String) async throws -> [UploadedPart]? {
        let dir = uploadDirectory(uploadID)
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: dir) else { return nil }
        return try names.compactMap(Int.init).sorted().map { number in
            let bytes = try Data(contentsOf: URL(fileURLWithPath: dir + "/\(number)"))
            return UploadedPart(number: number, etag: SigV4Signer.sha256Hex(bytes), size: bytes.count)
        }
    }

    public func completeMultipartUpload(_ key: String, uploadID: String, parts: [UploadedPart]) async throws {
        let dir = uploadDirectory(uploadID)
        var whole: [UInt8] = []
        for part in parts.sorted(by: { $0.number < $1.number }) {
            guard let bytes = FileManager.default.contents(atPath: dir + "/\(part.number)") else {
                throw SluiceError(.io, "part \(part.number) of upload \(uploadID) is missing", location: path(key))
            }
            whole += bytes
        }
        try write(whole, to: key)
        try? FileManager.default.removeItem(atPath: dir)
    }

    public func abortMultipartUpload(_ key: String, uploadID: String) async throws {
        try? FileManager.default.removeItem(atPath: uploadDirectory(uploadID))
    }

    public func listMultipartUploads(prefix: String) async throws -> [PendingUpload] {
        guard let ids = try? FileManager.default.contentsOfDirectory(atPath: uploads) else { return [] }
        return ids.compactMap { id in
            guard let key = try? String(contentsOfFile: uploadDirectory(id) + "/key", encoding: .utf8), key.hasPrefix(prefix) else { return nil }
            let created = (try? FileManager.default.attributesOfItem(atPath: uploadDirectory(id)))?[.creationDate] as? Date
            return PendingUpload(key: key, uploadID: id, initiated: created)
        }
    }
}
