import Metrics

/// The metrics of one pipeline, created once and updated per batch (never per record).
///
/// Names follow Prometheus conventions; every series carries a `pipeline` label.
public struct PipelineMetrics: Sendable {
    public let recordsIn: Counter
    public let recordsOut: Counter
    public let bytesIn: Counter
    public let batches: Counter
    public let duplicates: Counter
    public let deadLetters: Counter
    public let retries: Counter
    public let commits: Counter
    /// Commits refused because another worker committed some of their records first.
    public let conflicts: Counter
    public let commitLatency: Metrics.Timer
    public let queueDepth: Gauge
    public let checkpointLag: Gauge

    public init(pipeline: String) {
        let d = [("pipeline", pipeline)]
        recordsIn = Counter(label: "sluice_records_in_total", dimensions: d)
        recordsOut = Counter(label: "sluice_records_out_total", dimensions: d)
        bytesIn = Counter(label: "sluice_input_bytes_total", dimensions: d)
        batches = Counter(label: "sluice_batches_total", dimensions: d)
        duplicates = Counter(label: "sluice_duplicates_total", dimensions: d)
        deadLetters = Counter(label: "sluice_dead_letters_total", dimensions: d)
        retries = Counter(label: "sluice_retries_total", dimensions: d)
        commits = Counter(label: "sluice_commits_total", dimensions: d)
        conflicts = Counter(label: "sluice_commit_conflicts_total", dimensions: d)
        commitLatency = Metrics.Timer(label: "sluice_commit_duration_seconds", dimensions: d, preferredDisplayUnit: .seconds)
        queueDepth = Gauge(label: "sluice_queue_depth_batches", dimensions: d)
        checkpointLag = Gauge(label: "sluice_uncommitted_batches", dimensions: d)
    }
}
