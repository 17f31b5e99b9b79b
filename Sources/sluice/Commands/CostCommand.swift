import ArgumentParser
import Foundation
import SluiceConnectors
import SluiceCore

/// `sluice cost`: what each pipeline used and cost, per day.
struct CostCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cost",
        abstract: "What each pipeline used and cost, per day (bytes, records, CPU, requests, storage, dollars).",
        discussion: """
            `sluice run` and `sluice serve` keep each pipeline's usage per hour in the state store:
            bytes read and written, records, CPU time (the process's, shared by the bytes each
            pipeline moved), requests to HTTP APIs and object storage, and bytes of files written.
            This command turns it into money with the file's `pricing:`:

              ingest    GB read x per_gb (default: the middle of the cost-vs-freshness tier of the
                        pipeline's freshness, as `sluice plan` shows it; kept per hour, since the
                        freshness can change)
              storage   GB of files written x storage_gb_month (one month of keeping them)
              requests  requests / 1000 x per_1000_requests
              cpu       CPU hours x cpu_hour

            Then it lists what costs without need: pipelines that read the same data (one table
            pulled and captured, one file glob read twice), pipelines whose outputs are one or
            nested, and outputs nobody reads (a PostgreSQL table whose scan count has not moved
            since the last report, which keeps it in the state store; a local lake none of whose
            files was read since written, by access times). `--no-findings` skips them (they
            connect to the sinks).

            Examples:
              sluice cost -c pipelines.yaml
              sluice cost -c pipelines.yaml --since 7d --pipeline orders
              sluice cost -c pipelines.yaml --json | jq '.cost.total'
            """)

    @Option(name: [.short, .long], help: "The pipeline file: its state store and its `pricing:`.") var config: String
    @Option(name: .long, help: "From this long ago (30d, 12h) or this date/time (2026-12-01).") var since = "30d"
    @Option(name: .long, help: "Only this pipeline.") var pipeline: String?
    @Flag(name: .long, help: "One JSON object per pipeline and day (\"type\": \"usage\"), then per finding (\"type\": \"finding\").")
    var json = false
    @Flag(name: .long, help: "Only usage and cost: no redundant or unread ingestion findings.") var noFindings = false

    func run() async throws {
        let now = Date()
        let start = try DeadLetterFilterOptions.time(since, now: now, option: "--since")
        let (stateLocation, plans) = try await ConfigLoading.reportingErrors { try ConfigLoading.load([config]) }
        let store = try await ConfigLoading.reportingErrors { try await BuiltinComponents.openState(stateLocation) }
        let fromHour = Int64(start.timeIntervalSince1970 / 86_400) * 86_400
        let rows = try await store.usage(pipeline: pipeline, since: fromHour)
        let pricing = Dictionary(plans.map { ($0.name, $0.settings.pricing) }, uniquingKeysWith: { a, _ in a })
        let days = CostReport.days(rows, pricing: { pricing[$0] ?? PricingConfig() })
        let scope = plans.filter { pipeline == nil || $0.name == pipeline }
        var findings: [IngestionFinding] = []
        var notes: [String] = []
        if !noFindings {
            // Redundancy looks at every pipeline of the file: the other one may be outside `--pipeline`.
            findings = IngestionFindings.redundancy(plans).filter { f in pipeline.map { f.pipelines.contains($0) } ?? true }
            let unread = await IngestionFindings.unread(scope, store: store, now: now)
            findings += unread.findings
            notes = unread.notes
        }
        if json {
            for d in days { print(CostReport.json(d)) }
            for f in findings { print(CostReport.json(f)) }
            return
        }
        if days.isEmpty {
            print("no usage recorded since \(CostReport.day(fromHour)) (usage is recorded while `sluice run` or `sluice serve` runs)")
        } else {
            print(CostReport.table(days))
        }
        if !findings.isEmpty {
            print("\nFindings:")
            for f in findings { print("  - \(f.kind): \(f.message)") }
        }
        for n in notes { print("note: \(n)") }
    }
}

