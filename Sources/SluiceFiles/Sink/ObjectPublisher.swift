import Foundation
import Logging
import SluiceCore
import SluiceObjectStore

/// The exactly-once steps of a file sink whose path is in object storage, where there is no
/// rename: each finished file is uploaded as a multipart upload left open (its parts durable,
/// the object invisible), the upload id and final key are recorded as an intent in the same
/// state commit as the checkpoint, and publishing is `CompleteMultipartUpload`, which makes the
/// object appear whole, at once, under its final name. On start, pending intents are completed
/// and uploads under the sink's path that no intent names are aborted.
///
/// Files are written to a local spool directory first (`$TMPDIR/sluice-spool/…`), then uploaded
/// in parts of `storage.part_size`, `storage.parallel_parts` at a time.
final class ObjectPublisher {
    let store: any ObjectStore
    /// The bucket and key prefix the sink writes under.
    let root: ObjectLocation
    let uploader: FileUpload
    let spool: String
    let logger: Logger
    /// Parts of the uploads this run made, by upload id (recovery lists them from the server).
    var parts: [String: [UploadedPart]] = [:]

    static let intentPrefix = "s3-upload:"

    init(root: ObjectLocation, storage: StorageConfig, pipeline: String, logger: Logger, othersMayBeRunning: Bool, requests: RequestTally? = nil) throws {
        let settings = try S3Settings.resolve(storage)
        self.root = root
        self.logger = logger
        store = S3ObjectStore(bucket: root.bucket, settings: settings, logger: logger, requests: requests)
        uploader = FileUpload(store: store, partSize: storage.partSize?.bytes ?? 16 << 20, parallelParts: storage.parallelParts ?? 4)
        spool = try SpoolDirectory.make(pipeline: pipeline, name: "sink", othersMayBeRunning: othersMayBeRunning)
    }

    /// A local path to write a file to before it is uploaded.
    func spoolPath(_ name: String) -> String { (spool as NSString).appendingPathComponent(name) }

    /// The object a file relative to the sink's path is published as.
    func location(_ relative: String) -> ObjectLocation { root.appending(relative) }

    /// Uploads a finished spool file (then deletes it) and returns the intent to commit.
    func upload(spoolPath: String, size: Int, to relative: String, records: Int) async throws -> FileIntent {
        let target = location(relative)
        let (uploadID, uploaded) = try await uploader.upload(path: spoolPath, size: size, to: target.key)
        unlink(spoolPath)
        parts[uploadID] = uploaded
        return FileIntent(tempPath: Self.intentPrefix + uploadID, finalPath: target.description, records: records, bytes: size)
    }

    /// Phase 3 of a commit: completes each upload, then marks the intents resolved.
    func publish(_ intents: [FileIntent], pipeline: String, state: any StateStore) async throws {
        guard !intents.isEmpty else { return }
        for intent in intents { try await complete(intent, known: parts[Self.uploadID(intent)]) }
        try await state.resolveFileIntents(pipeline: pipeline, finalPaths: intents.map(\.finalPath))
        for intent in intents { parts[Self.uploadID(intent)] = nil }
    }

    /// Completes one recorded upload; a completed one (a retried publish, a worker's recovery
    /// that got there first) is found by its object.
    func complete(_ intent: FileIntent, known: [UploadedPart]?) async throws {
        guard let target = try ObjectLocation(parsing: intent.finalPath) else { return }
        let id = Self.uploadID(intent)
        let listed: [UploadedPart]?
        if let known { listed = known } else { listed = try await store.listParts(target.key, uploadID: id) }
        if let listed {
            do {
                try await store.completeMultipartUpload(target.key, uploadID: id, parts: listed)
                return
            } catch let error as SluiceError where !error.isRetryable {
                // NoSuchUpload after a completion whose answer was lost: check the object below.
                guard try await store.head(target.key) != nil else { throw error }
                return
            }
        }
        if try await store.head(target.key) == nil {
            logger.error(
                "a committed upload is gone and its object missing (aborted by hand or by a lifecycle rule?)", metadata: ["object": "\(intent.finalPath)"])
        }
    }

    /// Aborts uploads whose commit the state store refused (no intent names them).
    func abort(_ intents: [FileIntent]) async {
        for intent in intents {
            guard let target = try? ObjectLocation(parsing: intent.finalPath) else { continue }
            try? await store.abortMultipartUpload(target.key, uploadID: Self.uploadID(intent))
            parts[Self.uploadID(intent)] = nil
        }
    }

