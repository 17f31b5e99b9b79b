import Foundation

/// Cost accounting's record: each pipeline's usage per hour (``Usage``), kept in the state store
/// so that it survives restarts and adds up across the workers that share it.
public protocol UsageStore: Sendable {
    /// Adds `usage` (and what its ingestion cost) to `pipeline`'s hour starting at `hour` (Unix
    /// seconds, a multiple of 3600).
    func addUsage(pipeline: String, hour: Int64, usage: Usage, ingestDollars: Double) async throws
    /// The hours from `since` on (of `pipeline`, or all), by pipeline and hour.
    func usage(pipeline: String?, since: Int64) async throws -> [UsageRow]
    /// Deletes the hours before `before`; returns how many.
    func sweepUsage(before: Int64) async throws -> Int
}
