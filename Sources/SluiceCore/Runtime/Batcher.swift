/// Groups decoded records into sink-sized writes by rows, bytes and latency.
///
/// Each source batch keeps its sequence number, so the runtime can commit between any two
/// of them (when the sink asks for it) without waiting for the whole group.
struct Batcher {
    let settings: BatchSettings
    private(set) var entries: [(records: RecordBatch, sequence: UInt64, position: SourcePosition)] = []
    private(set) var rows = 0
    private(set) var bytes = 0
    private(set) var oldest: ContinuousClock.Instant?

    init(settings: BatchSettings) { self.settings = settings }

    var isEmpty: Bool { entries.isEmpty }

    mutating func add(_ batch: RecordBatch, sequence: UInt64, position: SourcePosition, now: ContinuousClock.Instant) {
        entries.append((batch, sequence, position))
        rows += batch.count
        bytes += batch.byteSize
        if oldest == nil { oldest = now }
    }

    var isFull: Bool { rows >= settings.maxRows || bytes >= settings.maxBytes }

    /// Time left before the oldest pending record must be flushed; nil when empty.
    func timeUntilDue(now: ContinuousClock.Instant) -> Duration? {
        guard let oldest else { return nil }
        return max(.zero, settings.maxLatency - (now - oldest))
    }

    /// Takes everything, in arrival order. Batches are handed over as they came (no copy);
    /// the sink groups them into files, row groups or statements as it needs.
    mutating func drain() -> [(records: RecordBatch, sequence: UInt64, position: SourcePosition)] {
        defer {
            entries.removeAll()
            rows = 0
            bytes = 0
            oldest = nil
        }
        return entries
    }
}
