import ArgumentParser
import Foundation
import SluiceConnectors
import SluiceCore
import SluiceFormats
import Synchronization

/// The filters of `sluice dlq list | stats | export | drop`.
struct DeadLetterFilterOptions: ParsableArguments {
    @Option(name: .long, help: "Only this pipeline.") var pipeline: String?
    @Option(name: .customLong("stage"), help: "Only dead letters of this stage: decode, schema, dedupe, sink, … (repeatable).")
    var stages: [String] = []
    @Option(name: .customLong("reason"), help: "Only this reason, the error kind: malformed_row, type_mismatch, constraint, … (repeatable).")
    var reasons: [String] = []
    @Option(name: .long, help: "First seen at or after: a time (2026-12-05T10:00:00Z), a date (2026-12-05) or a duration ago (30m, 2h, 7d).")
    var since: String?
    @Option(name: .long, help: "First seen before (same forms as --since).") var until: String?
    @Option(name: .customLong("id"), help: "Only this dead letter (repeatable).") var ids: [Int64] = []

    var isEmpty: Bool { pipeline == nil && stages.isEmpty && reasons.isEmpty && since == nil && until == nil && ids.isEmpty }

    func filter(now: Date = Date()) throws -> DeadLetterFilter {
        DeadLetterFilter(
            pipeline: pipeline, stages: stages, kinds: reasons, since: try since.map { try Self.time($0, now: now, option: "--since") },
            until: try until.map { try Self.time($0, now: now, option: "--until") }, ids: ids)
    }

    static func time(_ text: String, now: Date, option: String) throws -> Date {
        if let d = ConfigDuration.parse(text) {
            return now.addingTimeInterval(-(Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18))
        }
        let full = ISO8601DateFormatter()
        if let t = full.date(from: text) { return t }
        let day = ISO8601DateFormatter()
        day.formatOptions = [.withFullDate]
        if let t = day.date(from: text) { return t }
        throw ValidationError("\(option): '\(text)' is neither a time (2026-12-05T10:00:00Z), a date (2026-12-05) nor a duration (2h, 7d)")
    }
}

extension DLQCommand {
    struct Stats: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Count dead letters by pipeline, stage and reason, with their ages.")

        @OptionGroup var filters: DeadLetterFilterOptions
        @Flag(name: .long, help: "One JSON object per group.") var json = false
        @OptionGroup var stateOptions: StateOptions

        func run() async throws {
            let filter = try filters.filter()
            let store = try await ConfigLoading.reportingErrors { try await BuiltinComponents.openState(try stateOptions.location()) }
            let now = Date()
            let groups = try await store.deadLetterStats(matching: filter, now: now)
            if json {
                for g in groups {
                    let object: [String: Any] = [
                        "pipeline": g.pipeline, "stage": g.stage, "reason": g.kind, "count": g.count,
                        "oldest": g.oldest.timeIntervalSince1970, "newest": g.newest.timeIntervalSince1970,
                        "last_hour": g.lastHour, "last_day": g.lastDay, "last_week": g.lastWeek,
                    ]
                    print(String(decoding: try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]), as: UTF8.self))
                }
                return
            }
            if groups.isEmpty {
                print("no dead letters")
                return
            }
            var rows = [["PIPELINE", "STAGE", "REASON", "COUNT", "OLDEST", "NEWEST", "LAST 1H", "LAST 24H", "LAST 7D"]]
            for g in groups {
                rows.append([
                    g.pipeline, g.stage, g.kind, "\(g.count)", StatusCommand.duration(now.timeIntervalSince(g.oldest)) + " ago",
                    StatusCommand.duration(now.timeIntervalSince(g.newest)) + " ago", "\(g.lastHour)", "\(g.lastDay)", "\(g.lastWeek)",
                ])
            }
            StatusCommand.printTable(rows)
            print("total: \(groups.reduce(0) { $0 + $1.count }) in \(Set(groups.map(\.pipeline)).count) pipeline(s)")
        }
    }

    struct Export: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Write dead letters (raw bytes and metadata) to an NDJSON or Parquet file.",
            discussion: """
                NDJSON: one object per dead letter with id, pipeline, stage, kind, location, message,
                attempts, first_seen and last_seen (Unix seconds), raw (the bytes as text, null when
                they are not UTF-8), raw_base64 (the exact bytes) and schema (for a row a later stage
                refused, kept as JSON: its column types; null otherwise). Parquet: the same columns,
                raw as binary and the times as timestamps. The file appears whole (written aside, then
                renamed); the dead letters stay in the queue (drop them with `sluice dlq drop`).
                """)

        @OptionGroup var filters: DeadLetterFilterOptions
        @Option(name: .long, help: "ndjson or parquet.") var format = "ndjson"
        @Option(name: [.short, .long], help: "The file to write.") var output: String
        @OptionGroup var stateOptions: StateOptions

        func validate() throws {
            guard ["ndjson", "parquet"].contains(format) else { throw ValidationError("--format: use ndjson or parquet") }
        }

        func run() async throws {
            var filter = try filters.filter()
            let store = try await ConfigLoading.reportingErrors { try await BuiltinComponents.openState(try stateOptions.location()) }
            let temp =
                (output as NSString).deletingLastPathComponent.appending((output as NSString).deletingLastPathComponent.isEmpty ? "" : "/")
                + ".\((output as NSString).lastPathComponent).\(UUID().uuidString.prefix(8)).tmp"
            var exported = 0
            do {
                let sink = try DeadLetterExport(path: temp, format: format)
                while true {
                    // A page at a time: memory does not grow with the queue.
                    let page = try await store.deadLetters(matching: filter, limit: 10_000)
                    guard let last = page.last else { break }
                    try sink.write(page)
                    exported += page.count
                    filter.afterID = last.id
                }
                try sink.close()
                guard rename(temp, output) == 0 else { throw SluiceError(.io, "cannot rename \(temp) to \(output): \(String(cString: strerror(errno)))") }
            } catch {
                unlink(temp)
                FileHandle.standardError.write(Data("error: \(error)\n".utf8))
                throw ExitCode(1)
            }
            FileHandle.standardError.write(Data("exported \(exported) dead letter(s) to \(output)\n".utf8))
        }
    }

    struct Drop: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Delete dead letters for good (export them first to keep a copy).",
            discussion: """
                Without --yes it only says how many would go. A filter or --all is required, so a
                bare `drop --yes` never empties every pipeline's queue by accident.
                """)

        @OptionGroup var filters: DeadLetterFilterOptions
        @Flag(name: .long, help: "Every dead letter of every pipeline (with --yes).") var all = false
        @Flag(name: .long, help: "Really delete.") var yes = false
        @OptionGroup var stateOptions: StateOptions

        func validate() throws {
            guard all || !filters.isEmpty else {
                throw ValidationError("say which dead letters: --pipeline, --stage, --reason, --since, --until, --id, or --all")
            }
            guard !(all && !filters.isEmpty) else { throw ValidationError("--all takes no filter") }
        }

        func run() async throws {
            let filter = try filters.filter()
            let store = try await ConfigLoading.reportingErrors { try await BuiltinComponents.openState(try stateOptions.location()) }
            guard yes else {
                let count = try await store.deadLetterStats(matching: filter, now: Date()).reduce(0) { $0 + $1.count }
                FileHandle.standardError.write(Data("\(count) dead letter(s) match; nothing dropped: add --yes to drop them\n".utf8))
                throw ExitCode(1)
            }
            let dropped = try await store.deleteDeadLetters(matching: filter)
            print("dropped \(dropped) dead letter(s)")
        }
    }
}

