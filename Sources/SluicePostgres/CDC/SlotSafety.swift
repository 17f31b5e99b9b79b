import Metrics

/// Slot safety: the WAL the replication slot holds back, measured every
/// ``retainedCheckInterval`` into the gauge `sluice_cdc_retained_wal_bytes`, with a warning once
/// per crossing of `retained_wal_warning`. Decides when a check is due and whether to warn; the
/// reader queries the server (``CDCAdmin/retainedBytes(slot:session:)``) and logs.
struct SlotSafety {
    /// Slot safety: WAL the slot holds back, measured every ``retainedCheckInterval``.
    let retainedWAL: Gauge
    var lastRetainedCheck = ContinuousClock.now - .seconds(3600)
    var retainedWarned = false
    static let retainedCheckInterval = Duration.seconds(15)

    init(pipeline: String, slot: String) {
        retainedWAL = Gauge(label: "sluice_cdc_retained_wal_bytes", dimensions: [("pipeline", pipeline), ("slot", slot)])
    }

    /// Whether a check is due (the first one is at once); when it is, it counts as made `now`.
    mutating func checkDue(at now: ContinuousClock.Instant = .now) -> Bool {
        guard now - lastRetainedCheck > Self.retainedCheckInterval else { return false }
        lastRetainedCheck = now
        return true
    }

    /// Records a measurement in the gauge; returns whether to warn: above `limit` now, and not
    /// at the measurement before.
    mutating func record(_ bytes: Int64, warningAt limit: Int64) -> Bool {
        retainedWAL.record(bytes)
        let warn = bytes > limit && !retainedWarned
        retainedWarned = bytes > limit
        return warn
    }
}
