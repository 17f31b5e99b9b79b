import ArgumentParser
import Foundation
import SluiceCore

struct DoctorCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "doctor",
        abstract: "Check a deployment and say what is wrong and how to fix it.",
        discussion: """
            Checks, without moving data or changing anything:
              config         the pipeline files are valid
              state          the state store answers, is intact (SQLite quick_check), has a schema
                             version this binary knows, and its disk has room
              each pipeline  its source and sink are reachable with the privileges they need
                             (PostgreSQL: INSERT/UPDATE/DELETE as the mode writes, SELECT for pulls
                             and snapshots), CDC slots (present, wal_status, WAL held back),
                             JetStream streams and consumers, room on output disks, the last commit
                             (stale after --stale-after) and the oldest dead letter
              clocks         each PostgreSQL server's clock against this machine's

            Every problem is printed with the fix. Exit status 1 when anything is an error (or a
            warning, with --strict), else 0. --json prints the findings for scripts and monitors.

            Examples:
              sluice doctor -c pipelines.yaml
              sluice doctor -c pipelines.yaml --json | jq '.findings[] | select(.status != "ok")'
              sluice doctor -c pipelines.yaml --stale-after 2h --min-free 10GB --strict
            """
    )

    @Option(name: [.short, .long], help: "A pipeline file (repeat for several). Without one, only the state store is checked.")
    var config: [String] = []

    @Option(name: .long, help: "The state store to check when no file is given (default: .sluice/state.db).")
    var state: String?

    @Flag(name: .long, help: "Print the findings as JSON.")
    var json = false

    @Flag(name: .long, help: "Exit 1 on warnings too.")
    var strict = false

    @Option(name: .long, help: "Warn about a pipeline that has not committed for this long.")
    var staleAfter: DurationArgument = DurationArgument(seconds: 86_400, text: "24h")

    @Option(name: .long, help: "Warn about dead letters older than this.")
    var deadLetterAge: DurationArgument = DurationArgument(seconds: 86_400, text: "24h")

    @Option(name: .long, help: "Fail when a disk for outputs or state has less free space than this.")
    var minFree: ByteSizeArgument = ByteSizeArgument(bytes: 1 << 30, text: "1GB")

    @Option(name: .long, help: "Warn when a CDC replication slot holds back more WAL than this.")
    var slotLag: ByteSizeArgument = ByteSizeArgument(bytes: 1 << 30, text: "1GB")

    @Option(name: .long, help: "Warn when a server's clock differs from this machine's by more than this.")
    var clockSkew: DurationArgument = DurationArgument(seconds: 5, text: "5s")

    func run() async throws {
        var limits = DiagnosisLimits()
        limits.staleAfter = staleAfter.seconds
        limits.deadLetterAge = deadLetterAge.seconds
        limits.minFreeBytes = Int64(minFree.bytes)
        limits.slotLagBytes = Int64(slotLag.bytes)
        limits.clockSkew = clockSkew.seconds
        let findings = await Doctor(files: config, limits: limits, defaultState: state ?? ".sluice/state.db").findings()
        let errors = findings.filter { $0.status == .error }.count
        let warnings = findings.filter { $0.status == .warning }.count
        let healthy = errors == 0 && (!strict || warnings == 0)
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
            let report = DoctorReport(ok: healthy, errors: errors, warnings: warnings, findings: findings)
            print(String(decoding: try encoder.encode(report), as: UTF8.self))
        } else {
            print(Self.render(findings))
            let verdict = healthy ? "healthy" : "not healthy"
            print("\(errors) error(s), \(warnings) warning(s): \(verdict)")
        }
        if !healthy { throw ExitCode(1) }
    }

    /// Findings grouped by subject, problems with their fix on the next line.
    static func render(_ findings: [Diagnosis]) -> String {
        var lines: [String] = []
        var subject: String?
        let width = (findings.map(\.check.count).max() ?? 10) + 2
        for f in findings {
            if f.subject != subject {
                subject = f.subject
                lines.append(f.subject == "config" || f.subject == "state" ? f.subject : "pipeline \(f.subject)")
            }
            let status = f.status == .ok ? "ok" : f.status == .warning ? "WARN" : "ERROR"
            lines.append(
                "  " + status.padding(toLength: 7, withPad: " ", startingAt: 0) + f.check.padding(toLength: width, withPad: " ", startingAt: 0) + f.message)
            if let fix = f.fix, f.status != .ok {
                lines.append(String(repeating: " ", count: 9 + width) + "fix: " + fix)
            }
        }
        return lines.joined(separator: "\n")
    }
}

/// What `sluice doctor --json` prints.
struct DoctorReport: Encodable {
    var ok: Bool
    var errors: Int
    var warnings: Int
    var findings: [Diagnosis]
}

/// A duration option (`30s`, `2h`, `7d`).
struct DurationArgument: ExpressibleByArgument, CustomStringConvertible {
    var seconds: Double
    var text: String

    init(seconds: Double, text: String) {
        self.seconds = seconds
        self.text = text
    }

    init?(argument: String) {
        guard let d = ConfigDuration.parse(argument) else { return nil }
        seconds = ConfigDuration(d).seconds
        text = argument
    }

    var description: String { text }
    var defaultValueDescription: String { text }
}

/// A size option (`512MB`, `10GB`).
struct ByteSizeArgument: ExpressibleByArgument, CustomStringConvertible {
    var bytes: Int
    var text: String

    init(bytes: Int, text: String) {
        self.bytes = bytes
        self.text = text
    }

    init?(argument: String) {
        guard let b = ConfigByteSize.parse(argument) else { return nil }
        bytes = b
        text = argument
    }

    var description: String { text }
    var defaultValueDescription: String { text }
}
