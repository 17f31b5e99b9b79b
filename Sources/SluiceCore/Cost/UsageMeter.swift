import Foundation
import Logging
import Metrics

/// Cost accounting while pipelines run: every `interval` (and once more when they end) it
/// samples each pipeline's counters, adds what the pipeline used since the last sample to the
/// state store under the current hour (``UsageStore``), and counts its cost in
/// `sluice_cost_dollars_total{pipeline}`.
///
/// CPU time is the process's, shared among the pipelines by the bytes each moved in the
/// interval. The price per GB ingested is the pipeline's `pricing.per_gb`, else the middle of
/// the cost-vs-freshness tier of its freshness now: a scheduled pull's interval, a continuous
/// source's batch latency, and > 24 h for a run that ends by itself.
///
/// A sample the state store refuses is kept and added to the next one; a process killed loses
/// at most one interval of accounting, never the data.
public final class UsageMeter: Sendable {
    public struct Pipeline: Sendable {
        public var name: String
        public var status: PipelineStatus
        public var requests: RequestTally
        public var pricing: PricingConfig
        public var continuous: Bool
        /// `batch.max_latency`, in seconds.
        public var batchLatency: Double

        public init(name: String, status: PipelineStatus, requests: RequestTally, pricing: PricingConfig, continuous: Bool, batchLatency: Double) {
            self.name = name
            self.status = status
            self.requests = requests
            self.pricing = pricing
            self.continuous = continuous
            self.batchLatency = batchLatency
        }

        /// How old data may be when it lands, in seconds.
        func freshness(_ snapshot: PipelineStatus.Snapshot) -> Double {
            if let interval = snapshot.pullInterval { return interval }
            return continuous ? batchLatency : .infinity
        }
    }

    let pipelines: [Pipeline]
    let store: any StateStore
    let logger: Logger
    let interval: Duration
    let clockShift: TimeInterval
    private let stopped = StopSignal()
    private let costs: [FloatingPointCounter]

    public init(pipelines: [Pipeline], store: any StateStore, logger: Logger, interval: Duration = .seconds(15), clockShift: TimeInterval = 0) {
        self.pipelines = pipelines
        self.store = store
        self.logger = logger
        self.interval = interval
        self.clockShift = clockShift
        costs = pipelines.map { FloatingPointCounter(label: "sluice_cost_dollars_total", dimensions: [("pipeline", $0.name)]) }
    }

    /// Ends ``run()`` after one last sample.
    public func stop() { stopped.set() }

    /// Hours of usage kept in the state store.
    static let kept: Int64 = 400 * 86_400

    public func run() async {
        let now = Int64(Date().addingTimeInterval(clockShift).timeIntervalSince1970)
        if let removed = try? await store.sweepUsage(before: now - Self.kept), removed > 0 {
            logger.debug("old usage hours removed", metadata: ["count": "\(removed)"])
        }
        var counted = pipelines.map { _ in Usage() }
        var cpu = (process: Self.processCPUSeconds(), shares: pipelines.map { _ in 0.0 })
        while !stopped.isSet, !Task.isCancelled {
            await stopped.sleep(for: interval)
            await sample(&counted, cpu: &cpu)
        }
    }

    /// Files what each pipeline used since `counted` (its counters at the last sample filed).
    /// `cpu` is the process's CPU time at the last sample and each pipeline's share so far.
    func sample(_ counted: inout [Usage], cpu: inout (process: Double, shares: [Double])) async {
        let now = Date().addingTimeInterval(clockShift)
        let hour = Int64(now.timeIntervalSince1970 / 3600) * 3600
        let snapshots = pipelines.map { $0.status.snapshot }
        var totals = zip(pipelines, snapshots).map { p, s in
            Usage(
                bytesIn: s.bytesIn, bytesOut: s.bytesOut, recordsIn: s.recordsIn, recordsOut: s.recordsOut, requests: p.requests.total,
                storageBytes: s.storageBytes)
        }
        // The process's CPU time since the last sample, shared by the bytes each pipeline moved.
        let cpuNow = Self.processCPUSeconds()
        let spent = max(0, cpuNow - cpu.process)
        let moved = totals.indices.map { Double(totals[$0].bytesIn - counted[$0].bytesIn + totals[$0].bytesOut - counted[$0].bytesOut) }
        let all = moved.reduce(0, +)
        for i in totals.indices {
            cpu.shares[i] += all > 0 ? spent * moved[i] / all : spent / Double(totals.count)
            totals[i].cpuSeconds = cpu.shares[i]
        }
        cpu.process = cpuNow
        for (i, p) in pipelines.enumerated() {
            let used = Usage(
                bytesIn: totals[i].bytesIn - counted[i].bytesIn, bytesOut: totals[i].bytesOut - counted[i].bytesOut,
                recordsIn: totals[i].recordsIn - counted[i].recordsIn, recordsOut: totals[i].recordsOut - counted[i].recordsOut,
                cpuSeconds: totals[i].cpuSeconds - counted[i].cpuSeconds, requests: totals[i].requests - counted[i].requests,
                storageBytes: totals[i].storageBytes - counted[i].storageBytes)
            guard !used.isZero else { continue }
            let pricing = Pricing(p.pricing, freshness: p.freshness(snapshots[i]))
            let cost = pricing.cost(used)
            do {
                try await store.addUsage(pipeline: p.name, hour: hour, usage: used, ingestDollars: cost.ingest)
                counted[i] = totals[i]
                costs[i].increment(by: cost.total)
            } catch {
                logger.debug("could not record usage; the next sample adds it", metadata: ["pipeline": "\(p.name)", "error": "\(error)"])
            }
        }
    }

    /// User and system CPU time of this process so far.
    static func processCPUSeconds() -> Double {
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        func seconds(_ t: timeval) -> Double { Double(t.tv_sec) + Double(t.tv_usec) / 1_000_000 }
        return seconds(usage.ru_utime) + seconds(usage.ru_stime)
    }
}
