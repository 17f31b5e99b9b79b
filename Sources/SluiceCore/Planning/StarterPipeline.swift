import Foundation

/// The starter pipeline file `sluice plan` writes: the recommended source and a Parquet lake,
/// with placeholders (URLs from environment variables with local defaults) that
/// `sluice validate` accepts as they are.
enum StarterPipeline {
    static func yaml(_ q: PlanQuestions, pattern: IngestionPlan.Pattern, interval: Double) -> String {
        let every = IngestionPlanner.durationText(interval)
        // File sinks commit when a file closes: close them well inside the freshness.
        let fileAge = IngestionPlanner.durationText(min(max(interval, 10), 3600))
        func sink(_ name: String, partition: String? = nil) -> String {
            "parquet: { path: lake/\(name), compression: zstd, max_file_age: \(fileAge)\(partition.map { ", partition_by: \"\($0)\"" } ?? "") }"
        }
        var top = ""
        var pipeline: String
        var name: String
        switch (q.source, pattern) {
        case (.postgres, .cdc):
            name = "orders_changes"
            pipeline = """
                    source:
                      postgres_cdc:
                        url: "${PG_URL:-postgres://sluice@127.0.0.1:5432/app}"
                        slot: sluice_orders          # a logical replication slot, created when missing
                        publication: sluice_orders   # created for these tables when missing
                        tables: [public.orders]
                    sink:
                      \(sink(name, partition: "table"))
                """
        case (.postgres, _):
            name = "orders"
            pipeline = """
                    source:
                      postgres:
                        url: "${PG_URL:-postgres://sluice@127.0.0.1:5432/app}"
                        table: public.orders
                        mode: incremental
                        cursor: [updated_at]         # NOT NULL, only grows
                        key: [id]
                        schedule: "every \(every)"
                    sink:
                      \(sink(name, partition: "day(updated_at)"))
                """
        case (.sqlite, .cdc):
            name = "order_changes"
            pipeline = """
                    source:
                      sqlite:
                        path: app.db
                        table: order_changes         # a change table filled by triggers on orders
                        mode: changelog
                        change_id: change_id
                        processed_column: processed
                        poll: { min: 1s, max: \(every) }
                    sink:
                      \(sink(name))
                """
        case (.sqlite, _):
            name = "orders"
            pipeline = """
                    source:
                      sqlite:
                        path: app.db
                        table: orders
                        mode: incremental
                        cursor: [updated_at]
                        schedule: "every \(every)"
                    sink:
                      \(sink(name))
                """
        case (.files, _), (.s3, _):
            name = "events"
            let path = q.source == .s3 ? "s3://my-bucket/incoming/*.ndjson" : "incoming/*.ndjson"
            if q.source == .s3 { top = "storage: { region: us-east-1 }         # credentials from AWS_* or ~/.aws/credentials\n" }
            let watch = pattern == .batch ? "" : ", watch: true, poll_interval: \(IngestionPlanner.durationText(min(max(interval / 2, 1), 60)))"
            pipeline = """
                    source:
                      file: { path: "\(path)"\(watch) }
                    sink:
                      \(sink(name))
                """
        case (.httpAPI, _):
            name = "items"
            pipeline = """
                    source:
                      http_api:
                        url: "${API_URL:-https://api.example.com}/v1/items?per_page=100"
                        pagination: { link_header: next }
                        incremental: { field: updated_at, param: updated_since, key: [id], lookback: 5m }
                        schedule: "every \(every)"
                    sink:
                      \(sink(name))
                """
        case (.push, _):
            name = "events"
            top = "serve: { host: 127.0.0.1, port: 8080 }   # POST /v1/streams/events/records\n"
            pipeline = """
                    source:
                      http: { stream: events }
                    sink:
                      \(sink(name))
                """
            if q.reliability == .exactlyOnce { pipeline += "\n    dedupe: { key: [event_id], ttl: 1d }   # producers' retries carry the same event_id" }
        case (.queue, _):
            name = "events"
            pipeline = """
                    source:
                      jetstream:
                        url: "${NATS_URL:-nats://127.0.0.1:4222}"
                        stream: EVENTS
                        subject: events.in
                        consumer: lake-writers
                    sink:
                      \(sink(name))
                """
        }
        let answers =
            "volume \(String(format: "%.3g", q.volume / 1e9)) GB/day, freshness \(IngestionPlanner.describe(q.freshness)), source \(q.source.rawValue), "
            + "changes \(q.changes.sorted().map(\.rawValue).joined(separator: ",")), \(q.reliability.rawValue)"
        return """
            # Generated by `sluice plan` (\(answers)).
            # Check it with `sluice validate FILE`, then `\(q.source == .push ? "sluice serve FILE" : "sluice run FILE")`.
            \(top)alerts: { latency: { above: \(IngestionPlanner.durationText(max(q.freshness, 60))) } }   # the freshness you asked for is the SLA
            pipelines:
              \(name):

            """ + pipeline + "\n"
    }
}
