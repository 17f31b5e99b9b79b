/// The keys of a configuration file outside the components (`state`, `serve`, and a pipeline's
/// `dedupe`, `retry`, `batch`, `buffer`, `schema`), declared once for the reference and the
/// JSON Schema. Each is decoded by its own type (``PipelineConfig``, ``ServeConfig``); the
/// tests build a pipeline from every example here.
public enum ConfigFileSpec {
    /// Keys of `pipelines.<name>` besides `source` and `sink`.
    public static let pipelineOptions: [OptionSpec] = [
        OptionSpec(
            "dedupe",
            .object([
                OptionSpec("key", .list(.string), required: true, example: "[event_id]", "The fields that form a record's identity."),
                OptionSpec("ttl", .duration, default: "7d", example: "24h", "A key seen within this time is a duplicate."),
            ]), example: "{ key: [event_id], ttl: 7d }", "Idempotent ingestion: records whose key was accepted within `ttl` are dropped."),
        OptionSpec(
            "retry",
            .object([
                OptionSpec(
                    "max_attempts", .integer(1...1000), default: "5", example: "10",
                    "Tries of a failing sink write (then the pipeline pauses, retrying every `max_delay`) and of a finite source's start."),
                OptionSpec(
                    "base_delay", .duration, default: "1s", example: "500ms", "The first backoff step (exponential, full jitter; Retry-After is honoured)."),
                OptionSpec("max_delay", .duration, default: "60s", example: "30s", "The longest wait between two tries."),
                OptionSpec(
                    "max_outage", .duration, default: "10m", example: "1h",
                    "How long a finite pipeline starting over from its checkpoint (its source broke off mid-run, a Parquet file was lost to a full disk) may go without committing a record before the run stops; a continuous source keeps trying."
                ),
            ]), example: "{ max_attempts: 5, base_delay: 1s, max_delay: 60s, max_outage: 10m }",
            "Retries of failures worth retrying: sink writes, a source that cannot start (a continuous source keeps trying), and a source that breaks off mid-run (read again from the checkpoint)."
        ),
        OptionSpec(
            "batch",
            .object([
                OptionSpec("max_rows", .integer(1...10_000_000), default: "65536", example: "10000", "Rows per batch handed to the sink."),
                OptionSpec("max_bytes", .byteSize, default: "16MB", example: "8MB", "Bytes per batch handed to the sink."),
                OptionSpec("max_latency", .duration, default: "1s", example: "20ms", "The longest a record waits in the batcher."),
            ]), example: "{ max_rows: 65536, max_bytes: 16MB, max_latency: 1s }", "How records are grouped before the sink."),
        OptionSpec(
            "buffer",
            .object([
                OptionSpec("max_batches", .integer(1...1024), default: "4", example: "8", "Batches held between source and sink."),
                OptionSpec("max_bytes", .byteSize, default: "64MB", example: "128MB", "Bytes held between source and sink."),
            ]), example: "{ max_batches: 4, max_bytes: 64MB }", "The bound between source and sink: when it is full, the source waits (backpressure)."),
        OptionSpec(
            "schema",
            .object([
                OptionSpec(
                    "on_change", .choice(["evolve", "freeze", "discard_row", "discard_value", "ignore"]), default: "evolve", example: "freeze",
                    "What a change of the records' shape does; `ignore` turns detection and the registry off."),
                OptionSpec("subject", .string, example: "orders", "The schema registry subject. Default: the pipeline's name."),
                OptionSpec("columns", .map(.string), example: "{ id: int64 }", "The first version, when the data should not decide it."),
                OptionSpec("widen_to_string", .boolean, default: "false", example: "true", "Allow any type to become a string (values become their text)."),
            ]), example: "{ on_change: evolve }", "Schema policy and registry (see the schema registry guide)."),
        StorageConfig.spec,
        AlertsConfig.spec(topLevel: false),
        PricingConfig.spec,
        OptionSpec(
            "dead_letter",
            .object([
                OptionSpec("ttl", .duration, example: "30d", "Dead letters first seen longer ago than this are deleted. Default: kept until dropped."),
                OptionSpec("max_rows", .integer(1...1_000_000_000), example: "100000", "At most this many are kept: the oldest beyond it are deleted."),
                OptionSpec(
                    "sink", .object([]), example: "{ parquet: { path: dlq/orders } }",
                    "A sink (any of the sinks, written like the pipeline's) the dead letters are also copied to, for analysts: one record per dead letter with `id, pipeline, stage, kind, location, message, attempts, first_seen, last_seen, raw, schema` (the columns of `sluice dlq export`). Copied after each commit, exactly once across crashes; the state store keeps its copy, which `sluice dlq` reviews and replays. Needs the embedded (SQLite) state store, and a sink that appends."
                ),
            ]), example: "{ ttl: 30d, max_rows: 100000 }",
            "The pipeline's dead-letter queue: retention (swept at start and every 10 minutes; export what you want to keep: `sluice dlq export`) and a sink of its own."
        ),
        OptionSpec(
            "reconcile",
            .object([
                OptionSpec("sequence", .string, required: true, example: "seq", "An integer field the producer increments by one per record."),
                OptionSpec("key", .string, example: "device_id", "Count the sequence per value of this field (one producer each)."),
                OptionSpec(
                    "max_keys", .integer(1...100_000_000), default: "100000", example: "1000000",
                    "Keys remembered (the least recently seen are forgotten beyond)."),
            ]), example: "{ sequence: seq, key: device_id }",
            "Count gaps in a declared sequence as missing records (`sluice_missing_records_total{check=\"sequence_gap\"}`, the missing_data alert). Remembered in memory: a restart starts each key afresh."
        ),
        OptionSpec(
            "event_time", .string, example: "created_at",
            "A timestamp column: the end-to-end latency metric counts from each batch's oldest value of it (else from what the source knows: a file's modification time, a push's arrival; else from the read)."
        ),
    ]

