import Synchronization

/// A one-way stop signal that a periodic loop can sleep on: ``sleep(until:)`` returns at its
/// deadline or as soon as the signal is set (or the task is cancelled), whichever comes first.
///
/// Loops that instead poll a flag between short sleeps notice a stop only at their next poll,
/// which added up to that poll's length to the end of every finite run.
public final class StopSignal: Sendable {
    private struct State {
        var isSet = false
        var nextWaiter = 0
        var waiters: [Int: CheckedContinuation<Void, Never>] = [:]
    }

    private let state = Mutex(State())

    public init() {}

    /// Whether ``set()`` has been called.
    public var isSet: Bool { state.withLock { $0.isSet } }

    /// Sleepers waiting now (tests wait for one before they set or cancel).
    var waiting: Int { state.withLock { $0.waiters.count } }

    /// Sets the signal and wakes every sleeper; later calls do nothing.
    public func set() {
        let woken = state.withLock { s -> [CheckedContinuation<Void, Never>] in
            guard !s.isSet else { return [] }
            s.isSet = true
            defer { s.waiters = [:] }
            return Array(s.waiters.values)
        }
        for waiter in woken { waiter.resume() }
    }

    /// Sleeps until `deadline`, the signal being set, or the task being cancelled.
    public func sleep(until deadline: ContinuousClock.Instant) async {
        guard !isSet, !Task.isCancelled, ContinuousClock.now < deadline else { return }
        await withTaskGroup(of: Void.self) { group in
            group.addTask { try? await Task.sleep(until: deadline) }
            group.addTask { await self.wait() }
            await group.next()
            group.cancelAll()
        }
    }

    /// Sleeps for `duration` at most; see ``sleep(until:)``.
    public func sleep(for duration: Duration) async {
        await sleep(until: .now + duration)
    }

    /// Waits until the signal is set or the task is cancelled.
    func wait() async {
        let id = state.withLock { s -> Int in
            s.nextWaiter += 1
            return s.nextWaiter
        }
        await withTaskCancellationHandler {
            await withCheckedContinuation { (waiter: CheckedContinuation<Void, Never>) in
                // Checked under the lock: a cancellation handler that ran before this found no
                // waiter to resume, so the cancellation must be seen here.
                let now = state.withLock { s -> Bool in
                    if s.isSet || Task.isCancelled { return true }
                    s.waiters[id] = waiter
                    return false
                }
                if now { waiter.resume() }
            }
        } onCancel: {
            state.withLock { $0.waiters.removeValue(forKey: id) }?.resume()
        }
    }
}
