import Foundation

/// `lifecycle:` of a `parquet` sink, and the flags of `sluice lifecycle run`: what happens to a
/// local lake's partitions as they age. A partition's age is that of its newest data file.
public struct LifecyclePolicy: Sendable, Hashable {
    /// Partitions older than this are rewritten with stronger compression (zstd `tierLevel`).
    public var tierAfter: Duration?
    /// The zstd level of tiered files (default 19).
    public var tierLevel = 19
    /// Partitions older than this are deleted.
    public var deleteAfter: Duration?

    public init(tierAfter: Duration? = nil, tierLevel: Int = 19, deleteAfter: Duration? = nil) {
        self.tierAfter = tierAfter
        self.tierLevel = tierLevel
        self.deleteAfter = deleteAfter
    }

    public var isEmpty: Bool { tierAfter == nil && deleteAfter == nil }
}

/// One step of a lifecycle run, as `--dry-run` lists it and a run does it.
public enum LifecycleAction: Sendable, Hashable {
    /// Rewrite `file` with zstd at the tier's level (in place, atomically).
    case tier(file: String, bytes: Int)
    /// Delete the partition directory `partition` (or, for files at the lake's root, `files`).
    case delete(partition: String, files: [String], bytes: Int)
}

/// What a lifecycle run did.
public struct LifecycleReport: Sendable, Hashable {
    public var filesTiered = 0
    public var bytesBeforeTiering = 0
    public var bytesAfterTiering = 0
    public var partitionsDeleted = 0
    public var filesDeleted = 0
    public var bytesDeleted = 0
    public init() {}

    public var bytesSaved: Int { bytesBeforeTiering - bytesAfterTiering + bytesDeleted }
}

/// A sink whose output has a lifecycle (`sluice lifecycle run`): a local lake.
public struct LakeLifecycleTarget: Sendable {
    /// The sink's `lifecycle:` block, if any.
    public var policy: LifecyclePolicy?
    public var directory: String
    /// What a run would do under `policy` at `now`.
    public var plan: @Sendable (_ policy: LifecyclePolicy, _ now: Date) -> [LifecycleAction]
    /// Does it; the callback gets each action once done.
    public var run: @Sendable (_ policy: LifecyclePolicy, _ now: Date, _ progress: (LifecycleAction) -> Void) throws -> LifecycleReport

    public init(
        policy: LifecyclePolicy?, directory: String, plan: @escaping @Sendable (LifecyclePolicy, Date) -> [LifecycleAction],
        run: @escaping @Sendable (LifecyclePolicy, Date, (LifecycleAction) -> Void) throws -> LifecycleReport
    ) {
        self.policy = policy
        self.directory = directory
        self.plan = plan
        self.run = run
    }
}
