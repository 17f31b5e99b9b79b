import Foundation
import Synchronization

/// Starts child processes of the test process one at a time, and makes their pipes under the
/// same lock.
///
/// The tests run in parallel in one process, and start thousands of children (`sluice`, `psql`,
/// servers). On Linux, Foundation's `Process.run()` emulates close-on-exec: it lists the
/// descriptors open when it builds the spawn's file actions and closes those in the child. A
/// pipe or socket pair that another thread creates after that list and before the spawn leaks
/// into the child (Foundation makes both without close-on-exec). A leaked pipe end keeps another
/// test reading to end-of-file until that child exits; a leaked end of the socket pair by which
/// Foundation learns that a child exited hides that exit from `waitUntilExit()`. If the child is
/// a server that lives as long as its test, those waits can last until the run is stopped.
/// Making pipes and starting processes only under this lock closes that window.
public enum ChildProcesses {
    private static let lock = Mutex(())

    /// A new pipe, made while no child is being started.
    public static func pipe() -> Pipe {
        lock.withLock { _ in Pipe() }
    }

    /// `process.run()`, while no other child is being started and no pipe made.
    public static func run(_ process: Process) throws {
        try lock.withLock { _ in try process.run() }
    }
}
