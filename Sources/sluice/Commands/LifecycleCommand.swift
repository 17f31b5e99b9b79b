import ArgumentParser
import Foundation
import SluiceConnectors
import SluiceCore

/// `sluice lifecycle run`: compaction, tiering and retention of Parquet lakes.
struct LifecycleCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "lifecycle",
        abstract: "Compact small files of Parquet lakes, and tier and expire their partitions as they age.",
        subcommands: [Run.self])

    struct Run: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Apply the lakes' lifecycle policies now (or say what would be done, with --dry-run).",
            discussion: """
                For each pipeline whose sink is a `parquet` lake, with its `lifecycle:` block and
                the flags (which override it):

                  compaction  with --compact, each partition's small files (under 3/4 of
                              --target-file-size, default 128MB) are rewritten into files of about
                              that size, with the sink's compression. The new files go into a copy
                              of the partition next to the lake, which then replaces the partition
                              in one atomic swap: readers see the small files or the compacted
                              ones, never both and never neither. Files of different schemas are
                              not mixed. A query that listed the partition just before a swap and
                              opens its files after it fails (a file is gone) and can be retried.
                  tiering     partitions older than --tier-after (by their newest file) are
                              rewritten with zstd at --tier-level (default 19), file by file:
                              each new file replaces the old one atomically, so readers see one
                              or the other, never both. Tiered files are marked in their footer
                              and not rewritten again.
                  retention   partitions older than --delete-after are deleted: the directory is
                              renamed out of sight first, so readers see all of it or none.

                A lake in object storage (`s3://…`) is tiered object by object (each rewritten
                and replaced under its own key at once; its footer keeps its data's date) and
                expired object by object (a reader listing meanwhile sees part of a partition).
                It cannot be compacted: a store has no rename, so a compacted object and the
                removal of its inputs cannot be one step.

                Pipelines keep running meanwhile: they add files to partitions (a file they start
                or publish during a compaction's swap waits a few milliseconds for it), and a
                partition a pipeline is writing into right now is not deleted. A file whose commit
                its pipeline had not finished when the run started is not compacted (a dry run
                does not look: it opens no state store). Copies are staged next to the lake, in
                its parent directory, which must be writable and on the same filesystem; glob
                the lake, not its parent. A run that is interrupted is safe at any moment; the
                next one removes what it left. One run at a time per lake.

                Examples:
                  sluice lifecycle run -c pipelines.yaml --dry-run
                  sluice lifecycle run -c pipelines.yaml --compact --target-file-size 256MB
                  sluice lifecycle run -c pipelines.yaml --pipeline events --tier-after 30d --delete-after 365d
                """)

        @Option(name: [.short, .long], help: "The pipeline file.") var config: [String]
        @Option(name: .long, help: "Only this pipeline (repeatable).") var pipeline: [String] = []
        @Option(name: .long, help: "Tier partitions older than this (30d), overriding `lifecycle.tier_after`.") var tierAfter: String?
        @Option(name: .long, help: "zstd level of tiered files (1-22).") var tierLevel: Int?
        @Option(name: .long, help: "Delete partitions older than this (365d), overriding `lifecycle.delete_after`.") var deleteAfter: String?
        @Flag(name: .long, help: "Compact each partition's small files, as `lifecycle.compact: true`.") var compact = false
        @Option(name: .long, help: "The file size compaction aims at (128MB), overriding `lifecycle.target_file_size`.") var targetFileSize: String?
        @Flag(name: .long, help: "Print what would be done, and change nothing.") var dryRun = false
        @Flag(name: .long, help: "One JSON object per pipeline.") var json = false

        func validate() throws {
            if let tierAfter, ConfigDuration.parse(tierAfter) == nil { throw ValidationError("--tier-after: a duration such as 30d or 12h") }
            if let deleteAfter, ConfigDuration.parse(deleteAfter) == nil { throw ValidationError("--delete-after: a duration such as 365d") }
            if let tierLevel, !(1...22).contains(tierLevel) { throw ValidationError("--tier-level: 1 to 22") }
            if let targetFileSize {
                guard let bytes = ConfigByteSize.parse(targetFileSize), bytes >= 1 << 20 else {
                    throw ValidationError("--target-file-size: a size of at least 1MB, such as 128MB")
                }
            }
        }

        func run() async throws {
            let (stateLocation, plans) = try await ConfigLoading.reportingErrors { try ConfigLoading.load(config) }
            if let unknown = pipeline.first(where: { name in !plans.contains { $0.name == name } }) {
                FileHandle.standardError.write(Data("error: no pipeline '\(unknown)' (defined: \(plans.map(\.name).joined(separator: ", ")))\n".utf8))
                throw ExitCode(2)
            }
            // Tests date the run later (object stores date objects themselves); said on stderr,
            // so a stray variable cannot expire data unnoticed.
            let shift = ProcessInfo.processInfo.environment["SLUICE_TEST_LIFECYCLE_CLOCK_SHIFT_S"].flatMap(Double.init) ?? 0
            if shift != 0 {
                FileHandle.standardError.write(
                    Data("warning: SLUICE_TEST_LIFECYCLE_CLOCK_SHIFT_S moves this run's clock by \(Int(shift)) s (a test hook)\n".utf8))
            }
            let now = Date().addingTimeInterval(shift)
            var any = false
            var busy: Set<String>?
            var refused = false
            for plan in plans where pipeline.isEmpty || pipeline.contains(plan.name) {
                guard let target = plan.sink.lifecycle else { continue }
                var policy = target.policy ?? LifecyclePolicy()
                if let t = tierAfter.flatMap(ConfigDuration.parse) { policy.tierAfter = t }
                if let d = deleteAfter.flatMap(ConfigDuration.parse) { policy.deleteAfter = d }
                if let tierLevel { policy.tierLevel = tierLevel }
                if compact { policy.compact = true }
                if let size = targetFileSize.flatMap(ConfigByteSize.parse) { policy.targetFileSize = size }
                if policy.compact && target.directory.hasPrefix("s3://") {
                    // The other work still happens; the refusal is said, and the exit status says it too.
                    FileHandle.standardError.write(
                        Data("error: \(plan.name) (\(target.directory)): not compacted: \(LifecyclePolicy.noCompactionInObjectStorage)\n".utf8))
                    refused = true
                    policy.compact = false
                }
                guard !policy.isEmpty else { continue }
                any = true
                // Read once, for real runs only (a dry run opens no state store).
                if policy.compact && !dryRun && busy == nil { busy = try await unfinishedFiles(stateLocation, plans: plans) }
                if dryRun {
                    let actions = try await target.plan(policy, now, [])
                    if json {
                        print(LifecycleRendering.json(pipeline: plan.name, actions: actions))
                    } else {
                        print("\(plan.name) (\(target.directory)): \(actions.isEmpty ? "nothing to do" : "would")")
                        for a in actions { print("  \(LifecycleRendering.describe(a))") }
                    }
                    continue
                }
                let report = try await target.run(policy, now, busy ?? []) { action in
                    if !json { print("  \(LifecycleRendering.describe(action, done: true))") }
                }
                if json {
                    print(LifecycleRendering.json(pipeline: plan.name, report: report))
                } else {
                    print(LifecycleRendering.summary(pipeline: plan.name, report: report))
                }
            }
            if !any && !json {
                print(
                    "no lifecycle policy applies: give a `parquet` sink `lifecycle: { compact: true, tier_after: 30d, delete_after: 365d }`, or pass --compact / --tier-after / --delete-after"
                )
            }
            if refused { throw ExitCode(1) }
        }

        /// Published files whose commit their pipeline (or a replay of its dead letters) has not
        /// finished (a crash between the rename and the state update): the writer's recovery
        /// looks for them by name.
        func unfinishedFiles(_ stateLocation: String, plans: [PipelinePlan]) async throws -> Set<String> {
            let store = try await ConfigLoading.reportingErrors { try await BuiltinComponents.openState(stateLocation) }
            var files: Set<String> = []
            for plan in plans {
                for writer in [plan.name, DeadLetterReplay.writerName(plan.name)] {
                    files.formUnion(try await store.pendingFileIntents(pipeline: writer).map(\.intent.finalPath))
                }
            }
            return files
        }
    }
}

