import Foundation

/// Which dead letters a command works on: `sluice dlq list | stats | export | drop` and
/// retention. Every field narrows; an empty filter matches every dead letter.
public struct DeadLetterFilter: Sendable, Hashable {
    public var pipeline: String?
    /// Where they failed (`decode`, `schema`, `dedupe`, `sink`, …); any of these.
    public var stages: [String] = []
    /// Why (the error kind: `malformed_row`, `type_mismatch`, `constraint`, …); any of these.
    public var kinds: [String] = []
    /// First seen at or after.
    public var since: Date?
    /// First seen before.
    public var until: Date?
    public var ids: [Int64] = []
    /// Only ids above this (paging through a large queue in id order).
    public var afterID: Int64 = 0

    public init(
        pipeline: String? = nil, stages: [String] = [], kinds: [String] = [], since: Date? = nil, until: Date? = nil, ids: [Int64] = [],
        afterID: Int64 = 0
    ) {
        self.pipeline = pipeline
        self.stages = stages
        self.kinds = kinds
        self.since = since
        self.until = until
        self.ids = ids
        self.afterID = afterID
    }

    /// Whether `letter` matches (the stores' SQL says the same; this is for the memory store).
    public func matches(_ letter: StoredDeadLetter) -> Bool {
        (pipeline == nil || letter.pipeline == pipeline) && (stages.isEmpty || stages.contains(letter.letter.stage))
            && (kinds.isEmpty || kinds.contains(letter.letter.errorKind)) && (since.map { letter.firstSeen >= $0 } ?? true)
            && (until.map { letter.firstSeen < $0 } ?? true) && (ids.isEmpty || ids.contains(letter.id)) && letter.id > afterID
    }
}

/// Dead letters counted by pipeline, stage and kind, with their ages.
public struct DeadLetterGroup: Sendable, Hashable {
    public var pipeline: String
    public var stage: String
    public var kind: String
    public var count: Int
    public var oldest: Date
    public var newest: Date
    /// How many were first seen within the last hour, day and week (of `now` as asked).
    public var lastHour: Int
    public var lastDay: Int
    public var lastWeek: Int

    public init(
        pipeline: String, stage: String, kind: String, count: Int, oldest: Date, newest: Date, lastHour: Int, lastDay: Int, lastWeek: Int
    ) {
        self.pipeline = pipeline
        self.stage = stage
        self.kind = kind
        self.count = count
        self.oldest = oldest
        self.newest = newest
        self.lastHour = lastHour
        self.lastDay = lastDay
        self.lastWeek = lastWeek
    }
}

/// Operations on the dead-letter queue beyond reading it: what `sluice dlq` and retention need.
public protocol DeadLetterAdminStore: Sendable {
    /// Dead letters matching `filter`, in id order, at most `limit`.
    func deadLetters(matching filter: DeadLetterFilter, limit: Int) async throws -> [StoredDeadLetter]
    /// A page of a replay: dead letters matching `filter`, in id order, at most about `limit`, as
    /// the store keeps them together (a store that keeps letters in blocks returns whole blocks,
    /// so that the commit delivering them deletes whole blocks). Never empty while a letter matches.
    func deadLetterPage(matching filter: DeadLetterFilter, limit: Int) async throws -> DeadLetterPage
    /// Deletes the dead letters matching `filter`; returns how many.
    func deleteDeadLetters(matching filter: DeadLetterFilter) async throws -> Int
    /// Counts by pipeline, stage and kind, with ages relative to `now`.
    func deadLetterStats(matching filter: DeadLetterFilter, now: Date) async throws -> [DeadLetterGroup]
    /// Retention: deletes `pipeline`'s dead letters first seen before `before`, then all but the
    /// newest `keepNewest`; returns how many.
    func sweepDeadLetters(pipeline: String, before: Date?, keepNewest: Int?) async throws -> Int
}

extension DeadLetterAdminStore {
    public func deadLetterPage(matching filter: DeadLetterFilter, limit: Int) async throws -> DeadLetterPage {
        DeadLetterPage(letters: try await deadLetters(matching: filter, limit: limit))
    }
}
