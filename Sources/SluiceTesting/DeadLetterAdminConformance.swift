import Foundation
import SluiceCore

/// The behaviour every ``DeadLetterAdminStore`` must have, checked the same way on each store.
public enum DeadLetterAdminConformance {
    static func check(_ condition: Bool, _ what: @autoclosure () -> String) throws {
        if !condition { throw AlertHistoryConformance.Failure(description: what()) }
    }

    /// Runs the checks on `store` with pipeline names starting with `prefix`.
    public static func run(_ store: any StateStore, prefix: String) async throws {
        let p = "\(prefix)-a", q = "\(prefix)-b"
        let t0 = Date(timeIntervalSince1970: 1_800_000_000)
        func commit(_ pipeline: String, at: Date, _ letters: [(String, String, String)]) async throws {
            var c = StateCommit(pipeline: pipeline, now: at)
            c.deadLetters = letters.map { DeadLetter(stage: $0.0, errorKind: $0.1, message: "m", location: $0.2, raw: Array($0.2.utf8) + [0, 0xFF]) }
            try await store.commit(c)
        }
        try await commit(p, at: t0, [("decode", "malformed_row", "f:1"), ("decode", "malformed_row", "f:2"), ("schema", "type_mismatch", "f:3")])
        try await commit(p, at: t0 + 3600, [("sink", "constraint", "f:4"), ("decode", "malformed_row", "f:5")])
        try await commit(q, at: t0 + 7200, [("decode", "malformed_row", "g:1")])

        let all = try await store.deadLetters(matching: DeadLetterFilter(pipeline: p), limit: 100)
        try check(all.map(\.letter.location) == ["f:1", "f:2", "f:3", "f:4", "f:5"], "id order: \(all.map(\.letter.location))")
        try check(all[0].letter.raw == Array("f:1".utf8) + [0, 0xFF], "raw bytes kept")
        func locations(_ f: DeadLetterFilter, limit: Int = 100) async throws -> [String] {
            try await store.deadLetters(matching: f, limit: limit).map(\.letter.location)
        }
        try check(try await locations(DeadLetterFilter(pipeline: p, stages: ["decode"])) == ["f:1", "f:2", "f:5"], "by stage")
        try check(
            try await locations(DeadLetterFilter(pipeline: p, kinds: ["type_mismatch", "constraint"])) == ["f:3", "f:4"], "by kind")
        try check(try await locations(DeadLetterFilter(pipeline: p, since: t0 + 1)) == ["f:4", "f:5"], "since")
        try check(try await locations(DeadLetterFilter(pipeline: p, until: t0 + 1)) == ["f:1", "f:2", "f:3"], "until")
        try check(try await locations(DeadLetterFilter(ids: [all[1].id, all[3].id])) == ["f:2", "f:4"], "by id")
        try check(try await locations(DeadLetterFilter(pipeline: p, afterID: all[2].id), limit: 1) == ["f:4"], "paging")

        let stats = try await store.deadLetterStats(matching: DeadLetterFilter(pipeline: p), now: t0 + 3600 + 60)
        try check(stats.count == 3, "three groups: \(stats)")
        try check(stats[0].stage == "decode" && stats[0].kind == "malformed_row" && stats[0].count == 3, "largest first: \(stats)")
        try check(stats[0].oldest == t0 && stats[0].newest == t0 + 3600 && stats[0].lastHour == 1 && stats[0].lastDay == 3, "ages: \(stats[0])")

        // A replay's commit (under a writer name of its own) deletes the letters it delivered and
        // files those that failed again on the pipeline's queue, in one transaction.
        var replay = StateCommit(pipeline: "\(p)~replay", now: t0 + 7300)
        replay.ownerPipeline = p
        replay.resolvedDeadLetters = [all[3].id]
        replay.deadLetters = [DeadLetter(stage: "sink", errorKind: "constraint", message: "again", location: "f:5", raw: [1], attempts: 1)]
        try await store.commit(replay)
        let afterReplay = try await store.deadLetters(matching: DeadLetterFilter(pipeline: p, since: t0 + 1), limit: 10)
        try check(afterReplay.map(\.letter.location) == ["f:5"], "f:4 resolved: \(afterReplay.map(\.letter.location))")
        try check(
            afterReplay.first?.letter.attempts == 2 && afterReplay.first?.letter.stage == "sink" && afterReplay.first?.letter.message == "again",
            "f:5 failed again: \(String(describing: afterReplay.first))")
        let strays = try await store.deadLetters(matching: DeadLetterFilter(pipeline: "\(p)~replay"), limit: 10)
        try check(strays.isEmpty, "nothing filed under the writer's name")
        // A second replay of letters already delivered is refused whole: its records would be twice.
        var late = StateCommit(pipeline: "\(p)~replay", now: t0 + 7400)
        late.ownerPipeline = p
        late.resolvedDeadLetters = [all[3].id, afterReplay[0].id]
        late.checkpoint = ["dead-letters": "late"]
        do {
            try await store.commit(late)
            try check(false, "a commit resolving a letter already gone was accepted")
        } catch let error as SluiceError {
            try check(error.code == .conflict, "refused as a conflict: \(error)")
        }
        let kept = try await store.deadLetters(matching: DeadLetterFilter(pipeline: p, since: t0 + 1), limit: 10)
        try check(kept.map(\.letter.location) == ["f:5"], "nothing of the refused commit kept: \(kept.map(\.letter.location))")
        let cp = try await store.checkpoint(pipeline: "\(p)~replay")
        try check(cp["dead-letters"] == nil, "its checkpoint not stored either")

        // Retention: older than a cutoff, then all but the newest N.
        try check(try await store.sweepDeadLetters(pipeline: p, before: t0 + 1, keepNewest: nil) == 3, "ttl sweep")
        try check(try await store.sweepDeadLetters(pipeline: p, before: nil, keepNewest: 1) == 0, "max_rows sweep: one left already")
        try check(try await locations(DeadLetterFilter(pipeline: p)) == ["f:5"], "the newest is kept")
        // Drop by filter touches nothing else.
        try check(try await store.deleteDeadLetters(matching: DeadLetterFilter(pipeline: p, stages: ["schema"])) == 0, "nothing matched")
        try check(try await store.deleteDeadLetters(matching: DeadLetterFilter(pipeline: p)) == 1, "dropped")
        try check(try await locations(DeadLetterFilter(pipeline: q)) == ["g:1"], "another pipeline's letters stay")
        try check(try await store.deleteDeadLetters(matching: DeadLetterFilter(pipeline: q)) == 1, "dropped")
    }
}