/// Writes dead letters to an NDJSON or Parquet file.
final class DeadLetterExport {
    let format: String
    let handle: FileHandle?
    let parquet: ParquetWriter?
    let parquetOutput: ParquetFileOutput?

    static var schema: Schema { DeadLetterRecords.schema }

    init(path: String, format: String) throws {
        self.format = format
        if format == "parquet" {
            let output = try ParquetFileOutput(path: path)
            parquetOutput = output
            parquet = try ParquetWriter(schema: Self.schema, options: ParquetWriterOptions(), output: output)
            handle = nil
        } else {
            guard FileManager.default.createFile(atPath: path, contents: nil), let h = FileHandle(forWritingAtPath: path) else {
                throw SluiceError(.io, "cannot create \(path)")
            }
            handle = h
            parquet = nil
            parquetOutput = nil
        }
    }

    func write(_ letters: [StoredDeadLetter]) throws {
        if let handle {
            var text = ""
            for l in letters { text += DLQRendering.json(l) + "\n" }
            try handle.write(contentsOf: Data(text.utf8))
            return
        }
        try parquet?.write(DeadLetterRecords.batch(letters))
    }

    func close() throws {
        if let handle {
            try handle.synchronize()
            try handle.close()
        } else {
            _ = try parquet?.close()
            try parquetOutput?.sync()
            try parquetOutput?.close()
        }
    }
}

