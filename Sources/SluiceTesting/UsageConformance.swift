import Foundation
import SluiceCore

/// The behaviour every ``UsageStore`` must have, checked the same way on each store.
public enum UsageConformance {
    static func check(_ condition: Bool, _ what: @autoclosure () -> String) throws {
        if !condition { throw AlertHistoryConformance.Failure(description: what()) }
    }

    /// Runs the checks on `store` with pipeline names starting with `prefix` (unique per run
    /// when the store is shared).
    public static func run(_ store: any UsageStore, prefix: String) async throws {
        let p = "\(prefix)-a", q = "\(prefix)-b"
        let hour: Int64 = 1_800_000_000 / 3600 * 3600
        let a = Usage(bytesIn: 1000, bytesOut: 300, recordsIn: 10, recordsOut: 9, cpuSeconds: 0.25, requests: 3, storageBytes: 300)
        try await store.addUsage(pipeline: p, hour: hour, usage: a, ingestDollars: 0.5)
        // A second sample of the same hour adds up (another worker, a later sample).
        try await store.addUsage(pipeline: p, hour: hour, usage: a, ingestDollars: 0.25)
        try await store.addUsage(pipeline: p, hour: hour + 86_400, usage: a, ingestDollars: 1)
        try await store.addUsage(pipeline: q, hour: hour, usage: Usage(bytesIn: 7), ingestDollars: 0)
        let rows = try await store.usage(pipeline: p, since: hour)
        try check(rows.count == 2 && rows[0].hour == hour && rows[1].hour == hour + 86_400, "hours of \(p): \(rows)")
        try check(rows[0].usage == a + a && rows[0].ingestDollars == 0.75, "the same hour adds up: \(rows[0])")
        try check(rows[1].usage == a && rows[1].ingestDollars == 1, "the next day: \(rows[1])")
        let later = try await store.usage(pipeline: p, since: hour + 3600)
        try check(later.count == 1 && later[0].hour == hour + 86_400, "since: \(later)")
        let both = try await store.usage(pipeline: nil, since: hour).filter { $0.pipeline.hasPrefix(prefix + "-") }
        try check(both.map(\.pipeline).sorted() == [p, p, q], "all pipelines: \(both.map(\.pipeline))")
        _ = try await store.sweepUsage(before: hour + 3600)
        let kept = try await store.usage(pipeline: nil, since: 0).filter { $0.pipeline.hasPrefix(prefix + "-") }
        try check(kept.count == 1 && kept[0].hour == hour + 86_400, "swept: \(kept)")
    }
}
