/// The whole configuration file (DESIGN.md §5).
public struct SluiceConfig: Decodable, Sendable {
    /// Where state lives: a SQLite file path (default `.sluice/state.db`) or a `postgres://` URL (state shared by several workers).
    public var state: String?
    public var pipelines: [(name: String, config: PipelineConfig)]
    /// Whether the file has a `pipelines:` key at all.
    public var hasPipelinesKey: Bool
    /// How `sluice serve` listens.
    public var serve: ServeConfig?
    /// Defaults for reaching `s3://` paths.
    public var storage: StorageConfig?
    /// Default alert rules.
    public var alerts: AlertsConfig?
    /// Prices for cost accounting.
    public var pricing: PricingConfig?
    /// After SIGTERM or SIGINT, how long a graceful stop may take (default 30s).
    public var shutdownTimeout: Duration?

    enum CodingKeys: String, CodingKey {
        case state, pipelines, serve, storage, alerts, pricing
        case shutdownTimeout = "shutdown_timeout"
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        state = try c.decodeIfPresent(String.self, forKey: .state)
        serve = try c.decodeIfPresent(ServeConfig.self, forKey: .serve)
        storage = try c.decodeIfPresent(StorageConfig.self, forKey: .storage)
        alerts = try c.decodeIfPresent(AlertsConfig.self, forKey: .alerts)
        pricing = try c.decodeIfPresent(PricingConfig.self, forKey: .pricing)
        shutdownTimeout = try c.decodeIfPresent(ConfigDuration.self, forKey: .shutdownTimeout)?.duration
        // Optional here: `sluice serve` runs a file without pipelines (the registry alone);
        // ``ConfigLoader`` refuses it for the commands that run pipelines.
        pipelines = try c.decodeIfPresent(OrderedMapping<PipelineConfig>.self, forKey: .pipelines)?.entries.map { ($0.key, $0.value) } ?? []
        hasPipelinesKey = c.contains(.pipelines)
    }
}

/// One pipeline: `pipelines.<name>`.
public struct PipelineConfig: Decodable, Sendable {
    public var source: ComponentConfig
    public var sink: ComponentConfig
    public var dedupe: DedupeConfig?
    public var retry: RetryConfig?
    public var batch: BatchConfig?
    public var buffer: BufferConfig?
    public var schema: SchemaConfig?
    /// Overrides of the file's `storage:` for this pipeline.
    public var storage: StorageConfig?
    /// Overrides of the file's `alerts:` for this pipeline.
    public var alerts: AlertsConfig?
    /// `event_time: created_at`: the column the end-to-end latency counts from.
    public var eventTime: String?
    /// `reconcile: { sequence: seq, key: device_id }`: a declared sequence whose gaps are counted.
    public var reconcile: ReconcileConfig?
    /// `dead_letter: { ttl: 30d, max_rows: 100000 }`: how long and how many dead letters are kept.
    public var deadLetter: DeadLetterConfig?
    /// Overrides of the file's `pricing:` for this pipeline.
    public var pricing: PricingConfig?

    enum CodingKeys: String, CodingKey {
        case source, sink, dedupe, retry, batch, buffer, schema, storage, alerts, reconcile, pricing
        case eventTime = "event_time"
        case deadLetter = "dead_letter"
    }
}

/// `dead_letter: { ttl: 30d, max_rows: 100000 }`.
public struct DeadLetterConfig: Decodable, Sendable {
    public var ttl: ConfigDuration?
    public var maxRows: Int?
    /// A sink the dead letters are also copied to (`sink: { parquet: { path: dlq } }`).
    public var sink: ComponentConfig?

    enum CodingKeys: String, CodingKey {
        case ttl, sink
        case maxRows = "max_rows"
    }
}

/// `reconcile: { sequence: seq, key: device_id, max_keys: 100000 }`.
public struct ReconcileConfig: Decodable, Sendable {
    public var sequence: String
    public var key: String?
    public var maxKeys: Int?

    enum CodingKeys: String, CodingKey {
        case sequence, key
        case maxKeys = "max_keys"
    }
}

/// `schema: {on_change: evolve, subject: events, columns: {id: int64}, widen_to_string: false}`.
public struct SchemaConfig: Decodable, Sendable {
    public var onChange: String?
    public var subject: String?
    public var columns: OrderedMapping<String>?
    public var widenToString: Bool?

