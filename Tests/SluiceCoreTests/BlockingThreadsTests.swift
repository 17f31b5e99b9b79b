import Foundation
import SluiceTesting
import Synchronization
import Testing

/// The executor the suites that block run on: they must really run there, and a thread they
/// block must not hold up another task on it.
@Suite(.offCooperativePool) struct BlockingThreadsTests {
    @Test func theSuiteRunsOnTheExecutorsThreads() async throws {
        #expect(threadName() == BlockingThreadsExecutor.threadName, "\(threadName())")
        // Child tasks were seen on the cooperative pool once, in a loaded full run (never
        // alone): the preference is the test body's, not a promise for everything it starts.
    }

    @Test func tasksBlockingEveryThreadDoNotHoldUpTheNext() async throws {
        let gate = Gate()
        let blockers = ProcessInfo.processInfo.activeProcessorCount + 2  // more than the cooperative pool has
        // An executor of its own: the shared one may be at its bound with the other suites' waits.
        let executor = BlockingThreadsExecutor(maxThreads: blockers + 1)
        try await withTaskExecutorPreference(executor) { try await blockEveryThread(blockers, gate) }
        // Every blocker was waiting at once: on a pool that did not grow, the first ones would
        // have given up before the last could start. (A condition, not a time: a loaded full
        // run once took 69 s to start four threads.)
        #expect(gate.gaveUp == 0, "\(gate.gaveUp) of \(blockers) blocking tasks gave up before every one of them held a thread")
    }

    func blockEveryThread(_ blockers: Int, _ gate: Gate) async throws {
        try await withThrowingTaskGroup(of: Void.self) { group in
            for _ in 0..<blockers {
                group.addTask {
                    gate.arrive()
                    // A synchronous wait, as a test waiting on a child process does; bounded, so
                    // that on a pool that does not grow this test fails instead of hanging.
                    let deadline = ContinuousClock.now + .seconds(240)
                    while !gate.isOpen && ContinuousClock.now < deadline { usleep(1000) }
                    if !gate.isOpen { gate.giveUp() }
                }
            }
            // Every blocker holds a thread at once, and this task still runs.
            while gate.arrived < blockers { try await Task.sleep(for: .milliseconds(1)) }
            gate.open()
            try await group.waitForAll()
        }
    }
}

/// The name of the thread running the caller (a synchronous function: `Thread.current` is
/// unavailable in async code, which can move between threads).
private func threadName() -> String { Thread.current.name ?? "unnamed" }

/// Counts the blocking tasks that started, and tells them when to stop.
final class Gate: Sendable {
    private let state = Mutex((arrived: 0, isOpen: false, gaveUp: 0))
    var arrived: Int { state.withLock { $0.arrived } }
    var isOpen: Bool { state.withLock { $0.isOpen } }
    var gaveUp: Int { state.withLock { $0.gaveUp } }
    func arrive() { state.withLock { $0.arrived += 1 } }
    func open() { state.withLock { $0.isOpen = true } }
    func giveUp() { state.withLock { $0.gaveUp += 1 } }
}
