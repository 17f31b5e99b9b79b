/// The HELP text of every series Sluice exposes, in one place. swift-metrics has no help text,
/// so `/metrics` adds these lines to the exposition (``annotate(_:)``); Prometheus's linter
/// (`promtool check metrics`) asks for one per family.
public enum MetricHelp {
    public static let text: [String: String] = [
        // Every pipeline (label `pipeline`).
        "sluice_records_in_total": "Records read from the source, rejected ones included.",
        "sluice_records_out_total": "Records written to the sink.",
        "sluice_input_bytes_total": "Bytes read from the source (decompressed for files).",
        "sluice_output_bytes_total": "Bytes committed: published file sizes for file sinks, in-memory record sizes otherwise.",
        "sluice_output_files_total": "Files or objects published by file sinks.",
        "sluice_batches_total": "Batches read from the source.",
        "sluice_duplicates_total": "Records dropped by dedupe as repeats within the TTL.",
        "sluice_retries_total": "Retried sink writes, commits and source starts.",
        "sluice_commits_total": "Commits of output and checkpoint.",
        "sluice_commit_conflicts_total": "Commits refused because another worker committed the same records first.",
        "sluice_commit_duration_seconds": "Time from the start of a commit to its acknowledgement.",
        "sluice_buffer_batches": "Batches waiting in memory between source and sink.",
        "sluice_uncommitted_batches": "Batches written but not yet covered by a checkpoint.",
        "sluice_last_commit_timestamp_seconds": "Unix time of the last finished commit.",
        "sluice_dead_letter_queue_records": "Records in the pipeline's dead-letter queue.",
        "sluice_dead_letter_queue_oldest_age_seconds": "Age of the oldest record in the dead-letter queue.",
        "sluice_dead_letter_queue_reason_records": "Records in the dead-letter queue by stage and reason.",
        "sluice_dead_letter_queue_reason_oldest_age_seconds": "Age of the oldest record in the dead-letter queue, by stage and reason.",
        "sluice_cost_dollars_total": "What the pipeline's usage cost, in dollars, at the file's pricing (cost accounting; `sluice cost` per day).",
        "sluice_replayed_total": "Dead letters replayed (sluice dlq replay), by result: ok (delivered) or failed (kept).",
        "sluice_replay_last_run_timestamp_seconds": "Unix time the last sluice dlq replay of the pipeline ended (its --metrics-file).",
        "sluice_dead_letters_total": "Records sent to the dead-letter queue, by stage and kind.",
        "sluice_errors_total": "Errors by stage and kind; retryable says whether they were retried.",
        "sluice_runs_total": "Finished runs by result (succeeded, failed).",
        "sluice_end_to_end_latency_seconds": "From a batch's origin (event_time, else what the source knows, else its read) to its commit.",
        "sluice_processing_seconds_total": "Time spent handling records (dedupe, sink writes, commits); per record: divide by records in.",
        "sluice_last_pull_timestamp_seconds": "Unix time a scheduled source last started a pull.",
        "sluice_lake_partitions": "Hive partitions in a local partitioned lake: those found at start and those written since.",
        "sluice_output_partitions_total": "Hive partition directories written to, counted once per commit.",
        "sluice_missing_records_total": "Records the reconciliation found missing, by check (ledger, sink_rows, sequence_gap).",
        "sluice_alerts_firing": "Alerts firing now, by alert and severity.",
        "sluice_alert_notifications_total": "Alert notifications by receiver and result (delivered, retried, dropped).",
        // Schemas.
        "sluice_schema_drift_total": "Changes of the records' shape detected.",
        "sluice_schema_rejected_rows_total": "Rows refused by the schema policy.",
        "sluice_schema_discarded_values_total": "Values dropped by the discard_value schema policy.",
        // Change data capture.
        "sluice_cdc_retained_wal_bytes": "WAL the replication slot keeps on the server.",
        "sluice_cdc_lag_seconds": "From the commit of the last transaction read to now; 0 when caught up.",
        // JetStream.
        "sluice_queue_published_total": "Messages published to JetStream.",
        "sluice_queue_publish_duplicates_total": "Publishes JetStream recognised as duplicates (Nats-Msg-Id).",
        "sluice_queue_publish_latency_seconds": "Time from publish to the server's acknowledgement.",
        "sluice_queue_consumer_pending": "Messages of the stream not yet delivered to the consumer.",
        "sluice_queue_redeliveries_total": "Messages delivered again after an ack wait or a worker's end.",
        // The push endpoint.
        "sluice_http_requests_total": "Push requests by stream and status code.",
        "sluice_http_records_total": "Records accepted by the push endpoint.",
        "sluice_http_rejected_records_total": "Records refused by the push endpoint, by reason.",
        "sluice_http_auth_failures_total": "Push requests refused for authentication, by reason.",
        "sluice_http_rate_limited_total": "Push requests refused by a rate limit, by scope.",
        "sluice_http_backpressure_total": "Push requests refused because the stream's queue was full.",
        "sluice_http_request_duration_seconds": "Time to answer a push request.",
        "sluice_push_queue_records": "Records accepted by the push endpoint and not yet committed.",
    ]

    /// The exposition with a `# HELP` line before each `# TYPE` line that has none.
    public static func annotate(_ exposition: [UInt8]) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(exposition.count + 4096)
        var previousWasHelp = false
        for (index, line) in exposition.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false).enumerated() {
            if index > 0 { out.append(UInt8(ascii: "\n")) }
            if line.starts(with: Array("# TYPE ".utf8)), !previousWasHelp {
                let name = String(decoding: line.dropFirst(7).prefix { $0 != UInt8(ascii: " ") }, as: UTF8.self)
                out += Array("# HELP \(name) \(text[name] ?? "A Sluice metric (see docs/guides/operations.md).")\n".utf8)
            }
            previousWasHelp = line.starts(with: Array("# HELP ".utf8))
            out += line
        }
        return out
    }
}
