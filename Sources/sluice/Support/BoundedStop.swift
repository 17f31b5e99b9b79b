import Dispatch
import Foundation
import Logging

/// Makes stopping bounded. The first SIGTERM or SIGINT starts the graceful stop (the service
/// group's: pipelines commit what they can); if the process is still there `timeout` later
/// (a dependency that does not answer, a commit retried forever, a hang at exit), or at a
/// second signal at least a second after the first (one keypress that a process manager also
/// forwards is one), it exits at once. That is safe: every commit is atomic, and what was not
/// committed is read again on the next start.
///
/// Signal sources on a queue of their own, not tasks: they must work when every task is stuck.
/// They live as long as the process (a signal after the command returned, during a hang at
/// exit, is still handled), so nothing cancels them: the sources hold this object.
final class BoundedStop: @unchecked Sendable {
    private let queue = DispatchQueue(label: "sluice.bounded-stop")
    private var sources: [any DispatchSourceSignal] = []
    /// Only touched on `queue`.
    private var first: DispatchTime?
    private let timeout: Duration
    private let logger: Logger

    /// Starts listening. libdispatch installs its own handler for each signal (as it does for
    /// the service group's sources); until it has, a signal still has its default effect.
    init(timeout: Duration, logger: Logger) {
        self.timeout = timeout
        self.logger = logger
        for signal in [SIGTERM, SIGINT] {
            let source = DispatchSource.makeSignalSource(signal: signal, queue: queue)
            source.setEventHandler { self.received(signal) }
            source.resume()
            sources.append(source)
        }
    }

    private func received(_ signal: Int32) {
        let now = DispatchTime.now()
        guard let first else {
            self.first = now
            let seconds = Double(timeout.components.seconds) + Double(timeout.components.attoseconds) / 1e18
            queue.asyncAfter(deadline: now + seconds) { [logger, timeout] in
                logger.error(
                    "did not stop within the shutdown timeout; exiting now. What was not committed is read again on the next start",
                    metadata: ["shutdown_timeout": "\(timeout)"])
                _exit(1)
            }
            return
        }
        guard now.uptimeNanoseconds - first.uptimeNanoseconds >= 1_000_000_000 else { return }
        logger.warning("a second signal: exiting now, without waiting for the graceful stop; what was not committed is read again on the next start")
        _exit(128 + signal)
    }
}
