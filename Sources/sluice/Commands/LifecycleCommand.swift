import ArgumentParser
import Foundation
import SluiceConnectors
import SluiceCore

/// `sluice lifecycle run`: tiering and retention of local Parquet lakes.
struct LifecycleCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "lifecycle",
        abstract: "Tier and expire the partitions of local Parquet lakes as they age.",
        subcommands: [Run.self])

    struct Run: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Apply the lakes' lifecycle policies now (or say what would be done, with --dry-run).",
            discussion: """
                For each pipeline whose sink is a local `parquet` lake, with its `lifecycle:` block
                and the flags (which override it):

                  tiering     partitions older than --tier-after (by their newest file) are
                              rewritten with zstd at --tier-level (default 19), file by file:
                              each new file replaces the old one atomically, so readers see one
                              or the other, never both. Tiered files are marked in their footer
                              and not rewritten again.
                  retention   partitions older than --delete-after are deleted: the directory is
                              renamed out of sight first, so readers see all of it or none.

                Pipelines keep running meanwhile: they add files to recent partitions, and a
                partition a pipeline is writing into right now is not deleted. A run that is
                interrupted is safe; the next one removes what it left.

                Examples:
                  sluice lifecycle run -c pipelines.yaml --dry-run
                  sluice lifecycle run -c pipelines.yaml --pipeline events --tier-after 30d --delete-after 365d
                """)

        @Option(name: [.short, .long], help: "The pipeline file.") var config: [String]
        @Option(name: .long, help: "Only this pipeline (repeatable).") var pipeline: [String] = []
        @Option(name: .long, help: "Tier partitions older than this (30d), overriding `lifecycle.tier_after`.") var tierAfter: String?
        @Option(name: .long, help: "zstd level of tiered files (1-22).") var tierLevel: Int?
        @Option(name: .long, help: "Delete partitions older than this (365d), overriding `lifecycle.delete_after`.") var deleteAfter: String?
        @Flag(name: .long, help: "Print what would be done, and change nothing.") var dryRun = false
        @Flag(name: .long, help: "One JSON object per pipeline.") var json = false

        func validate() throws {
            if let tierAfter, ConfigDuration.parse(tierAfter) == nil { throw ValidationError("--tier-after: a duration such as 30d or 12h") }
            if let deleteAfter, ConfigDuration.parse(deleteAfter) == nil { throw ValidationError("--delete-after: a duration such as 365d") }
            if let tierLevel, !(1...22).contains(tierLevel) { throw ValidationError("--tier-level: 1 to 22") }
        }

        func run() async throws {
            let (_, plans) = try await ConfigLoading.reportingErrors { try ConfigLoading.load(config) }
            if let unknown = pipeline.first(where: { name in !plans.contains { $0.name == name } }) {
                FileHandle.standardError.write(Data("error: no pipeline '\(unknown)' (defined: \(plans.map(\.name).joined(separator: ", ")))\n".utf8))
                throw ExitCode(2)
            }
            let now = Date()
            var any = false
            for plan in plans where pipeline.isEmpty || pipeline.contains(plan.name) {
                guard let target = plan.sink.lifecycle else { continue }
                var policy = target.policy ?? LifecyclePolicy()
                if let t = tierAfter.flatMap(ConfigDuration.parse) { policy.tierAfter = t }
                if let d = deleteAfter.flatMap(ConfigDuration.parse) { policy.deleteAfter = d }
                if let tierLevel { policy.tierLevel = tierLevel }
                guard !policy.isEmpty else { continue }
                any = true
                if dryRun {
                    let actions = target.plan(policy, now)
                    if json {
                        print(LifecycleRendering.json(pipeline: plan.name, actions: actions))
                    } else {
                        print("\(plan.name) (\(target.directory)): \(actions.isEmpty ? "nothing to do" : "would")")
                        for a in actions { print("  \(LifecycleRendering.describe(a))") }
                    }
                    continue
                }
                let report = try target.run(policy, now) { action in
                    if !json { print("  \(LifecycleRendering.describe(action, done: true))") }
                }
                if json {
                    print(LifecycleRendering.json(pipeline: plan.name, report: report))
                } else {
                    print(
                        "\(plan.name): tiered \(report.filesTiered) file(s) (\(LifecycleRendering.size(report.bytesBeforeTiering)) -> \(LifecycleRendering.size(report.bytesAfterTiering))), deleted \(report.partitionsDeleted) partition(s) and \(report.filesDeleted) file(s) (\(LifecycleRendering.size(report.bytesDeleted))); \(LifecycleRendering.size(report.bytesSaved)) saved"
                    )
                }
            }
            if !any && !json {
                print(
                    "no lifecycle policy applies: give a local `parquet` sink `lifecycle: { tier_after: 30d, delete_after: 365d }`, or pass --tier-after / --delete-after"
                )
            }
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
        }
    }

    static func json(pipeline: String, actions: [LifecycleAction]) -> String {
        let list: [[String: Any]] = actions.map { a in
            switch a {
            case let .tier(file, bytes): ["action": "tier", "file": file, "bytes": bytes]
            case let .delete(partition, files, bytes): ["action": "delete", "partition": partition, "files": files, "bytes": bytes]
            }
        }
        return encode(["pipeline": pipeline, "dry_run": true, "actions": list])
    }

    static func json(pipeline: String, report r: LifecycleReport) -> String {
        encode([
            "pipeline": pipeline, "files_tiered": r.filesTiered, "bytes_before_tiering": r.bytesBeforeTiering, "bytes_after_tiering": r.bytesAfterTiering,
            "partitions_deleted": r.partitionsDeleted, "files_deleted": r.filesDeleted, "bytes_deleted": r.bytesDeleted, "bytes_saved": r.bytesSaved,
        ])
    }

    static func encode(_ object: [String: Any]) -> String {
        String(decoding: (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])) ?? Data(), as: UTF8.self)
    }
}
