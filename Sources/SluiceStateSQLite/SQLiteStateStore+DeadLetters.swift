import Foundation
import GRDB
import SluiceCore

/// The dead-letter queue's administration (see ``SQLiteDeadLetterBlocks`` for how it is kept).
extension SQLiteStateStore {
    public func deadLetters(matching filter: DeadLetterFilter, limit: Int) async throws -> [StoredDeadLetter] {
        try await pool.read { db in try SQLiteDeadLetterBlocks.letters(db, matching: filter, limit: limit) }
    }

    public func deadLetterPage(matching filter: DeadLetterFilter, limit: Int) async throws -> DeadLetterPage {
        try await pool.read { db in try SQLiteDeadLetterBlocks.page(db, matching: filter, limit: limit) }
    }

    public func deleteDeadLetters(matching filter: DeadLetterFilter) async throws -> Int {
        try await write { db in try SQLiteDeadLetterBlocks.delete(db, matching: filter) }
    }

    public func deadLetterStats(matching filter: DeadLetterFilter, now: Date) async throws -> [DeadLetterGroup] {
        try await pool.read { db in try SQLiteDeadLetterBlocks.stats(db, matching: filter, now: now) }
    }

    public func sweepDeadLetters(pipeline: String, before: Date?, keepNewest: Int?) async throws -> Int {
        try await write { db in try SQLiteDeadLetterBlocks.sweep(db, pipeline: pipeline, before: before, keepNewest: keepNewest) }
    }
}
