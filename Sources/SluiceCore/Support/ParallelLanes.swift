import Dispatch
import Foundation
import Synchronization

#if os(Linux)
    import CLinux
#endif

/// Runs independent pieces of CPU work on several threads at once, for code that is
/// synchronous by nature (encoding the columns of one batch, parsing the chunks of one file).
///
/// `run` hands the items to `lanes` threads (the caller's and pool threads), each taking the
/// next item when it finishes one, heaviest first as the caller orders them; it returns once
/// every item is done. Each lane has an index in `0..<lanes`, so a caller can give every lane its
/// own scratch (a compressor, buffers) that no other lane touches.
public enum ParallelLanes {
    /// Threads a component uses unless told otherwise: ``available``, at most 8 (each one holds
    /// buffers; past eight the memory buys little here).
    public static var defaultThreads: Int { min(available, 8) }

    /// The processors this process may run on: its CPU affinity, so a run pinned with
    /// `taskset -c 0` gets one.
    public static var available: Int {
        #if os(Linux)
            // Foundation's count ignores the affinity mask; the mask is what the process may use.
            let count = Int(sluice_affinity_processor_count())
            if count > 0 { return count }
        #endif
        return max(1, ProcessInfo.processInfo.activeProcessorCount)
    }

    /// Calls `body(item, lane)` for each item of `order` on up to `lanes` threads; rethrows the
    /// first error (items not yet started are skipped once one has failed).
    ///
    /// `body` must touch only what belongs to its item and its lane: that is the caller's
    /// promise which lets non-Sendable state cross into the lanes.
    public static func run(
        _ order: [Int], lanes: Int, _ body: (_ item: Int, _ lane: Int) throws -> Void
    ) throws {
        let lanes = min(lanes, order.count)
        if lanes <= 1 {
            for item in order { try body(item, 0) }
            return
        }
        let shared = Shared()
        try withoutActuallyEscaping(body) { body in
            let work = UnsafeLaneBody(body: body)
            DispatchQueue.concurrentPerform(iterations: lanes) { lane in
                while let index = shared.take(limit: order.count) {
                    do {
                        try work.body(order[index], lane)
                    } catch {
                        shared.fail(error)
                        return
                    }
                }
            }
            if let error = shared.error { throw error }
        }
    }

    /// The next item to take and the first failure, shared by the lanes.
    private final class Shared: Sendable {
        private let state = Mutex<(next: Int, error: (any Error)?)>((0, nil))

        func take(limit: Int) -> Int? {
            state.withLock { s in
                guard s.error == nil, s.next < limit else { return nil }
                defer { s.next += 1 }
                return s.next
            }
        }

        func fail(_ error: any Error) {
            state.withLock { s in if s.error == nil { s.error = error } }
        }

        var error: (any Error)? { state.withLock { $0.error } }
    }

    /// The caller's closure, sent to the lanes: ``run(_:lanes:_:)`` documents what it may touch.
    private struct UnsafeLaneBody: @unchecked Sendable {
        let body: (Int, Int) throws -> Void
    }
}
