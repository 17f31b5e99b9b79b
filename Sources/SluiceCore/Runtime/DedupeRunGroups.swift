/// Which stored runs may hold a key: the store's runs through ``through`` cut into groups of
/// consecutive runs with a Bloom filter per group of ``groupKeys`` × 16 bits (2 MiB for the
/// default million keys). A group ends with the run that brings it to half ``groupKeys``
/// (runs of a million keys, as large commits make, are a group each), so a group usually
/// holds between half and one and a half ``groupKeys`` keys: 11 to 32 bits a key.
///
/// A lookup of a key in the store reads every run's row of the key's bucket; a batch of
/// thousands of duplicates (a file sent again) thus reads every stored key. With groups, it
/// reads only the groups whose filter may hold the key, which for a replay is the one group
/// that stored it: what an LSM tree's per-file Bloom filters do.
///
/// A group's filter holds every key live in its runs when they were read, so "absent" is exact
/// for those runs as long as the TTL cutoff never goes back (``Deduplicator`` keeps it so).
/// Keys expire and are swept, but are never added to a run once it is committed (runs are
/// numbered in commit order): a group stays right for its runs. Runs after ``through`` are in
/// no group and are always looked up (``Deduplicator`` reads them into new groups once they
/// hold a group's worth of keys).
struct DedupeRunGroups {
    struct Group {
        /// The runs it covers (runs without live keys included).
        let runs: ClosedRange<Int64>
        let filter: DedupeFilter
        /// The latest acceptance time of its keys (seconds since 1970): once the TTL cutoff
        /// passes it, every key of the group has expired and the group is dropped.
        let latestSeenAt: Double
    }

    /// Keys a group's filter is sized for.
    static let defaultGroupKeys = 1 << 20
    /// The most groups kept: 16 × 2 MiB = 32 MiB, for 8 to 24 million keys. A store holding
    /// more than 16 million when the groups are first read gets none. Once at the bound, the
    /// last group takes the runs read after it: its filter answers maybe more often as it
    /// fills (more of its runs are read), never wrongly.
    static let defaultMaxGroups = 16

    let groupKeys: Int
    let maxGroups: Int
    /// Newest last.
    private(set) var groups: [Group] = []
    /// Runs up to this one are covered by the groups (0: none).
    private(set) var through: Int64 = 0

    /// The group being read (``add(_:)``).
    private var open: OpenGroup?

    private struct OpenGroup {
        let first: Int64
        var last: Int64 = 0
        var filter: DedupeFilter
        var keys = 0
        var latestSeenAt = -Double.infinity

        func closed(through run: Int64) -> Group {
            Group(runs: first...max(first, run), filter: filter, latestSeenAt: latestSeenAt)
        }
    }

    init(groupKeys: Int = Self.defaultGroupKeys, maxGroups: Int = Self.defaultMaxGroups) {
        self.groupKeys = max(1, groupKeys)
        self.maxGroups = max(1, maxGroups)
    }

    /// Bytes the groups' filters take.
    var byteSize: Int { groups.reduce(0) { $0 + $1.filter.byteSize } }

    /// Adds a row read from the store: runs after ``through``, read in (run, bucket) order.
    mutating func add(_ row: DedupeRunRow) {
        precondition(row.run > through, "run \(row.run) is already grouped (through \(through))")
        var current: OpenGroup
        if let taken = open {
            open = nil
            current = taken
            if row.run > current.last, current.keys >= groupKeys / 2, groups.count + 1 < maxGroups {
                // The previous run ended the group.
                groups.append(current.closed(through: current.last))
                current = OpenGroup(first: current.last + 1, filter: DedupeFilter(bytes: groupKeys * 2))
            }
        } else if groups.count >= maxGroups, let last = groups.popLast() {
            // At the bound the last group takes the runs read after it, filter and all.
            current = OpenGroup(first: last.runs.lowerBound, filter: last.filter, keys: groupKeys, latestSeenAt: last.latestSeenAt)
        } else {
            current = OpenGroup(first: through + 1, filter: DedupeFilter(bytes: groupKeys * 2))
        }
        current.last = max(current.last, row.run)
        current.latestSeenAt = max(current.latestSeenAt, row.seenAt)
        for index in 0..<row.count { current.filter.insert(row.hash(at: index)) }
        current.keys += row.count
        open = current
    }

    /// Ends a reading of the store's runs through `run` (the last committed when it started):
    /// the runs after the last row read are covered too (they hold no live key).
    mutating func finish(through run: Int64) {
        guard run > through else { return }
        if let current = open {
            groups.append(current.closed(through: run))
        } else if let last = groups.popLast() {
            groups.append(Group(runs: last.runs.lowerBound...run, filter: last.filter, latestSeenAt: last.latestSeenAt))
        }
        // No row at all (every run expired or swept): the runs hold no live key and need no group.
        open = nil
        through = run
    }

    /// Drops the groups whose keys have all expired at `cutoff` (seconds since 1970).
    mutating func dropExpired(cutoff: Double) {
        groups.removeAll { $0.latestSeenAt < cutoff }
    }

    /// The newest group before `index` (in ``groups``) whose filter may hold `key`; keys in
    /// no group's filter are in no grouped run.
    func group(mayHolding key: DedupeHash, before index: Int) -> Int? {
        var index = min(index, groups.count) - 1
        while index >= 0 {
            if groups[index].filter.mayContain(key) { return index }
            index -= 1
        }
        return nil
    }
}
