import Foundation
import SluiceCore
import Synchronization

/// Makes accepted requests durable in groups: every request that arrives while one
/// transaction is being written goes into the next one, so one fsync acknowledges many
/// requests. ``run()`` is the single writer; it runs as a child task of the server.
public final class GroupCommitQueue: Sendable {
    typealias Waiter = CheckedContinuation<PushAppendOutcome, any Error>

    struct State {
        /// Requests waiting for the next transaction, and who waits for each (same order).
        var pending: [PushAppend] = []
        var waiters: [Waiter] = []
        var wakeUp: CheckedContinuation<Void, Never>?
        var stopped = false
    }

    let store: any PushQueueStore
    /// Requests in one transaction, at most.
    let maxGroup: Int
    private let state = Mutex(State())
    private let submittedCount = Atomic<Int>(0)

    /// Requests handed to ``append(_:)`` so far (for tests and diagnostics).
    public var submitted: Int { submittedCount.load(ordering: .relaxed) }

    public init(store: any PushQueueStore, maxGroup: Int = 1024) {
        self.store = store
        self.maxGroup = maxGroup
    }

    /// Appends `request` durably; returns once it is on disk (or was a duplicate).
    public func append(_ request: PushAppend) async throws -> PushAppendOutcome {
        submittedCount.add(1, ordering: .relaxed)
        return try await withCheckedThrowingContinuation { (waiter: Waiter) in
            let (wake, refused) = state.withLock { s -> (CheckedContinuation<Void, Never>?, Bool) in
                if s.stopped { return (nil, true) }
                s.pending.append(request)
                s.waiters.append(waiter)
                defer { s.wakeUp = nil }
                return (s.wakeUp, false)
            }
            if refused {
                waiter.resume(throwing: SluiceError(.unavailable, "the server is shutting down"))
            }
            wake?.resume()
        }
    }

    /// Writes groups until cancelled; then fails whatever is still waiting.
    public func run() async {
        while !Task.isCancelled {
            let (requests, waiters) = state.withLock { s -> ([PushAppend], [Waiter]) in
                if s.pending.count <= maxGroup {
                    // Usually all of them: hand over the arrays instead of copying them.
                    defer {
                        s.pending = []
                        s.waiters = []
                        s.pending.reserveCapacity(64)
                        s.waiters.reserveCapacity(64)
                    }
                    return (s.pending, s.waiters)
                }
                let g = (Array(s.pending.prefix(maxGroup)), Array(s.waiters.prefix(maxGroup)))
                s.pending.removeFirst(maxGroup)
                s.waiters.removeFirst(maxGroup)
                return g
            }
            if requests.isEmpty {
                await withTaskCancellationHandler {
                    await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
                        let resumeNow = state.withLock { s -> Bool in
                            if !s.pending.isEmpty || s.stopped { return true }
                            s.wakeUp = c
                            return false
                        }
                        if resumeNow { c.resume() }
                    }
                } onCancel: {
                    let c = state.withLock { s -> CheckedContinuation<Void, Never>? in
                        s.stopped = true
                        defer { s.wakeUp = nil }
                        return s.wakeUp
                    }
                    c?.resume()
                }
                continue
            }
            do {
                let outcomes = try await store.append(requests)
                guard outcomes.count == requests.count else {
                    // Every waiter must be answered: a store that answers fewer is a bug, said loudly.
                    let error = SluiceError(.internalError, "the push queue answered \(outcomes.count) of \(requests.count) appends")
                    for waiter in waiters { waiter.resume(throwing: error) }
                    continue
                }
                for (waiter, outcome) in zip(waiters, outcomes) { waiter.resume(returning: outcome) }
            } catch  where requests.count > 1 {
                // One request may be the cause (too large for the store, say): write each alone,
                // so it fails by itself and the others go through.
                for (request, waiter) in zip(requests, waiters) {
                    do {
                        waiter.resume(returning: try await store.append([request])[0])
                    } catch {
                        waiter.resume(throwing: error)
                    }
                }
            } catch {
                for waiter in waiters { waiter.resume(throwing: error) }
            }
        }
        let rest = state.withLock { s -> [Waiter] in
            s.stopped = true
            defer {
                s.pending = []
                s.waiters = []
            }
            return s.waiters
        }
        for waiter in rest { waiter.resume(throwing: SluiceError(.unavailable, "the server is shutting down")) }
    }
}
