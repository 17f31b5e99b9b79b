import Foundation
import Logging
import SluiceCore

/// The shared steps of exactly-once file sinks: naming, publishing and crash recovery.
enum FileCommit {
    /// A name unique to one writer run: UTC start time and a random suffix.
    static func runStamp() -> String {
        let f = DateFormatter()
        f.dateFormat = "yyyyMMdd'T'HHmmss'Z'"
        f.timeZone = TimeZone(identifier: "UTC")
        return f.string(from: Date()) + "-" + String(UInt32.random(in: 0...UInt32.max), radix: 16)
    }

    /// Phase 3 of a commit: renames each file to its final name, fsyncs the directories
    /// (and `root`), then marks the intents resolved. The renames hold `lock` (a Parquet lake's)
    /// shared.
    static func publish(_ intents: [FileIntent], root: String, pipeline: String, state: any StateStore, lock: LakeLock? = nil) async throws {
        guard !intents.isEmpty else { return }
        try holding(lock) {
            for intent in intents {
                // Idempotent, so a retried publish (after a failed directory fsync) goes through.
                if !DurableFile.exists(intent.tempPath) && DurableFile.exists(intent.finalPath) { continue }
                do {
                    try DurableFile.rename(intent.tempPath, to: intent.finalPath)
                } catch  where DurableFile.exists(intent.finalPath) {
                    continue  // another worker's recovery published it a moment ago
                }
            }
        }
        var directories = Set(intents.map { ($0.finalPath as NSString).deletingLastPathComponent })
        directories.insert(root)
        for dir in directories { try DurableFile.syncDirectory(dir) }
        try await state.resolveFileIntents(pipeline: pipeline, finalPaths: intents.map(\.finalPath))
    }

    /// Temporary files are hidden and name their pipeline, so recovery only touches its own.
    /// `@` cannot appear in pipeline names, so one pipeline's prefix never matches another's
    /// (`a` and `a-b`).
    static func tempName(pipeline: String, unique: String) -> String { ".sluice@\(pipeline)@\(unique).tmp" }

    /// `body` holding `lock` shared, if there is one.
    static func holding<T>(_ lock: LakeLock?, _ body: () throws -> T) throws -> T {
        guard let lock else { return try body() }
        return try lock.shared(body)
    }

    /// Publishes what was committed before a crash and removes uncommitted temporary files,
    /// holding `lock` (a Parquet lake's) shared while it changes the directories.
    /// With `staleOnly`, temporary files are removed only when untouched for an hour (another
    /// process may be writing them).
    static func recover(
        directory: String, pipeline: String, state: any StateStore, logger: Logger, lock: LakeLock? = nil, staleOnly: Bool = false
    ) async throws {
        let pending = try await state.pendingFileIntents(pipeline: pipeline)
        let resolved = try holding(lock) { try publishCommitted(pending, logger: logger) }
        if !resolved.isEmpty {
            for dir in Set(resolved.map { ($0 as NSString).deletingLastPathComponent }) {
                try DurableFile.syncDirectory(dir)
            }
            try await state.resolveFileIntents(pipeline: pipeline, finalPaths: resolved)
        }
        let removed = try holding(lock) { removeUncommitted(directory: directory, pipeline: pipeline, shared: state.isShared || staleOnly) }
        if removed > 0 {
            logger.info("removed uncommitted temporary files left by an interrupted run", metadata: ["count": "\(removed)"])
        }
    }

    /// Renames the committed files still under their temporary names; returns every final path.
    static func publishCommitted(_ pending: [StoredFileIntent], logger: Logger) throws -> [String] {
        var resolved: [String] = []
        for stored in pending {
            let intent = stored.intent
            if DurableFile.exists(intent.tempPath) {
                do {
                    try DurableFile.rename(intent.tempPath, to: intent.finalPath)
                } catch  where DurableFile.exists(intent.finalPath) {
                    // Its own worker published it at the same moment.
                }
                logger.info("published a file committed before a crash", metadata: ["file": "\(intent.finalPath)"])
            } else if !DurableFile.exists(intent.finalPath) {
                logger.error("a committed output file is missing (deleted by hand?)", metadata: ["file": "\(intent.finalPath)"])
            }
            resolved.append(intent.finalPath)
        }
        return resolved
    }

    /// Removes this pipeline's temporary files that no commit names; returns how many.
    static func removeUncommitted(directory: String, pipeline: String, shared: Bool) -> Int {
        let prefix = ".sluice@\(pipeline)@"
        var removed = 0
        // With a shared state store, other workers of this pipeline may be writing their own
        // temporary files right now: only files untouched for an hour are left over by a crash.
        let staleBefore = shared ? Date().addingTimeInterval(-3600) : nil
        // Temporary files may sit in partition sub-directories (Hive layout), so walk the tree.
        let enumerator = FileManager.default.enumerator(atPath: directory)
        while let relative = enumerator?.nextObject() as? String {
            let name = (relative as NSString).lastPathComponent
            guard name.hasPrefix(prefix), name.hasSuffix(".tmp") else { continue }
            let path = (directory as NSString).appendingPathComponent(relative)
            if let staleBefore,
                let modified = (try? FileManager.default.attributesOfItem(atPath: path))?[.modificationDate] as? Date,
                modified > staleBefore
            {
                continue
            }
            if unlink((directory as NSString).appendingPathComponent(relative)) == 0 { removed += 1 }
        }
        return removed
    }
}