/// One pipeline's usage and cost in one day (UTC).
struct CostDay {
    var pipeline: String
    var day: Int64
    var usage: Usage
    var cost: Cost
}

enum CostReport {
    /// Hourly rows summed per pipeline and day, priced.
    static func days(_ rows: [UsageRow], pricing: (String) -> PricingConfig) -> [CostDay] {
        var out: [CostDay] = []
        for row in rows {
            let day = row.hour / 86_400 * 86_400
            let cost = row.cost(pricing(row.pipeline))
            if let last = out.last, last.pipeline == row.pipeline, last.day == day {
                out[out.count - 1].usage = last.usage + row.usage
                out[out.count - 1].cost = last.cost + cost
            } else {
                out.append(CostDay(pipeline: row.pipeline, day: day, usage: row.usage, cost: cost))
            }
        }
        return out
    }

    static func day(_ seconds: Int64) -> String {
        let f = DateFormatter()
        f.locale = Locale(identifier: "en_US_POSIX")
        f.timeZone = TimeZone(identifier: "UTC")
        f.dateFormat = "yyyy-MM-dd"
        return f.string(from: Date(timeIntervalSince1970: TimeInterval(seconds)))
    }

    static func json(_ d: CostDay) -> String {
        let u = d.usage
        let object: [String: Any] = [
            "type": "usage", "pipeline": d.pipeline, "day": day(d.day), "bytes_in": u.bytesIn, "bytes_out": u.bytesOut,
            "compression_ratio": u.compressionRatio ?? NSNull(), "records_in": u.recordsIn, "records_out": u.recordsOut,
            "cpu_seconds": u.cpuSeconds, "requests": u.requests, "storage_bytes": u.storageBytes,
            "cost": ["ingest": d.cost.ingest, "storage": d.cost.storage, "requests": d.cost.requests, "cpu": d.cost.cpu, "total": d.cost.total],
        ]
        let data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])) ?? Data()
        return String(decoding: data, as: UTF8.self)
    }

    static func json(_ f: IngestionFinding) -> String {
        let object: [String: Any] = ["type": "finding", "kind": f.kind, "pipelines": f.pipelines, "message": f.message]
        let data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])) ?? Data()
        return String(decoding: data, as: UTF8.self)
    }

    static func table(_ days: [CostDay]) -> String {
        let header = [
            "pipeline", "day", "GB in", "GB out", "ratio", "records", "CPU s", "requests", "GB stored", "$ ingest", "$ storage", "$ req", "$ CPU", "$ total",
        ]
        func gb(_ b: Int) -> String { String(format: "%.3f", Double(b) / 1e9) }
        func money(_ d: Double) -> String { d == 0 ? "0" : d < 0.01 ? String(format: "%.5f", d) : String(format: "%.2f", d) }
        func row(_ name: String, _ day: String, _ u: Usage, _ c: Cost) -> [String] {
            [
                name, day, gb(u.bytesIn), gb(u.bytesOut), u.compressionRatio.map { String(format: "%.1fx", $0) } ?? "-", String(u.recordsIn),
                String(format: "%.1f", u.cpuSeconds), String(u.requests), gb(u.storageBytes), money(c.ingest), money(c.storage),
                money(c.requests), money(c.cpu), money(c.total),
            ]
        }
        var lines = [header] + days.map { row($0.pipeline, day($0.day), $0.usage, $0.cost) }
        let total = days.reduce((Usage(), Cost())) { ($0.0 + $1.usage, $0.1 + $1.cost) }
        lines.append(row("total", "", total.0, total.1))
        let widths = header.indices.map { i in lines.map { $0[i].count }.max() ?? 0 }
        return lines.map { line in
            line.enumerated().map { i, cell in
                i < 2 ? cell.padding(toLength: widths[i], withPad: " ", startingAt: 0) : String(repeating: " ", count: widths[i] - cell.count) + cell
            }.joined(separator: "  ")
        }.joined(separator: "\n")
    }
}
