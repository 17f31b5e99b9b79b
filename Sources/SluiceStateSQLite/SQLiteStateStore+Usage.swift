import Foundation
import GRDB
import SluiceCore

extension SQLiteStateStore {
    public func addUsage(pipeline: String, hour: Int64, usage u: Usage, ingestDollars: Double) async throws {
        try await write { db in
            try db.execute(
                sql: """
                    INSERT INTO usage_hourly(pipeline, hour, bytes_in, bytes_out, records_in, records_out, cpu_seconds, requests,
                        storage_bytes, ingest_dollars) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                    ON CONFLICT (pipeline, hour) DO UPDATE SET bytes_in = bytes_in + excluded.bytes_in,
                        bytes_out = bytes_out + excluded.bytes_out, records_in = records_in + excluded.records_in,
                        records_out = records_out + excluded.records_out, cpu_seconds = cpu_seconds + excluded.cpu_seconds,
                        requests = requests + excluded.requests, storage_bytes = storage_bytes + excluded.storage_bytes,
                        ingest_dollars = ingest_dollars + excluded.ingest_dollars
                    """,
                arguments: [
                    pipeline, hour, u.bytesIn, u.bytesOut, u.recordsIn, u.recordsOut, u.cpuSeconds, u.requests, u.storageBytes, ingestDollars,
                ])
        }
    }

    public func usage(pipeline: String?, since: Int64) async throws -> [UsageRow] {
        try await pool.read { db in
            try Row.fetchAll(
                db,
                sql: """
                    SELECT pipeline, hour, bytes_in, bytes_out, records_in, records_out, cpu_seconds, requests, storage_bytes, ingest_dollars
                    FROM usage_hourly WHERE hour >= ? AND (? IS NULL OR pipeline = ?) ORDER BY pipeline, hour
                    """, arguments: [since, pipeline, pipeline]
            ).map { r in
                UsageRow(
                    pipeline: r[0], hour: r[1],
                    usage: Usage(bytesIn: r[2], bytesOut: r[3], recordsIn: r[4], recordsOut: r[5], cpuSeconds: r[6], requests: r[7], storageBytes: r[8]),
                    ingestDollars: r[9])
            }
        }
    }

    public func sweepUsage(before: Int64) async throws -> Int {
        try await write { db in
            try db.execute(sql: "DELETE FROM usage_hourly WHERE hour < ?", arguments: [before])
            return db.changesCount
        }
    }
}
