import Synchronization

/// Whether the push endpoint takes new requests, and how many it is still answering.
///
/// On SIGTERM `sluice serve` starts draining: from then on ``enter()`` refuses every request
/// (the endpoint answers 503), and the server waits until ``inflight`` is 0 and the pipelines
/// have committed everything in the push queue before it stops listening.
public final class PushIntake: Sendable {
    private let state = Mutex<(draining: Bool, inflight: Int)>((false, 0))

    public init() {}

    /// Admits a request unless the server is draining; an admitted request must call ``leave()``.
    /// Checked and counted at once, so no request is admitted after the drain saw none in flight.
    public func enter() -> Bool {
        state.withLock { s in
            guard !s.draining else { return false }
            s.inflight += 1
            return true
        }
    }

    public func leave() { state.withLock { $0.inflight -= 1 } }

    /// Refuses every request from now on.
    public func beginDraining() { state.withLock { $0.draining = true } }

    public var isDraining: Bool { state.withLock { $0.draining } }

    /// Admitted requests not answered yet.
    public var inflight: Int { state.withLock { $0.inflight } }
}
