import Foundation
import Metrics

/// The metrics of one pipeline, created once and updated per batch (never per record).
///
/// Names follow Prometheus conventions; every series carries a `pipeline` label, and the
/// series of errors and dead letters also `stage` (where: `source`, `decode`, `schema`,
/// `dedupe`, `sink`, `state`) and `kind` (the error code: `connection`, `schema_violation`, …).
public struct PipelineMetrics: Sendable {
    public let pipeline: String
    public let recordsIn: Counter
    public let recordsOut: Counter
    public let bytesIn: Counter
    public let batches: Counter
    public let duplicates: Counter
    public let retries: Counter
    public let commits: Counter
    /// Commits refused because another worker committed some of their records first.
    public let conflicts: Counter
    public let commitLatency: Metrics.Timer
    /// Batches waiting in the pipeline's in-memory buffer between source and sink (not a
    /// queue's backlog: see `sluice_queue_consumer_pending` for JetStream).
    public let bufferDepth: Gauge
    public let checkpointLag: Gauge
    /// Bytes committed to the sink: the size of the files published by file sinks, the
    /// in-memory size of the records for the others.
    public let outputBytes: Counter
    /// Files (or objects) published.
    public let filesWritten: Counter
    /// When the last commit finished (Unix seconds), for "time since the last commit".
    public let lastCommitTime: Gauge
    /// Records in the dead-letter queue of the pipeline, and the age of the oldest.
    public let deadLetterQueueSize: Gauge
    public let deadLetterOldestAge: Gauge
    /// From a batch's origin (its oldest record's `event_time`, else what the source knows,
    /// else when it was read) to the commit that made it durable; one observation per batch.
    public let endToEndLatency: Metrics.Timer
    /// Time the pipeline spent handling records (dedupe, writing, committing), in seconds:
    /// `rate(sluice_processing_seconds_total) / rate(sluice_records_in_total)` is the processing
    /// time per record.
    public let processingSeconds: FloatingPointCounter
    /// Hive partitions (`key=value` directories) that the files of each commit went into.
    public let partitionsWritten: Counter
    /// Hive partitions in a local partitioned lake (those found at start, and those written since).
    public var lakePartitions: Gauge { Gauge(label: "sluice_lake_partitions", dimensions: [("pipeline", pipeline)]) }

    public init(pipeline: String) {
        self.pipeline = pipeline
        let d = [("pipeline", pipeline)]
        recordsIn = Counter(label: "sluice_records_in_total", dimensions: d)
        recordsOut = Counter(label: "sluice_records_out_total", dimensions: d)
        bytesIn = Counter(label: "sluice_input_bytes_total", dimensions: d)
        batches = Counter(label: "sluice_batches_total", dimensions: d)
        duplicates = Counter(label: "sluice_duplicates_total", dimensions: d)
        retries = Counter(label: "sluice_retries_total", dimensions: d)
        commits = Counter(label: "sluice_commits_total", dimensions: d)
        conflicts = Counter(label: "sluice_commit_conflicts_total", dimensions: d)
        commitLatency = Metrics.Timer(label: "sluice_commit_duration_seconds", dimensions: d, preferredDisplayUnit: .seconds)
        bufferDepth = Gauge(label: "sluice_buffer_batches", dimensions: d)
        checkpointLag = Gauge(label: "sluice_uncommitted_batches", dimensions: d)
        outputBytes = Counter(label: "sluice_output_bytes_total", dimensions: d)
        filesWritten = Counter(label: "sluice_output_files_total", dimensions: d)
        lastCommitTime = Gauge(label: "sluice_last_commit_timestamp_seconds", dimensions: d)
        deadLetterQueueSize = Gauge(label: "sluice_dead_letter_queue_records", dimensions: d)
        deadLetterOldestAge = Gauge(label: "sluice_dead_letter_queue_oldest_age_seconds", dimensions: d)
        endToEndLatency = Metrics.Timer(label: Self.endToEndLatencyName, dimensions: d, preferredDisplayUnit: .seconds)
        processingSeconds = FloatingPointCounter(label: "sluice_processing_seconds_total", dimensions: d)
        partitionsWritten = Counter(label: "sluice_output_partitions_total", dimensions: d)
    }

    /// When a scheduled source last started a pull (Unix seconds): its lag is `time() -` it.
    /// Created at the first pull, so that only scheduled pipelines have the series.
    public func pulled(at date: Date) {
        Gauge(label: "sluice_last_pull_timestamp_seconds", dimensions: [("pipeline", pipeline)]).record(date.timeIntervalSince1970)
    }

    /// Counts records the reconciliation found missing; `check` says which: `ledger` (read but
    /// neither written, dead-lettered nor dropped as a duplicate), `sink_rows` (the sink's files
    /// hold fewer rows than were written to it) or `sequence_gap` (a declared sequence skipped).
    public func missing(_ count: Int, check: String) {
        Counter(label: "sluice_missing_records_total", dimensions: [("pipeline", pipeline), ("check", check)]).increment(by: count)
    }

    /// The index of the latency bucket `seconds` falls in (the last index is +Inf).
    public static func latencyBucket(seconds: Double) -> Int {
        var index = 0
        for bound in endToEndLatencyBuckets {
            if seconds <= Double(bound.components.seconds) + Double(bound.components.attoseconds) / 1e18 { return index }
            index += 1
        }
        return index
    }

    public static let endToEndLatencyName = "sluice_end_to_end_latency_seconds"
    /// Histogram buckets of the end-to-end latency: from 10 ms to a day (batch pipelines
    /// measure in hours; the default SLA alert is at 15 minutes).
    public static let endToEndLatencyBuckets: [Duration] = [
        .milliseconds(10), .milliseconds(50), .milliseconds(100), .milliseconds(500), .seconds(1), .seconds(5), .seconds(10),
        .seconds(30), .seconds(60), .seconds(300), .seconds(900), .seconds(1800), .seconds(3600), .seconds(6 * 3600), .seconds(86_400),
    ]

    /// Counts a finished run: `succeeded` or `failed`.
    public func run(result: String) {
        Counter(label: "sluice_runs_total", dimensions: [("pipeline", pipeline), ("result", result)]).increment()
    }

    /// Counts records sent to the dead-letter queue at `stage` for an error of `kind`.
    public func deadLettered(_ count: Int, stage: String, kind: String) {
        Counter(label: "sluice_dead_letters_total", dimensions: [("pipeline", pipeline), ("stage", stage), ("kind", kind)])
            .increment(by: count)
    }

    /// Counts one error at `stage` of `kind`, and whether it is worth retrying (`retryable`
    /// "true": it was retried; "false": it stopped the pipeline or dead-lettered a record).
    public func error(stage: String, kind: String, retryable: Bool) {
        Counter(
            label: "sluice_errors_total",
            dimensions: [("pipeline", pipeline), ("stage", stage), ("kind", kind), ("retryable", retryable ? "true" : "false")]
        ).increment()
    }
}
