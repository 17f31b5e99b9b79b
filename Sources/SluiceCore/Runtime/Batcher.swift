/// Groups decoded records into sink-sized batches by rows, bytes and latency.
struct Batcher {
    let settings: BatchSettings
    private(set) var batches: [RecordBatch] = []
    /// Sequence numbers of source batches whose records are all in `batches`.
    private(set) var sequences: [UInt64] = []
    private(set) var rows = 0
    private(set) var bytes = 0
    private(set) var oldest: ContinuousClock.Instant?

    init(settings: BatchSettings) { self.settings = settings }

    var isEmpty: Bool { sequences.isEmpty }

    mutating func add(_ batch: RecordBatch, sequence: UInt64, now: ContinuousClock.Instant) {
        if batch.count > 0 {
            batches.append(batch)
            rows += batch.count
            bytes += batch.byteSize
        }
        sequences.append(sequence)
        if oldest == nil { oldest = now }
    }

    var isFull: Bool { rows >= settings.maxRows || bytes >= settings.maxBytes }

    /// Time left before the oldest pending record must be flushed; nil when empty.
    func timeUntilDue(now: ContinuousClock.Instant) -> Duration? {
        guard let oldest else { return nil }
        return max(.zero, settings.maxLatency - (now - oldest))
    }

    /// Takes everything. Batches are handed over as they came (no copy); the sink groups them
    /// into files, row groups or statements as it needs.
    mutating func drain() -> (batches: [RecordBatch], sequences: [UInt64]) {
        let result = (batches, sequences)
        batches.removeAll()
        sequences.removeAll()
        rows = 0
        bytes = 0
        oldest = nil
        return result
    }
}