enum LifecycleRendering {
    static func size(_ bytes: Int) -> String {
        ByteCountFormatter.string(fromByteCount: Int64(bytes), countStyle: .binary)
    }

    static func describe(_ a: LifecycleAction, done: Bool = false) -> String {
        switch a {
        case let .tier(file, bytes): "\(done ? "tiered" : "tier  ") \(file) (\(size(bytes)))"
        case let .delete(partition, files, bytes):
            "\(done ? "deleted" : "delete ") \(partition.isEmpty ? "\(files.count) file(s) at the root" : partition) (\(files.count) file(s), \(size(bytes)))"
        case let .compact(partition, groups, bytes, archive):
            "\(done ? "compacted" : "compact") \(partition.isEmpty ? "the root" : partition): \(groups.reduce(0) { $0 + $1.count }) file(s) (\(size(bytes))) into \(groups.count)\(archive ? " (tiered: zstd)" : "")"
        }
    }

    static func summary(pipeline: String, report r: LifecycleReport) -> String {
        var parts: [String] = []
        if r.partitionsCompacted > 0 || r.filesCompacted > 0 {
            parts.append(
                "compacted \(r.filesCompacted) file(s) into \(r.filesWritten) in \(r.partitionsCompacted) partition(s) (\(size(r.bytesBeforeCompaction)) -> \(size(r.bytesAfterCompaction)))"
            )
        }
        if r.filesTiered > 0 { parts.append("tiered \(r.filesTiered) file(s) (\(size(r.bytesBeforeTiering)) -> \(size(r.bytesAfterTiering)))") }
        if r.filesDeleted > 0 { parts.append("deleted \(r.partitionsDeleted) partition(s) and \(r.filesDeleted) file(s) (\(size(r.bytesDeleted)))") }
        if r.partitionsSkipped > 0 { parts.append("left \(r.partitionsSkipped) partition(s) that changed during the run for the next one") }
        if parts.isEmpty { return "\(pipeline): nothing to do" }
        return "\(pipeline): \(parts.joined(separator: ", ")); \(size(r.bytesSaved)) saved"
    }

