import Foundation
import SluiceCore
import Synchronization

/// Alerts and hourly volume in memory.
final class MemoryAlertHistory: Sendable {
    struct State {
        var alerts: [AlertRecord] = []
        var nextID: Int64 = 1
        var volume: [String: [Int64: Int]] = [:]
    }
    let state = Mutex(State())
}

extension MemoryStateStore {
    public func alertFired(pipeline: String, name: String, severity: String, summary: String, value: Double, at: Date) async throws -> Int64 {
        alertHistory.state.withLock { s in
            if let open = s.alerts.first(where: { $0.pipeline == pipeline && $0.name == name && $0.isFiring }) { return open.id }
            let id = s.nextID
            s.nextID += 1
            s.alerts.append(
                AlertRecord(id: id, pipeline: pipeline, name: name, severity: severity, summary: summary, value: value, firedAt: at, resolvedAt: nil))
            return id
        }
    }

    public func alertResolved(id: Int64, at: Date) async throws {
        alertHistory.state.withLock { s in
            if let i = s.alerts.firstIndex(where: { $0.id == id && $0.isFiring }) { s.alerts[i].resolvedAt = at }
        }
    }

    public func alerts(pipeline: String?, firingOnly: Bool, limit: Int) async throws -> [AlertRecord] {
        alertHistory.state.withLock { s in
            Array(s.alerts.filter { (pipeline == nil || $0.pipeline == pipeline) && (!firingOnly || $0.isFiring) }.reversed().prefix(limit))
        }
    }

    public func alert(id: Int64) async throws -> AlertRecord? {
        alertHistory.state.withLock { s in s.alerts.first { $0.id == id } }
    }

    public func sweepAlerts(before: Date) async throws -> Int {
        alertHistory.state.withLock { s in
            let count = s.alerts.count
            s.alerts.removeAll { ($0.resolvedAt.map { $0 < before }) ?? false }
            return count - s.alerts.count
        }
    }

    public func addHourlyVolume(pipeline: String, hour: Int64, records: Int) async throws {
        alertHistory.state.withLock { s in s.volume[pipeline, default: [:]][hour, default: 0] += records }
    }

    public func hourlyVolume(pipeline: String, hours: [Int64]) async throws -> [Int64: Int] {
        alertHistory.state.withLock { s in (s.volume[pipeline] ?? [:]).filter { hours.contains($0.key) } }
    }
}