extension DLQCommand {
    struct Replay: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Send dead letters through the pipeline's current configuration again, exactly once.",
            discussion: """
                Fix the cause first (a column type, a format option, a constraint of the target
                table), then replay: each dead letter goes through the pipeline's current
                configuration from the stage where it failed. A decode failure is decoded again from
                its raw bytes with the source's current options, a schema failure is checked against
                the current schema and policy, a row the sink refused is written again. Records
                that pass land in the pipeline's sink, and their dead letters are deleted in the same
                commit, so a crash never loses or repeats one (run it again to go on). Those that
                fail again stay, with one more attempt, the new reason and time. With `dedupe`, a
                record whose key was delivered already is a duplicate: its letter goes, nothing is
                written. It can run while the pipeline runs.

                Replayable: decode failures of file (csv, ndjson), HTTP push, HTTP API and
                JetStream sources (decoded again from their bytes), rows of postgres and sqlite
                sources (read again by key), and rows refused by the schema policy, dedupe or the
                sink of any source; into file sinks (parquet, ndjson; local or s3://) and
                PostgreSQL (append, upsert). Other dead letters are left as they are and counted.

                Examples:
                  sluice dlq replay -c pipelines.yaml --pipeline events
                  sluice dlq replay -c pipelines.yaml --pipeline events --reason type_mismatch --dry-run
                """)

        @Option(name: [.short, .long], help: "The pipeline file (its current configuration is used).") var config: [String]
        @OptionGroup var filters: DeadLetterFilterOptions
        @Flag(name: .long, help: "Decode again and report, without writing or changing anything.") var dryRun = false
        @Option(name: .long, help: "Dead letters per commit, at most (whole blocks of the state store when they fit).") var batch = 65_536
        @Flag(name: .long, help: "Never draw the progress line.") var noProgress = false
        @Option(
            name: .long,
            help: ArgumentHelp(
                "Add this replay's outcomes to sluice_replayed_total{pipeline,result=\"ok|failed\"} in this Prometheus text file (for node_exporter's textfile collector).",
                valueName: "path"))
        var metricsFile: String?
        @OptionGroup var logging: LoggingOptions

        func validate() throws {
            guard filters.pipeline != nil else { throw ValidationError("name the pipeline: --pipeline P") }
            guard batch > 0 else { throw ValidationError("--batch must be positive") }
        }

        func run() async throws {
            let terminal = Terminal()
            let logger = logging.bootstrap(terminal: terminal)
            let filter = try filters.filter()
            let (stateLocation, plans) = try await ConfigLoading.reportingErrors { try ConfigLoading.load(config) }
            guard let plan = plans.first(where: { $0.name == filters.pipeline }) else {
                FileHandle.standardError.write(
                    Data(
                        "error: no pipeline '\(filters.pipeline!)' in \(config.joined(separator: ", ")) (defined: \(plans.map(\.name).joined(separator: ", ")))\n"
                            .utf8))
                throw ExitCode(2)
            }
            let store = try await ConfigLoading.reportingErrors { try await BuiltinComponents.openState(stateLocation) }
            var replay = DeadLetterReplay(plan: plan, store: store, logger: logger, filter: filter)
            replay.renderedRows = RenderedRowDecoder()
            replay.dryRun = dryRun
            replay.pageSize = batch
            replay.hooks = .fromProcessEnvironment
            if let refusal = replay.refusal {
                FileHandle.standardError.write(Data("error: \(refusal)\n".utf8))
                throw ExitCode(2)
            }
            let now = Date()
            // One pass over the queue: the letters this replay takes, and the others.
            let groups = try await store.deadLetterStats(matching: filter, now: now)
            let stages = Set(replay.replayable.stages)
            let total = groups.filter { stages.contains($0.stage) }.reduce(0) { $0 + $1.count }
            let others = groups.reduce(0) { $0 + $1.count } - total
            let showProgress = terminal.isInteractive && !noProgress
            if !dryRun, let metricsFile {
                do { try ReplayMetricsFile.check(path: metricsFile) } catch {
                    FileHandle.standardError.write(Data("error: --metrics-file: \(error)\n".utf8))
                    throw ExitCode(2)
                }
            }
            let latest = Mutex(DeadLetterReplay.Totals())
            let totals: DeadLetterReplay.Totals
            do {
                totals = try await replay.run { t in
                    latest.withLock { $0 = t }
                    guard showProgress else { return }
                    let done = t.replayed + t.failedAgain + t.dropped + t.skipped
                    FileHandle.standardError.write(Data("\r\u{1B}[2Kreplaying: \(done)/\(total) (\(t.replayed) ok, \(t.failedAgain) failed again)".utf8))
                }
            } catch {
                // The pages committed before the failure count too.
                if !dryRun, let metricsFile { try? writeMetrics(metricsFile, latest.withLock { $0 }) }
                throw error
            }
            if showProgress { FileHandle.standardError.write(Data("\n".utf8)) }
            if !dryRun, let metricsFile {
                // The replay is done and committed: a file that cannot be written is a warning.
                do { try writeMetrics(metricsFile, totals) } catch {
                    FileHandle.standardError.write(Data("warning: the replay's metrics were not written to \(metricsFile): \(error)\n".utf8))
                }
            }
            let verb = dryRun ? "would replay" : "replayed"
            print("\(verb) \(totals.replayed) of \(total) dead letter(s); \(totals.failedAgain) \(dryRun ? "would fail" : "failed") again")
            if totals.dropped > 0 {
                print("\(totals.dropped) dropped: delivered already (dedupe) or discarded by the schema policy")
            }
            if totals.skipped > 0 {
                print("\(totals.skipped) left as they are (no row to decode again, or a compressed file)")
            }
            if others > 0 {
                print(
                    "\(others) other dead letter(s) left as they are (\(plan.source.deadLetterDecoder() == nil ? "this source's decode failures cannot be replayed; " : "")stages replayed: \(replay.stages.joined(separator: ", ")))"
                )
            }
        }

        /// As the in-process counter counts: records delivered are `ok`, dead letters that failed
        /// again `failed` (those dropped as delivered already, or left as they are, neither).
        func writeMetrics(_ path: String, _ totals: DeadLetterReplay.Totals) throws {
            try ReplayMetricsFile.update(path: path, pipeline: filters.pipeline!, ok: totals.replayed, failed: totals.failedAgain)
        }
    }
}
