import Synchronization

/// The answer a request got, as replayed to repeats of its idempotency key.
public struct RecordedResponse: Sendable, Hashable {
    public var fingerprint: String
    public var status: Int
    public var body: [UInt8]
    /// True when the answer was stored durably (only 2xx answers are).
    public var stored: Bool
    /// True when this is an earlier request's answer, read back from the store.
    public var replayed = false
}

/// Lets one request per idempotency key run at a time: concurrent repeats wait for the first
/// and get its answer, so 100 simultaneous retries ingest once and all see the same response.
public final class IdempotencyGate: Sendable {
    private let running = Mutex<[String: [CheckedContinuation<RecordedResponse, Never>]]>([:])

    public init() {}

    /// Runs `body` for the first request of `key`; a concurrent request of the same key waits and
    /// returns the first one's answer instead (its `fingerprint` tells whether it was the same request).
    public func run(key: String, _ body: () async -> RecordedResponse) async -> (response: RecordedResponse, leader: Bool) {
        let isLeader = running.withLock { map -> Bool in
            if map[key] != nil { return false }
            map[key] = []
            return true
        }
        guard isLeader else {
            let response = await withCheckedContinuation { (c: CheckedContinuation<RecordedResponse, Never>) in
                let late = running.withLock { map -> Bool in
                    guard map[key] != nil else { return true }
                    map[key]!.append(c)
                    return false
                }
                // The leader finished between our two looks: run again as a new leader.
                if late { c.resume(returning: RecordedResponse(fingerprint: "", status: -1, body: [], stored: false)) }
            }
            if response.status == -1 { return await run(key: key, body) }
            return (response, false)
        }
        let response = await body()
        let waiters = running.withLock { map in map.removeValue(forKey: key) ?? [] }
        for w in waiters { w.resume(returning: response) }
        return (response, true)
    }
}
