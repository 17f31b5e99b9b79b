import Foundation
import SluiceCore

/// The behaviour every ``AlertHistoryStore`` must have, checked the same way on each store.
public enum AlertHistoryConformance {
    public struct Failure: Error, CustomStringConvertible {
        public var description: String
    }

    static func check(_ condition: Bool, _ what: @autoclosure () -> String) throws {
        if !condition { throw Failure(description: what()) }
    }

    /// Runs the checks on `store` with pipeline names starting with `prefix` (unique per run
    /// when the store is shared).
    public static func run(_ store: any AlertHistoryStore, prefix: String) async throws {
        let p = "\(prefix)-a", q = "\(prefix)-b"
        let t0 = Date(timeIntervalSince1970: 1_800_000_000)
        let id = try await store.alertFired(pipeline: p, name: "SluiceErrorRateHigh", severity: "critical", summary: "5% \"quoted\"", value: 0.25, at: t0)
        // Firing again (a restarted process, another worker) returns the same alert.
        let again = try await store.alertFired(pipeline: p, name: "SluiceErrorRateHigh", severity: "critical", summary: "5%", value: 0.3, at: t0 + 5)
        try check(again == id, "a second firing of an alert already firing made a new one: \(id) then \(again)")
        let other = try await store.alertFired(pipeline: q, name: "SluiceErrorRateHigh", severity: "critical", summary: "x", value: 1, at: t0 + 1)
        try check(other != id, "two pipelines share one alert")
        var firing = try await store.alerts(pipeline: p, firingOnly: true, limit: 10)
        try check(firing.count == 1 && firing[0].summary == "5% \"quoted\"" && firing[0].value == 0.25 && firing[0].firedAt == t0, "firing: \(firing)")
        try await store.alertResolved(id: id, at: t0 + 60)
        try await store.alertResolved(id: id, at: t0 + 120)  // a second resolution changes nothing
        let resolved = try await store.alert(id: id)
        try check(resolved?.resolvedAt == t0 + 60 && resolved?.isFiring == false, "resolved: \(String(describing: resolved))")
        firing = try await store.alerts(pipeline: p, firingOnly: true, limit: 10)
        try check(firing.isEmpty, "still firing after its resolution: \(firing)")
        // It fires again later: a new alert, listed first.
        let second = try await store.alertFired(pipeline: p, name: "SluiceErrorRateHigh", severity: "critical", summary: "5%", value: 0.5, at: t0 + 300)
        try check(second != id, "a new firing reused the resolved alert")
        let all = try await store.alerts(pipeline: p, firingOnly: false, limit: 10)
        try check(all.map(\.id) == [second, id], "newest first: \(all.map(\.id))")
        // Sweeping removes what resolved before the cutoff, never what fires.
        let removed = try await store.sweepAlerts(before: t0 + 100)
        try check(removed >= 1, "nothing swept")
        let gone = try await store.alert(id: id), kept = try await store.alert(id: second), firingOther = try await store.alert(id: other)
        try check(gone == nil && kept != nil, "swept the wrong alerts")
        try check(firingOther != nil, "swept a firing alert")

        // Hourly volume adds up per pipeline and hour.
        let hour: Int64 = 1_800_000_000 / 3600 * 3600
        try await store.addHourlyVolume(pipeline: p, hour: hour, records: 100)
        try await store.addHourlyVolume(pipeline: p, hour: hour, records: 23)
        try await store.addHourlyVolume(pipeline: p, hour: hour - 86_400, records: 7)
        try await store.addHourlyVolume(pipeline: q, hour: hour, records: 1)
        let volume = try await store.hourlyVolume(pipeline: p, hours: [hour, hour - 86_400, hour - 3600])
        try check(volume == [hour: 123, hour - 86_400: 7], "volume: \(volume)")
        let none = try await store.hourlyVolume(pipeline: p, hours: [])
        try check(none.isEmpty, "no hours asked")
    }
}
