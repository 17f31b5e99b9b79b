import Foundation
import SluiceCore

extension MemoryStateStore {
    public func deadLetters(matching filter: DeadLetterFilter, limit: Int) async throws -> [StoredDeadLetter] {
        Array(try await deadLetters(pipeline: nil, limit: .max).filter(filter.matches).sorted { $0.id < $1.id }.prefix(limit))
    }

    public func deleteDeadLetters(matching filter: DeadLetterFilter) async throws -> Int {
        removeDeadLetters { filter.matches($0) }
    }

    public func deadLetterStats(matching filter: DeadLetterFilter, now: Date) async throws -> [DeadLetterGroup] {
        let letters = try await deadLetters(pipeline: nil, limit: .max).filter(filter.matches)
        let groups = Dictionary(grouping: letters) { [$0.pipeline, $0.letter.stage, $0.letter.errorKind] }
        return groups.map { key, group in
            let seen = group.map(\.firstSeen)
            let within = { (s: TimeInterval) in seen.filter { $0 >= now.addingTimeInterval(-s) }.count }
            return DeadLetterGroup(
                pipeline: key[0], stage: key[1], kind: key[2], count: group.count, oldest: seen.min()!, newest: seen.max()!,
                lastHour: within(3600), lastDay: within(86_400), lastWeek: within(7 * 86_400))
        }.sorted { ($0.pipeline, -$0.count, $0.stage, $0.kind) < ($1.pipeline, -$1.count, $1.stage, $1.kind) }
    }

    public func sweepDeadLetters(pipeline: String, before: Date?, keepNewest: Int?) async throws -> Int {
        var removed = before.map { cutoff in removeDeadLetters { $0.pipeline == pipeline && $0.firstSeen < cutoff } } ?? 0
        if let keepNewest {
            let ids = try await deadLetters(pipeline: pipeline, limit: .max).map(\.id).sorted(by: >)
            let keep = Set(ids.prefix(keepNewest))
            removed += removeDeadLetters { $0.pipeline == pipeline && !keep.contains($0.id) }
        }
        return removed
    }
}