    static func json(pipeline: String, actions: [LifecycleAction]) -> String {
        let list: [[String: Any]] = actions.map { a in
            switch a {
            case let .tier(file, bytes): ["action": "tier", "file": file, "bytes": bytes]
            case let .delete(partition, files, bytes): ["action": "delete", "partition": partition, "files": files, "bytes": bytes]
            case let .compact(partition, groups, bytes, archive):
                ["action": "compact", "partition": partition, "groups": groups, "bytes": bytes, "archive": archive]
            }
        }
        return encode(["pipeline": pipeline, "dry_run": true, "actions": list])
    }

    static func json(pipeline: String, report r: LifecycleReport) -> String {
        encode([
            "pipeline": pipeline, "files_tiered": r.filesTiered, "bytes_before_tiering": r.bytesBeforeTiering, "bytes_after_tiering": r.bytesAfterTiering,
            "partitions_deleted": r.partitionsDeleted, "files_deleted": r.filesDeleted, "bytes_deleted": r.bytesDeleted, "bytes_saved": r.bytesSaved,
            "partitions_compacted": r.partitionsCompacted, "files_compacted": r.filesCompacted, "files_written": r.filesWritten,
            "bytes_before_compaction": r.bytesBeforeCompaction, "bytes_after_compaction": r.bytesAfterCompaction, "partitions_skipped": r.partitionsSkipped,
        ])
    }

    static func encode(_ object: [String: Any]) -> String {
        String(decoding: (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])) ?? Data(), as: UTF8.self)
    }
}
