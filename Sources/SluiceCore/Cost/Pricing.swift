import Foundation

/// `pricing:` (top level, and per pipeline to override): what a pipeline's usage costs.
///
/// ```yaml
/// pricing: { per_gb: 0.02, storage_gb_month: 0.023, per_1000_requests: 0.0004, cpu_hour: 0.04 }
/// ```
public struct PricingConfig: Decodable, Sendable, Hashable {
    /// Dollars per GB ingested (read from the source). Default: the cost-vs-freshness tier of the
    /// pipeline's actual freshness (the table of `sluice plan`), the middle of its range.
    public var perGB: Double?
    /// Dollars per GB-month of storage; what a pipeline writes is charged one month.
    public var storageGBMonth: Double?
    /// Dollars per 1000 requests to HTTP APIs and object storage.
    public var per1000Requests: Double?
    /// Dollars per hour of CPU.
    public var cpuHour: Double?

    enum CodingKeys: String, CodingKey {
        case perGB = "per_gb"
        case storageGBMonth = "storage_gb_month"
        case per1000Requests = "per_1000_requests"
        case cpuHour = "cpu_hour"
    }

    public init(perGB: Double? = nil, storageGBMonth: Double? = nil, per1000Requests: Double? = nil, cpuHour: Double? = nil) {
        self.perGB = perGB
        self.storageGBMonth = storageGBMonth
        self.per1000Requests = per1000Requests
        self.cpuHour = cpuHour
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        func price(_ key: CodingKeys) throws -> Double? {
            guard let v = try c.decodeIfPresent(Double.self, forKey: key) else { return nil }
            guard v.isFinite, v >= 0 else { throw try c.superDecoder(forKey: key).configError("a price is a number of dollars, 0 or more") }
            return v
        }
        perGB = try price(.perGB)
        storageGBMonth = try price(.storageGBMonth)
        per1000Requests = try price(.per1000Requests)
        cpuHour = try price(.cpuHour)
    }

    /// This configuration with the keys `o` sets taken from `o`.
    public func overridden(by o: PricingConfig?) -> PricingConfig {
        guard let o else { return self }
        return PricingConfig(
            perGB: o.perGB ?? perGB, storageGBMonth: o.storageGBMonth ?? storageGBMonth, per1000Requests: o.per1000Requests ?? per1000Requests,
            cpuHour: o.cpuHour ?? cpuHour)
    }

    /// Storage, requests and CPU prices when `pricing:` does not set them: list prices of a
    /// common cloud (object storage standard tier, GET/PUT averaged, an on-demand vCPU).
    public static let defaultStorageGBMonth = 0.023
    public static let defaultPer1000Requests = 0.002
    public static let defaultCPUHour = 0.04

    public static let spec = OptionSpec(
        "pricing",
        .object([
            OptionSpec(
                "per_gb", .number, example: "0.02",
                "Dollars per GB read from the source. Default: the cost-vs-freshness tier of the pipeline's actual freshness (the table of `sluice plan`: < 1 min $0.30, 1–15 min $0.10, 15 min–1 h $0.035, 1–24 h $0.015, > 24 h $0.0075: the middle of each range)."
            ),
            OptionSpec(
                "storage_gb_month", .number, default: "0.023", example: "0.01", "Dollars per GB-month of storage; what a pipeline writes is charged one month."),
            OptionSpec("per_1000_requests", .number, default: "0.002", example: "0.0004", "Dollars per 1000 requests to HTTP APIs and object storage."),
            OptionSpec("cpu_hour", .number, default: "0.04", example: "0.05", "Dollars per hour of CPU."),
        ]), example: "{ per_gb: 0.02, storage_gb_month: 0.023 }",
        "What usage costs, for `sluice cost` and `sluice_cost_dollars_total` (top level; a pipeline's own `pricing:` overrides keys).")
}

/// The prices one pipeline's usage is charged at.
public struct Pricing: Sendable, Hashable {
    public var perGB: Double
    public var storageGBMonth: Double
    public var per1000Requests: Double
    public var cpuHour: Double
    /// Where ``perGB`` comes from: `pricing` or the freshness tier's name.
    public var perGBSource: String

    /// Prices from `config`, the per-GB price by the freshness tier when it sets none.
    /// `freshness` is how old data may be when it lands, in seconds.
    public init(_ config: PricingConfig, freshness: Double) {
        if let p = config.perGB {
            perGB = p
            perGBSource = "pricing"
        } else {
            let tier = IngestionPlanner.tier(freshness: freshness)
            perGB = (tier.low + tier.high) / 2
            perGBSource = "\(tier.freshness) tier"
        }
        storageGBMonth = config.storageGBMonth ?? PricingConfig.defaultStorageGBMonth
        per1000Requests = config.per1000Requests ?? PricingConfig.defaultPer1000Requests
        cpuHour = config.cpuHour ?? PricingConfig.defaultCPUHour
    }

    /// Dollars for `usage`, by part, with `perGB` the price per GB ingested in force then.
    public static func cost(_ usage: Usage, perGB: Double, storageGBMonth: Double, per1000Requests: Double, cpuHour: Double) -> Cost {
        Cost(
            ingest: Double(usage.bytesIn) / 1e9 * perGB, storage: Double(usage.storageBytes) / 1e9 * storageGBMonth,
            requests: Double(usage.requests) / 1000 * per1000Requests, cpu: usage.cpuSeconds / 3600 * cpuHour)
    }

    public func cost(_ usage: Usage) -> Cost {
        Self.cost(usage, perGB: perGB, storageGBMonth: storageGBMonth, per1000Requests: per1000Requests, cpuHour: cpuHour)
    }
}

/// Dollars, by what they pay for.
public struct Cost: Sendable, Hashable {
    public var ingest = 0.0
    public var storage = 0.0
    public var requests = 0.0
    public var cpu = 0.0

    public init(ingest: Double = 0, storage: Double = 0, requests: Double = 0, cpu: Double = 0) {
        self.ingest = ingest
        self.storage = storage
        self.requests = requests
        self.cpu = cpu
    }

    public var total: Double { ingest + storage + requests + cpu }

    public static func + (a: Cost, b: Cost) -> Cost {
        Cost(ingest: a.ingest + b.ingest, storage: a.storage + b.storage, requests: a.requests + b.requests, cpu: a.cpu + b.cpu)
    }
}

extension UsageRow {
    /// What this hour cost: its ingestion as priced then, the rest at `pricing`'s prices.
    public func cost(_ pricing: PricingConfig) -> Cost {
        var c = Pricing.cost(
            usage, perGB: 0, storageGBMonth: pricing.storageGBMonth ?? PricingConfig.defaultStorageGBMonth,
            per1000Requests: pricing.per1000Requests ?? PricingConfig.defaultPer1000Requests, cpuHour: pricing.cpuHour ?? PricingConfig.defaultCPUHour)
        c.ingest = ingestDollars
        return c
    }
}
