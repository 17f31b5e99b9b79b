import Foundation

/// The missing-data check of one run: every record read must be accounted for, as written to
/// the sink, dead-lettered, or dropped as a duplicate. The runner opens an entry per source
/// batch, settles it as the batch moves on, and closes it when a commit covers the batch; what
/// is left unsettled then was lost.
struct ReconciliationLedger {
    private var open: [UInt64: (position: SourcePosition, unsettled: Int)] = [:]

    /// Batch `sequence` read `records` records (rejected ones included).
    mutating func read(_ sequence: UInt64, position: SourcePosition, records: Int) {
        open[sequence] = (position, records)
    }

    /// `count` records of batch `sequence` reached an end: written, dead-lettered or dropped.
    mutating func settle(_ sequence: UInt64, _ count: Int) {
        open[sequence]?.unsettled -= count
    }

    /// Closes the batches a commit covered (sequence up to `through`); returns those with
    /// records unaccounted for (positive: lost; negative: counted twice), in read order.
    mutating func close(through: UInt64) -> [(position: SourcePosition, missing: Int)] {
        let done = open.keys.filter { $0 <= through }.sorted()
        var gaps: [(SourcePosition, Int)] = []
        for sequence in done {
            if let entry = open.removeValue(forKey: sequence), entry.unsettled != 0 { gaps.append((entry.position, entry.unsettled)) }
        }
        return gaps
    }
}

/// `reconcile: { sequence: seq, key: device_id }`: records carry a sequence number (per key,
/// when a key is named) that the producer increments by one; a jump is a gap, counted as that
/// many missing records. Repeats and numbers lower than the last seen (redeliveries, reordering)
/// are not gaps. Remembers the last number of up to `maxKeys` keys (the least recently seen are
/// forgotten beyond that), in memory: the first record of a key after a restart starts afresh.
public struct SequenceGapCounter: Sendable {
    public let field: String
    public let keyField: String?
    public let maxKeys: Int
    private var last: [String: (sequence: Int64, seen: UInt64)] = [:]
    private var tick: UInt64 = 0

    /// The most one batch counts as missing.
    static let maxGap = 1 << 31

    public init(field: String, keyField: String?, maxKeys: Int = 100_000) {
        self.field = field
        self.keyField = keyField
        self.maxKeys = maxKeys
    }

    /// The gaps in `records`: how many numbers were skipped, and up to five examples. With
    /// `count: false` the numbers are remembered and no gap is counted.
    public mutating func gaps(in records: RecordBatch, count: Bool = true) -> (missing: Int, examples: [String]) {
        guard let index = records.schema.index(of: field) else { return (0, []) }
        let column = records.columns[index]
        let keyColumn = keyField.flatMap { records.schema.index(of: $0) }.map { records.columns[$0] }
        var missing = 0
        var examples: [String] = []
        for row in 0..<column.count where !column.isNull(row) {
            let sequence: Int64
            switch column.storage {
            case let .int64(v): sequence = v[row]
            case let .int32(v): sequence = Int64(v[row])
            default:
                switch column.value(at: row) {
                case let .string(text): guard let n = Int64(text) else { continue }; sequence = n
                case let .decimal(v, 0): guard let n = Int64(exactly: v) else { continue }; sequence = n
                default: continue
                }
            }
            let key = keyColumn.map { "\($0.value(at: row))" } ?? ""
            tick += 1
            if let previous = last[key]?.sequence {
                // Hostile numbers (near Int64's ends) must not trap: the gap is computed with
                // overflow checks and clamped.
                let (distance, overflow) = sequence.subtractingReportingOverflow(previous)
                if count, sequence > previous, overflow || distance > 1 {
                    // A jump beyond 2^31 (a producer's bug, or hostile input) counts as 2^31.
                    let skipped = overflow ? Self.maxGap : Int(min(distance - 1, Int64(Self.maxGap)))
                    missing = min(missing + skipped, Self.maxGap)
                    if examples.count < 5 {
                        examples.append((keyField.map { "\($0)=\(key) " } ?? "") + "\(previous &+ 1)…\(sequence &- 1)")
                    }
                }
                if sequence > previous { last[key] = (sequence, tick) } else { last[key]?.seen = tick }
            } else {
                last[key] = (sequence, tick)
            }
        }
        if last.count > maxKeys + maxKeys / 10 {
            // Forget the least recently seen tenth.
            let cutoff = last.values.map(\.seen).sorted()[last.count - maxKeys]
            last = last.filter { $0.value.seen >= cutoff }
        }
        return (missing, examples)
    }
}
