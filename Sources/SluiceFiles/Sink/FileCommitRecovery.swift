import Foundation
import Logging
import SluiceCore

/// Finishes what a crash interrupted in an exactly-once file sink.
enum FileCommitRecovery {
    /// Temporary files are hidden and name their pipeline, so recovery only touches its own.
    static func tempName(pipeline: String, unique: String) -> String { ".sluice-\(pipeline)-\(unique).tmp" }

    static func recover(directory: String, pipeline: String, state: any StateStore, logger: Logger) async throws {
        let pending = try await state.pendingFileIntents(pipeline: pipeline)
        var resolved: [String] = []
        for stored in pending {
            let intent = stored.intent
            if DurableFile.exists(intent.tempPath) {
                try DurableFile.rename(intent.tempPath, to: intent.finalPath)
                logger.info("published a file committed before a crash", metadata: ["file": "\(intent.finalPath)"])
            } else if !DurableFile.exists(intent.finalPath) {
                logger.error("a committed output file is missing (deleted by hand?)", metadata: ["file": "\(intent.finalPath)"])
            }
            resolved.append(intent.finalPath)
        }
        if !resolved.isEmpty {
            try DurableFile.syncDirectory(directory)
            try await state.resolveFileIntents(pipeline: pipeline, finalPaths: resolved)
        }
        let prefix = ".sluice-\(pipeline)-"
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        var removed = 0
        for name in names where name.hasPrefix(prefix) && name.hasSuffix(".tmp") {
            let path = (directory as NSString).appendingPathComponent(name)
            if unlink(path) == 0 { removed += 1 }
        }
        if removed > 0 {
            logger.info("removed uncommitted temporary files left by an interrupted run", metadata: ["count": "\(removed)"])
        }
    }
}
