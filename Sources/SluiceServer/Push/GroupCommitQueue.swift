import Foundation
import SluiceCore
import Synchronization

/// Makes accepted requests durable in groups: every request that arrives while one
/// transaction is being written goes into the next one, so one fsync acknowledges many
/// requests. ``run()`` is the single writer; it runs as a child task of the server.
public final class GroupCommitQueue: Sendable {
    typealias Waiter = CheckedContinuation<PushAppendOutcome, any Error>

    struct State {
        var pending: [(PushAppend, Waiter)] = []
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
                s.pending.append((request, waiter))
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
            let group = state.withLock { s -> [(PushAppend, Waiter)] in
                let n = min(s.pending.count, maxGroup)
                let g = Array(s.pending.prefix(n))
                s.pending.removeFirst(n)
                return g
            }
            if group.isEmpty {
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
            let requests = group.map(\.0)
            do {
                let outcomes = try await store.append(requests)
                for (i, item) in group.enumerated() { item.1.resume(returning: outcomes[i]) }
            } catch  where group.count > 1 {
                // One request may be the cause (too large for the store, say): write each alone,
                // so it fails by itself and the others go through.
                for item in group {
                    do {
                        item.1.resume(returning: try await store.append([item.0])[0])
                    } catch {
                        item.1.resume(throwing: error)
                    }
                }
            } catch {
                for item in group { item.1.resume(throwing: error) }
            }
        }
        let rest = state.withLock { s -> [(PushAppend, Waiter)] in
            s.stopped = true
            defer { s.pending = [] }
            return s.pending
        }
        for item in rest { item.1.resume(throwing: SluiceError(.unavailable, "the server is shutting down")) }
    }
}