    /// Start-up: completes the uploads of committed intents, then aborts the uploads under the
    /// sink's path that no intent names and whose file name is one this sink writes
    /// (`<prefix>-…`). With a shared state store, other workers may be uploading right now,
    /// so only uploads older than an hour are aborted.
    /// With `staleOnly`, only uploads older than an hour are aborted (another process may be
    /// uploading).
    func recover(pipeline: String, filePrefix: String, state: any StateStore, staleOnly: Bool = false) async throws {
        let pending = try await state.pendingFileIntents(pipeline: pipeline).map(\.intent)
            .filter { $0.finalPath.hasPrefix("s3://\(root.bucket)/") && $0.tempPath.hasPrefix(Self.intentPrefix) }
        for intent in pending {
            try await complete(intent, known: nil)
            logger.info("published an object committed before a crash", metadata: ["object": "\(intent.finalPath)"])
        }
        if !pending.isEmpty { try await state.resolveFileIntents(pipeline: pipeline, finalPaths: pending.map(\.finalPath)) }
        let named = Set(pending.map(Self.uploadID))
        let staleBefore = state.isShared || staleOnly ? Date().addingTimeInterval(-3600) : nil
        var aborted = 0
        for upload in try await store.listMultipartUploads(prefix: root.key) where !named.contains(upload.uploadID) {
            let name = (upload.key as NSString).lastPathComponent
            guard name.hasPrefix(filePrefix + "-") else { continue }
            if let staleBefore, let initiated = upload.initiated, initiated > staleBefore { continue }
            try await store.abortMultipartUpload(upload.key, uploadID: upload.uploadID)
            aborted += 1
        }
        if aborted > 0 {
            logger.info("aborted uncommitted uploads left by an interrupted run", metadata: ["count": "\(aborted)", "path": "\(root)"])
        }
    }

    /// A file sink's `checkReachable`: an `s3://` directory is listed and a small object written
    /// and deleted there; a local one must be a writable directory (or creatable).
    static func checkWritable(_ directory: String, storage: StorageConfig) async throws {
        guard let root = try ObjectLocation(parsing: directory) else {
            try DirectoryCheck.writable(directory, what: "the output directory")
            return
        }
        let store = S3ObjectStore(bucket: root.bucket, settings: try S3Settings.resolve(storage), logger: Logger(label: "sluice.check"), attempts: 2)
        do {
            _ = try await store.list(prefix: root.appending(".sluice-check/").key)
            let probe = root.appending(".sluice-check/\(UUID().uuidString)").key
            try await store.put(probe, bytes: Array("sluice".utf8), ifNoneMatch: false)
            try await store.delete(probe)
        } catch {
            await store.shutdown()
            throw error
        }
        await store.shutdown()
    }

    /// Deletes the spool directory and closes connections.
    func shutdown() async {
        try? FileManager.default.removeItem(atPath: spool)
        await store.shutdown()
    }

    /// The start of every file sink's writer: for an `s3://` directory, a publisher whose
    /// recovery ran; for a local one, the directory created and its recovery run (nil), holding
    /// `lock` (a Parquet lake's) shared while it changes the directories.
    static func prepare(
        directory: String, storage: StorageConfig, filePrefix: String, context: SinkContext, lock: LakeLock? = nil
    ) async throws -> ObjectPublisher? {
        // A replay of the pipeline's dead letters killed between its state commit and the
        // publish: the pipeline's writer publishes what it committed too (the letters are gone,
        // so no replay may come to do it), and removes what it left unfinished an hour ago or
        // more (a replay may be running now).
        let replay = context.replay ? nil : DeadLetterReplay.writerName(context.pipeline)
        guard let location = try ObjectLocation(parsing: directory) else {
            try DurableFile.makeDirectory(directory)
            try await FileCommit.recover(directory: directory, pipeline: context.pipeline, state: context.state, logger: context.logger, lock: lock)
            if let replay {
                try await FileCommit.recover(
                    directory: directory, pipeline: replay, state: context.state, logger: context.logger, lock: lock, staleOnly: true)
            }
            return nil
        }
        let publisher = try ObjectPublisher(
            root: location, storage: storage, pipeline: context.pipeline, logger: context.logger, othersMayBeRunning: context.state.isShared,
            requests: context.requests)
        do {
            try await publisher.recover(pipeline: context.pipeline, filePrefix: filePrefix, state: context.state)
            if let replay {
                try await publisher.recover(pipeline: replay, filePrefix: FileNaming.replayPrefix(filePrefix), state: context.state, staleOnly: true)
            }
        } catch {
            await publisher.shutdown()
            throw error
        }
        return publisher
    }

    /// Refuses an `s3://` path that names no bucket, at the `path` key, before any data moves.
    static func checkPath(_ path: String, in config: ComponentConfig) throws {
        do {
            _ = try ObjectLocation(parsing: path)
        } catch {
            throw config.error("\(error)", key: "path")
        }
    }

    static func uploadID(_ intent: FileIntent) -> String { String(intent.tempPath.dropFirst(intentPrefix.count)) }
}
