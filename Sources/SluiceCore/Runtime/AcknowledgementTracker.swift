/// Computes the checkpoint from acknowledgements: the contiguous watermark of DESIGN.md §1.
///
/// Every source batch is registered in arrival order and gets a sequence number. It is
/// completed once all its records are committed or dead-lettered. The checkpoint may only
/// move to the position of a batch when it and every batch before it are complete, so one
/// slow or failing batch holds the checkpoint back without forcing completed work to replay.
public struct AcknowledgementTracker: Sendable {
    private var entries: [(position: SourcePosition, done: Bool)] = []
    private var head = 0
    /// Sequence number of `entries[head]`.
    private var base: UInt64 = 0

    public init() {}

    /// Batches registered and not yet passed by the watermark.
    public var inFlight: Int { entries.count - head }

    /// Registers a batch ending at `position`; returns its sequence number.
    public mutating func register(_ position: SourcePosition) -> UInt64 {
        entries.append((position, false))
        return base + UInt64(entries.count - head - 1)
    }

    /// Marks batch `sequence` complete. Returns the partitions whose committed position moves,
    /// with their new values (empty when an earlier batch is still outstanding).
    public mutating func complete(_ sequence: UInt64) -> [String: String] {
        precondition(sequence >= base, "batch \(sequence) completed twice")
        let index = head + Int(sequence - base)
        precondition(index < entries.count, "unknown batch \(sequence)")
        entries[index].done = true
        var advanced: [String: String] = [:]
        while head < entries.count, entries[head].done {
            advanced[entries[head].position.partition] = entries[head].position.value
            head += 1
            base += 1
        }
        if head > 1024, head * 2 > entries.count {
            entries.removeFirst(head)
            head = 0
        }
        return advanced
    }
}
