import Foundation
import SluiceCore

extension PostgresStateStore {
    public func addUsage(pipeline: String, hour: Int64, usage u: Usage, ingestDollars: Double) async throws {
        try await pool.withSession { s in
            try s.query(
                """
                INSERT INTO sluice.usage_hourly AS h (pipeline, hour, bytes_in, bytes_out, records_in, records_out, cpu_seconds, requests,
                    storage_bytes, ingest_dollars)
                VALUES ($1, $2::bigint, $3::bigint, $4::bigint, $5::bigint, $6::bigint, $7::float8, $8::bigint, $9::bigint, $10::float8)
                ON CONFLICT (pipeline, hour) DO UPDATE SET bytes_in = h.bytes_in + excluded.bytes_in,
                    bytes_out = h.bytes_out + excluded.bytes_out, records_in = h.records_in + excluded.records_in,
                    records_out = h.records_out + excluded.records_out, cpu_seconds = h.cpu_seconds + excluded.cpu_seconds,
                    requests = h.requests + excluded.requests, storage_bytes = h.storage_bytes + excluded.storage_bytes,
                    ingest_dollars = h.ingest_dollars + excluded.ingest_dollars
                """,
                [
                    pipeline, String(hour), String(u.bytesIn), String(u.bytesOut), String(u.recordsIn), String(u.recordsOut),
                    String(u.cpuSeconds), String(u.requests), String(u.storageBytes), String(ingestDollars),
                ])
        }
    }

    public func usage(pipeline: String?, since: Int64) async throws -> [UsageRow] {
        try await pool.withSession { s in
            let r = try s.query(
                """
                SELECT pipeline, hour, bytes_in, bytes_out, records_in, records_out, cpu_seconds, requests, storage_bytes, ingest_dollars
                FROM sluice.usage_hourly WHERE hour >= $1::bigint AND ($2::text IS NULL OR pipeline = $2) ORDER BY pipeline, hour
                """, [String(since), pipeline])
            func int(_ i: Int, _ c: Int) -> Int { Int(r.string(i, c) ?? "0") ?? 0 }
            return (0..<r.rows).map { i in
                UsageRow(
                    pipeline: r.string(i, 0)!, hour: Int64(int(i, 1)),
                    usage: Usage(
                        bytesIn: int(i, 2), bytesOut: int(i, 3), recordsIn: int(i, 4), recordsOut: int(i, 5),
                        cpuSeconds: Double(r.string(i, 6) ?? "0") ?? 0, requests: int(i, 7), storageBytes: int(i, 8)),
                    ingestDollars: Double(r.string(i, 9) ?? "0") ?? 0)
            }
        }
    }

    public func sweepUsage(before: Int64) async throws -> Int {
        try await pool.withSession { s in
            let r = try s.query(
                "WITH gone AS (DELETE FROM sluice.usage_hourly WHERE hour < $1::bigint RETURNING 1) SELECT count(*) FROM gone", [String(before)])
            return Int(r.string(0, 0) ?? "0") ?? 0
        }
    }
}