    /// Top-level keys of a configuration file besides `pipelines`.
    public static let fileOptions: [OptionSpec] = [
        OptionSpec(
            "state", .string, default: ".sluice/state.db", example: #""postgres://sluice@db/sluice""#,
            "Where state lives: a SQLite file (created if missing) or a `postgres://` URL shared by several workers."),
        OptionSpec(
            "shutdown_timeout", .duration, default: "30s", example: "10s",
            "After SIGTERM or SIGINT, how long `sluice run`, `serve` and `backfill` may take to stop gracefully (commit what they can) before they exit anyway, whatever their dependencies do; a second signal exits at once. Work not committed is read again on the next start."
        ),
        OptionSpec(
            "serve",
            .object([
                OptionSpec(
                    "host", .string, default: "127.0.0.1", example: "0.0.0.0",
                    "The address `sluice serve` listens on; another than loopback needs authentication on every stream."),
                OptionSpec("port", .integer(0...65535), default: "8080", example: "9000", "The port (0: any free port)."),
                OptionSpec(
                    "tls",
                    .object([
                        OptionSpec("certificate", .string, required: true, example: "certs/server.pem", "The PEM certificate chain."),
                        OptionSpec("private_key", .string, required: true, example: "certs/server.key", "The PEM private key."),
                    ]), example: "{ certificate: certs/server.pem, private_key: certs/server.key }", "Serve HTTPS."),
                OptionSpec(
                    "max_inflight_bytes", .byteSize, default: "64MB", example: "128MB",
                    "Request bodies held in memory at once; beyond it, requests are answered 503 with Retry-After. "
                        + "Bodies from senders not verified yet (signed webhooks before their signature is checked, open streams) "
                        + "hold at most a quarter of it together, unless no stream authenticates its senders."),
                OptionSpec(
                    "registry_auth", .choice(["none", "api_key"]), default: "none", example: "api_key",
                    "Whether writes to the schema registry API need an API key."),
                OptionSpec(
                    "drain_timeout", .duration, default: "30s", example: "2m",
                    "On SIGTERM or SIGINT, how long the pipelines of push streams may take to commit every record already answered 202 (new requests and `/readyz` get 503 meanwhile). What is left stays queued for the next start."
                ),
            ]), example: "{ host: 127.0.0.1, port: 8080 }", "How `sluice serve` listens."),
        StorageConfig.spec,
        AlertsConfig.spec(topLevel: true),
        PricingConfig.spec,
    ]
}
