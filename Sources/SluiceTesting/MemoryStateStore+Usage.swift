import Foundation
import SluiceCore
import Synchronization

/// Usage per pipeline and hour, in memory.
final class MemoryUsage: Sendable {
    let rows = Mutex<[String: [Int64: (Usage, Double)]]>([:])
}

extension MemoryStateStore {
    public func addUsage(pipeline: String, hour: Int64, usage: Usage, ingestDollars: Double) async throws {
        usageRecord.rows.withLock { rows in
            let old = rows[pipeline]?[hour] ?? (Usage(), 0)
            rows[pipeline, default: [:]][hour] = (old.0 + usage, old.1 + ingestDollars)
        }
    }

    public func usage(pipeline: String?, since: Int64) async throws -> [UsageRow] {
        usageRecord.rows.withLock { rows in
            rows.filter { pipeline == nil || $0.key == pipeline }.sorted { $0.key < $1.key }.flatMap { name, hours in
                hours.filter { $0.key >= since }.sorted { $0.key < $1.key }.map {
                    UsageRow(pipeline: name, hour: $0.key, usage: $0.value.0, ingestDollars: $0.value.1)
                }
            }
        }
    }

    public func sweepUsage(before: Int64) async throws -> Int {
        usageRecord.rows.withLock { rows in
            var removed = 0
            for name in rows.keys {
                let old = rows[name]!.count
                rows[name] = rows[name]!.filter { $0.key >= before }
                removed += old - rows[name]!.count
            }
            return removed
        }
    }
}
