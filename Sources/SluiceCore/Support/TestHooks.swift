import Foundation
import Logging

/// Where a test may stop a running pipeline, so that the fault it means to inject (a killed
/// backend, a dropped connection) lands at an exact step instead of at whatever moment a loaded
/// machine happens to reach. Production code runs with ``none``; only the `sluice` executable
/// builds hooks, from its environment (``init(environment:)``); the library never reads it.
public struct TestHooks: Sendable {
    /// A pause between the commit phases, so that random kills also land between them.
    public var commitPhaseDelay: Duration?
    /// Named points to hold at, each with the file whose existence releases it.
    public var holds: [String: String]
    /// Drops the record with this ordinal (counted from 0 over the records a run accepts)
    /// inside the runtime: a loss the missing-data reconciliation must catch.
    public var dropRecord: Int?
    /// Seconds added to the clock cost accounting files usage under (a test of the day rollover).
    public var usageClockShift: TimeInterval = 0

    public init(commitPhaseDelay: Duration? = nil, holds: [String: String] = [:], dropRecord: Int? = nil) {
        self.commitPhaseDelay = commitPhaseDelay
        self.holds = holds
        self.dropRecord = dropRecord
    }

    /// No hooks: what every production run uses.
    public static let none = TestHooks()

    /// `SLUICE_TEST_COMMIT_DELAY_MS=150`, `SLUICE_TEST_HOLD=point=/path/release[,point=/path]`
    /// `SLUICE_TEST_DROP_RECORD=N` and `SLUICE_TEST_USAGE_CLOCK_SHIFT_S=-86400`.
    public init(environment: [String: String]) {
        dropRecord = environment["SLUICE_TEST_DROP_RECORD"].flatMap(Int.init)
        usageClockShift = environment["SLUICE_TEST_USAGE_CLOCK_SHIFT_S"].flatMap(TimeInterval.init) ?? 0
        commitPhaseDelay = environment["SLUICE_TEST_COMMIT_DELAY_MS"].flatMap(Int.init).map { .milliseconds($0) }
        var holds: [String: String] = [:]
        for entry in (environment["SLUICE_TEST_HOLD"] ?? "").split(separator: ",") {
            let parts = entry.split(separator: "=", maxSplits: 1)
            if parts.count == 2 { holds[String(parts[0])] = String(parts[1]) }
        }
        self.holds = holds
    }

    /// Holds at `point` until its release file exists, when a test asked for that point. On
    /// arrival it creates `<release>.reached`, so the test knows the process is there. Once the
    /// release file exists, later arrivals pass straight through.
    public func hold(at point: String, logger: Logger) async throws {
        guard let release = holds[point], !FileManager.default.fileExists(atPath: release) else { return }
        logger.info("test hook: holding", metadata: ["point": "\(point)"])
        FileManager.default.createFile(atPath: release + ".reached", contents: nil)
        while !FileManager.default.fileExists(atPath: release) {
            try await Task.sleep(for: .milliseconds(20))
        }
        logger.info("test hook: released", metadata: ["point": "\(point)"])
    }
}
