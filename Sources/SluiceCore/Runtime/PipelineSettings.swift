/// Resolved pipeline-level settings, with defaults applied.
public struct PipelineSettings: Sendable {
    public var dedupe: DedupeSettings?
    public var retry: RetryPolicy
    public var batch: BatchSettings
    public var bufferBatches: Int
    public var bufferBytes: Int
    /// What to do when the data's schema changes (nil: detect and record only).
    public var schema: SchemaSettings?
    /// False with `schema: {on_change: ignore}`: no drift detection, no registry (the schema
    /// still flows to the sink; a Parquet sink still starts a new file on a change).
    public var schemaDetection = true
    /// The alert rules: the file's `alerts:` with the pipeline's overrides.
    public var alerts = AlertsConfig()
    /// Prices for cost accounting: the file's `pricing:` with the pipeline's overrides.
    public var pricing = PricingConfig()
    /// The file's `shutdown_timeout`: after SIGTERM or SIGINT, how long the process may take to
    /// stop gracefully before it exits anyway.
    public var shutdownTimeout: Duration = .seconds(30)
    /// A timestamp column whose oldest value in a batch is its origin, for the end-to-end latency.
    public var eventTime: String?
    /// A declared sequence whose gaps count as missing records.
    public var reconcile: ReconcileSettings?
    /// How long dead letters are kept (nil: until dropped).
    public var deadLetterTTL: Duration?
    /// How many dead letters are kept at most (nil: no bound).
    public var deadLetterMaxRows: Int?

    public init(
        dedupe: DedupeSettings? = nil, retry: RetryPolicy = RetryPolicy(), batch: BatchSettings = BatchSettings(),
        bufferBatches: Int = 4, bufferBytes: Int = 64 << 20
    ) {
        self.dedupe = dedupe
        self.retry = retry
        self.batch = batch
        self.bufferBatches = bufferBatches
        self.bufferBytes = bufferBytes
    }

    init(_ config: PipelineConfig, file: String) throws {
        self.init()
        if let d = config.dedupe {
            guard !d.key.isEmpty else {
                throw ConfigError(file: file, line: nil, column: nil, keyPath: "dedupe.key", message: "name at least one key field")
            }
            dedupe = DedupeSettings(key: d.key, ttl: d.ttl?.duration ?? .seconds(7 * 86_400))
        }
        if let r = config.retry {
            retry.maxAttempts = r.maxAttempts ?? retry.maxAttempts
            retry.baseDelay = r.baseDelay?.duration ?? retry.baseDelay
            retry.maxDelay = r.maxDelay?.duration ?? retry.maxDelay
            retry.maxOutage = r.maxOutage?.duration ?? retry.maxOutage
        }
        if let b = config.batch {
            batch.maxRows = b.maxRows ?? batch.maxRows
            batch.maxBytes = b.maxBytes?.bytes ?? batch.maxBytes
            batch.maxLatency = b.maxLatency?.duration ?? batch.maxLatency
        }
        if let b = config.buffer {
            bufferBatches = b.maxBatches ?? bufferBatches
            bufferBytes = b.maxBytes?.bytes ?? bufferBytes
        }
        deadLetterTTL = config.deadLetter?.ttl?.duration
        deadLetterMaxRows = config.deadLetter?.maxRows
        reconcile = config.reconcile.map { ReconcileSettings(sequence: $0.sequence, key: $0.key, maxKeys: $0.maxKeys ?? 100_000) }
        if let sc = config.schema, sc.onChange == "ignore" {
            schemaDetection = false
        } else if let sc = config.schema {
            schema = SchemaSettings(
                policy: SchemaPolicy(rawValue: sc.onChange ?? "evolve") ?? .evolve, subject: sc.subject,
                declared: sc.columns.map { Schema($0.entries.map { Field($0.key, DataType(parsing: $0.value)!) }) },
                widenToString: sc.widenToString ?? false)
        }
    }
}

/// Idempotent ingestion: records whose key was accepted within `ttl` are dropped as duplicates.
public struct DedupeSettings: Sendable {
    public var key: [String]
    public var ttl: Duration

    public init(key: [String], ttl: Duration) {
        self.key = key
        self.ttl = ttl
    }
}

/// How the batcher groups records before writing them to the sink.
public struct BatchSettings: Sendable {
    public var maxRows = 65_536
    public var maxBytes = 16 << 20
    public var maxLatency: Duration = .seconds(1)

    public init() {}
}

/// `reconcile: { sequence: seq, key: device_id, max_keys: 100000 }`: records carry a number the
/// producer increments by one (per key, when a key is named); gaps count as missing records.
public struct ReconcileSettings: Sendable {
    public var sequence: String
    public var key: String?
    public var maxKeys: Int

    public init(sequence: String, key: String? = nil, maxKeys: Int = 100_000) {
        self.sequence = sequence
        self.key = key
        self.maxKeys = maxKeys
    }
}