    enum CodingKeys: String, CodingKey {
        case onChange = "on_change"
        case subject, columns
        case widenToString = "widen_to_string"
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        onChange = try c.decodeIfPresent(String.self, forKey: .onChange)
        if let o = onChange, SchemaPolicy(rawValue: o) == nil, o != "ignore" {
            throw try c.superDecoder(forKey: .onChange).configError("unknown on_change '\(o)'; use evolve, freeze, discard_row, discard_value or ignore")
        }
        subject = try c.decodeIfPresent(String.self, forKey: .subject)
        columns = try c.decodeIfPresent(OrderedMapping<String>.self, forKey: .columns)
        if let columns {
            let nested = try c.superDecoder(forKey: .columns)
            for (name, type) in columns.entries where DataType(parsing: type) == nil {
                throw nested.configError(
                    "column '\(name)': unknown type '\(type)'; use bool, int64, float64, decimal(p,s), string, binary, date, timestamp or json")
            }
        }
        widenToString = try c.decodeIfPresent(Bool.self, forKey: .widenToString)
    }
}

/// `dedupe: {key: [id, updated_at], ttl: 7d}`: drop records whose key was accepted within `ttl`.
public struct DedupeConfig: Decodable, Sendable {
    public var key: [String]
    public var ttl: ConfigDuration?
}

/// `retry: {max_attempts: 5, base_delay: 1s, max_delay: 60s, max_outage: 10m}`.
public struct RetryConfig: Decodable, Sendable {
    public var maxAttempts: Int?
    public var baseDelay: ConfigDuration?
    public var maxDelay: ConfigDuration?
    public var maxOutage: ConfigDuration?

    enum CodingKeys: String, CodingKey {
        case maxAttempts = "max_attempts"
        case baseDelay = "base_delay"
        case maxDelay = "max_delay"
        case maxOutage = "max_outage"
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        maxAttempts = try c.decodeIfPresent(Int.self, forKey: .maxAttempts, in: 1...1000)
        baseDelay = try c.decodeIfPresent(ConfigDuration.self, forKey: .baseDelay)
        maxDelay = try c.decodeIfPresent(ConfigDuration.self, forKey: .maxDelay)
        maxOutage = try c.decodeIfPresent(ConfigDuration.self, forKey: .maxOutage)
    }
}

/// `batch: {max_rows: 65536, max_bytes: 16MB, max_latency: 1s}`: how the batcher groups records for the sink.
public struct BatchConfig: Decodable, Sendable {
    public var maxRows: Int?
    public var maxBytes: ConfigByteSize?
    public var maxLatency: ConfigDuration?

    enum CodingKeys: String, CodingKey {
        case maxRows = "max_rows"
        case maxBytes = "max_bytes"
        case maxLatency = "max_latency"
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        maxRows = try c.decodeIfPresent(Int.self, forKey: .maxRows, in: 1...10_000_000)
        maxBytes = try c.decodeIfPresent(ConfigByteSize.self, forKey: .maxBytes)
        maxLatency = try c.decodeIfPresent(ConfigDuration.self, forKey: .maxLatency)
    }
}

/// `buffer: {max_batches: 4, max_bytes: 64MB}`: the bound between source and sink.
public struct BufferConfig: Decodable, Sendable {
    public var maxBatches: Int?
    public var maxBytes: ConfigByteSize?

    enum CodingKeys: String, CodingKey {
        case maxBatches = "max_batches"
        case maxBytes = "max_bytes"
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        maxBatches = try c.decodeIfPresent(Int.self, forKey: .maxBatches, in: 1...1024)
        maxBytes = try c.decodeIfPresent(ConfigByteSize.self, forKey: .maxBytes)
    }
}

extension KeyedDecodingContainer {
    /// Decodes an optional integer and checks its range, with a located error.
    public func decodeIfPresent(_ type: Int.Type, forKey key: Key, in range: ClosedRange<Int>) throws -> Int? {
        guard let value = try decodeIfPresent(Int.self, forKey: key) else { return nil }
        guard range.contains(value) else {
            throw try superDecoder(forKey: key).configError("must be between \(range.lowerBound) and \(range.upperBound), found \(value)")
        }
        return value
    }
}
