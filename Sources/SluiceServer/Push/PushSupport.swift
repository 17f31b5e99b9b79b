import Metrics
import Synchronization

/// Request ids: a random per-process prefix and a counter (unique, cheap, sortable within a process).
enum RequestID {
    static let prefix: String = {
        var g = SystemRandomNumberGenerator()
        return String(g.next() & 0xFFFF_FFFF_FFFF, radix: 16).leftPadded(to: 12)
    }()
    static let counter = Atomic<UInt64>(0)

    static func next() -> String {
        let n = counter.wrappingAdd(1, ordering: .relaxed).newValue
        return "\(prefix)-\(String(n, radix: 16).leftPadded(to: 10))"
    }
}

extension String {
    func leftPadded(to width: Int) -> String {
        count >= width ? self : String(repeating: "0", count: width - count) + self
    }
}

/// The endpoint's metrics, created once per label set (a registry lookup per request is not free).
///
/// Every series carries `pipeline` (the pipeline the stream feeds; empty for requests to a
/// stream that does not exist, whose `stream` label is `unknown`) and `stream`.
final class PushMetrics: Sendable {
    /// The pipeline each stream feeds.
    private let pipelines: [String: String]
    private let counters = Mutex<[SeriesKey: Counter]>([:])
    private let timers = Mutex<[String: Timer]>([:])
    private let gauges = Mutex<[String: Gauge]>([:])

    init(pipelines: [String: String]) {
        self.pipelines = pipelines
    }

    /// A series' identity: its name and label values (built without formatting a string,
    /// since this runs for every request).
    private struct SeriesKey: Hashable {
        var label: String
        var stream: String
        var extra: String?
    }

    private func counter(_ label: String, stream: String, _ extra: (name: String, value: String)? = nil) -> Counter {
        let key = SeriesKey(label: label, stream: stream, extra: extra?.value)
        return counters.withLock { map in
            if let c = map[key] { return c }
            let c = Counter(label: label, dimensions: labels([("stream", stream)] + (extra.map { [($0.name, $0.value)] } ?? [])))
            map[key] = c
            return c
        }
    }

    /// `pipeline` first, then the series' own labels (the first of which is `stream`).
    private func labels(_ dimensions: [(String, String)]) -> [(String, String)] {
        [("pipeline", dimensions.first.flatMap { pipelines[$0.1] } ?? "")] + dimensions
    }

    func requests(stream: String, code: Int) -> Counter { counter("sluice_http_requests_total", stream: stream, ("code", String(code))) }
    func records(stream: String) -> Counter { counter("sluice_http_records_total", stream: stream) }
    func rejected(stream: String, reason: String) -> Counter { counter("sluice_http_rejected_records_total", stream: stream, ("reason", reason)) }
    func authFailures(stream: String, reason: String) -> Counter { counter("sluice_http_auth_failures_total", stream: stream, ("reason", reason)) }
    func rateLimited(stream: String, scope: String) -> Counter { counter("sluice_http_rate_limited_total", stream: stream, ("scope", scope)) }
    func backpressure(stream: String) -> Counter { counter("sluice_http_backpressure_total", stream: stream) }

    func duration(stream: String) -> Timer {
        timers.withLock { map in
            if let t = map[stream] { return t }
            let t = Timer(label: "sluice_http_request_duration_seconds", dimensions: labels([("stream", stream)]))
            map[stream] = t
            return t
        }
    }

    func queueRecords(stream: String) -> Gauge {
        gauges.withLock { map in
            if let g = map[stream] { return g }
            let g = Gauge(label: "sluice_push_queue_records", dimensions: labels([("stream", stream)]))
            map[stream] = g
            return g
        }
    }
}
