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
    /// Small files of a partition are rewritten into files of about `targetFileSize`.
    public var compact = false
    /// The size compaction aims at; files under three quarters of it are small.
    public var targetFileSize = 128 << 20

    public init(tierAfter: Duration? = nil, tierLevel: Int = 19, deleteAfter: Duration? = nil, compact: Bool = false, targetFileSize: Int = 128 << 20) {
        self.tierAfter = tierAfter
        self.tierLevel = tierLevel
        self.deleteAfter = deleteAfter
        self.compact = compact
        self.targetFileSize = targetFileSize
    }

    public var isEmpty: Bool { tierAfter == nil && deleteAfter == nil && !compact }

    /// Why a lake in object storage is not compacted.
    public static let noCompactionInObjectStorage =
        "compaction needs a local lake: an object store has no rename, so a compacted object and the removal of its inputs cannot be one step, and readers listing between them would see rows twice"
}

/// One step of a lifecycle run, as `--dry-run` lists it and a run does it.
public enum LifecycleAction: Sendable, Hashable {
    /// Rewrite `file` with zstd at the tier's level (in place, atomically).
    case tier(file: String, bytes: Int)
    /// Delete the partition directory `partition` (or, for files at the lake's root, `files`).
    case delete(partition: String, files: [String], bytes: Int)
    /// Rewrite each group of small files of `partition` into one file (zstd at the tier's level
    /// when `archive`), and swap the partition for its compacted copy atomically.
    case compact(partition: String, groups: [[String]], bytes: Int, archive: Bool)
}

/// What a lifecycle run did.
public struct LifecycleReport: Sendable, Hashable {
    public var filesTiered = 0
    public var bytesBeforeTiering = 0
    public var bytesAfterTiering = 0
    public var partitionsDeleted = 0
    public var filesDeleted = 0
    public var bytesDeleted = 0
    public var partitionsCompacted = 0
    /// Small files rewritten, and the files they became.
    public var filesCompacted = 0
    public var filesWritten = 0
    public var bytesBeforeCompaction = 0
    public var bytesAfterCompaction = 0
    /// Partitions left as they were because they changed under the run (a second lifecycle run,
    /// files removed by hand) or hold sub-directories next to their files.
    public var partitionsSkipped = 0
    public init() {}

    public var bytesSaved: Int { bytesBeforeTiering - bytesAfterTiering + bytesDeleted + bytesBeforeCompaction - bytesAfterCompaction }
}

/// A sink whose output has a lifecycle (`sluice lifecycle run`): a lake, local or in object storage.
public struct LakeLifecycleTarget: Sendable {
    /// The sink's `lifecycle:` block, if any.
    public var policy: LifecyclePolicy?
    public var directory: String
    /// What a run would do under `policy` at `now`, leaving alone the files in `busy` (published
    /// files whose commit a pipeline has not finished: its recovery looks for them by name).
    public var plan: @Sendable (_ policy: LifecyclePolicy, _ now: Date, _ busy: Set<String>) async throws -> [LifecycleAction]
    /// Does it; the callback gets each action once done.
    public var run:
        @Sendable (_ policy: LifecyclePolicy, _ now: Date, _ busy: Set<String>, _ progress: (LifecycleAction) -> Void) async throws -> LifecycleReport

    public init(
        policy: LifecyclePolicy?, directory: String, plan: @escaping @Sendable (LifecyclePolicy, Date, Set<String>) async throws -> [LifecycleAction],
        run: @escaping @Sendable (LifecyclePolicy, Date, Set<String>, (LifecycleAction) -> Void) async throws -> LifecycleReport
    ) {
        self.policy = policy
        self.directory = directory
        self.plan = plan
        self.run = run
    }
}
