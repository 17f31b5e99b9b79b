import Foundation
import Testing

/// A task executor with threads of its own, for tests that block a thread while they wait.
///
/// All the tests run in one process, in parallel, on Swift's cooperative pool, which has one
/// thread per core: two on the CI machine. The end-to-end tests wait on child processes
/// (`sluice`, `psql`, `python3`, DuckDB, test servers) with blocking calls; two of them waiting
/// at once took both threads, and the tests that serve HTTP inside the test process (push
/// endpoint, schema registry, alert receivers) stopped answering until a wait ended. On a
/// loaded CI run their clients timed out (`HTTPClientError.readTimeout`) and time limits ran
/// out, while the suites that caused it passed. Suites that block run here instead, through
/// ``Testing/Trait/offCooperativePool``, and leave the cooperative pool to those that do not.
///
/// The executor starts a thread whenever every thread it has is busy, up to ``maxThreads``.
/// The shared one stops at four per core: the blocked threads also bounded how many child
/// processes ran at once, and without a bound (64 threads) the run started so many that a
/// NATS cluster did not come up within its 30 s and a server under kill tests answered no
/// request between kills.
public final class BlockingThreadsExecutor: TaskExecutor, @unchecked Sendable {
    /// The executor that ``Testing/Trait/offCooperativePool`` uses.
    public static let shared = BlockingThreadsExecutor(maxThreads: max(4, 4 * ProcessInfo.processInfo.activeProcessorCount))

    /// The most threads this executor starts; it never stops one.
    public let maxThreads: Int
    // Everything below is guarded by `condition`: that lock is what makes the class Sendable.
    private let condition = NSCondition()
    private var jobs: [UnownedJob] = []
    private var next = 0
    private var threads = 0
    private var idle = 0

    public init(maxThreads: Int) {
        self.maxThreads = maxThreads
    }

    public func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        condition.lock()
        defer { condition.unlock() }
        jobs.append(job)
        // A thread that was signalled but has not woken yet still counts as idle, and so does
        // the job it will take: more waiting jobs than idle threads means one would wait.
        if jobs.count - next > idle && threads < maxThreads {
            threads += 1
            Thread { [self] in work() }.start()
        }
        condition.signal()
    }

    /// The name of this executor's threads (Linux keeps 15 characters of a thread's name).
    public static let threadName = "sluice-blocking"

    private func work() {
        Thread.current.name = Self.threadName  // set by the thread itself: Linux applies it only then
        condition.lock()
        while true {
            while next == jobs.count {
                idle += 1
                condition.wait()
                idle -= 1
            }
            let job = jobs[next]
            next += 1
            if next == jobs.count {
                jobs.removeAll(keepingCapacity: true)
                next = 0
            }
            condition.unlock()
            job.runSynchronously(on: asUnownedTaskExecutor())
            condition.lock()
        }
    }
}

/// Runs a suite's or a test's work on ``BlockingThreadsExecutor/shared`` instead of the
/// cooperative pool (see there why). Child tasks follow their parent's executor preference.
public struct OffCooperativePoolTrait: SuiteTrait, TestTrait, TestScoping {
    public var isRecursive: Bool { true }

    public func scopeProvider(for test: Test, testCase: Test.Case?) -> Self? { self }

    public func provideScope(
        for test: Test, testCase: Test.Case?, performing function: @Sendable () async throws -> Void
    ) async throws {
        try await withTaskExecutorPreference(BlockingThreadsExecutor.shared) { try await function() }
    }
}

extension Trait where Self == OffCooperativePoolTrait {
    /// The suite blocks threads while it waits (child processes, synchronous I/O): run it on
    /// threads of its own so tests that serve HTTP in this process keep theirs.
    public static var offCooperativePool: Self { Self() }
}
