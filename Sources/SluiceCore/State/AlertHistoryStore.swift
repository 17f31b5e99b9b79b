import Foundation

/// One alert of one pipeline: when it started firing, and when it resolved (nil while firing).
public struct AlertRecord: Sendable, Hashable {
    public var id: Int64
    public var pipeline: String
    /// The rule's name, e.g. `SluiceErrorRateHigh`.
    public var name: String
    public var severity: String
    public var summary: String
    /// The measured value when it fired (a rate, seconds or a count, as the rule says).
    public var value: Double
    public var firedAt: Date
    public var resolvedAt: Date?

    public init(
        id: Int64, pipeline: String, name: String, severity: String, summary: String, value: Double, firedAt: Date, resolvedAt: Date?
    ) {
        self.id = id
        self.pipeline = pipeline
        self.name = name
        self.severity = severity
        self.summary = summary
        self.value = value
        self.firedAt = firedAt
        self.resolvedAt = resolvedAt
    }

    public var isFiring: Bool { resolvedAt == nil }
}

/// The history of alerts, and the hourly input volume the volume-drop rule compares against.
public protocol AlertHistoryStore: Sendable {
    /// Records that an alert started firing; returns its id. An alert of the same pipeline and
    /// name already firing is returned instead (a restarted process picks up where it was).
    func alertFired(pipeline: String, name: String, severity: String, summary: String, value: Double, at: Date) async throws -> Int64
    /// Records that alert `id` resolved.
    func alertResolved(id: Int64, at: Date) async throws
    /// Alerts newest first: those of `pipeline` (all when nil), firing ones only when asked.
    func alerts(pipeline: String?, firingOnly: Bool, limit: Int) async throws -> [AlertRecord]
    func alert(id: Int64) async throws -> AlertRecord?
    /// Deletes alerts resolved before `before`; returns how many.
    func sweepAlerts(before: Date) async throws -> Int
    /// Adds to the records read by `pipeline` in the hour starting at `hour` (Unix seconds, a
    /// multiple of 3600).
    func addHourlyVolume(pipeline: String, hour: Int64, records: Int) async throws
    /// Records read by `pipeline` in each of `hours` that has any.
    func hourlyVolume(pipeline: String, hours: [Int64]) async throws -> [Int64: Int]
}
