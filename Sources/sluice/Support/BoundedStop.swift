import Dispatch
import Foundation
import Logging

/// Makes stopping bounded. The first SIGTERM or SIGINT starts the graceful stop (the service
/// group's: pipelines commit what they can); if the process is still there `timeout` later
/// (a dependency that does not answer, a commit retried forever, a hang at exit), or at a
/// second signal, it exits at once. That is safe: every commit is atomic, and what was not
/// committed is read again on the next start.
///
/// Signal sources on a queue of their own, not tasks: they must work when every task is stuck.
final class BoundedStop: @unchecked Sendable {
    private let queue = DispatchQueue(label: "sluice.bounded-stop")
    private var sources: [any DispatchSourceSignal] = []
    /// Only touched on `queue`.
    private var signals = 0
    private let timeout: Duration
    private let logger: Logger

    init(timeout: Duration, logger: Logger) {
        self.timeout = timeout
        self.logger = logger
        for signal in [SIGTERM, SIGINT] {
            // As the service group does: the default action must not end the process first.
            Glibc.signal(signal, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: signal, queue: queue)
            source.setEventHandler { [weak self] in self?.received(signal) }
            source.resume()
            sources.append(source)
        }
    }

    deinit {
        for source in sources { source.cancel() }
    }

    private func received(_ signal: Int32) {
        signals += 1
        if signals > 1 {
            logger.warning("a second signal: exiting now, without waiting for the graceful stop; what was not committed is read again on the next start")
            _exit(128 + signal)
        }
        let seconds = Double(timeout.components.seconds) + Double(timeout.components.attoseconds) / 1e18
        queue.asyncAfter(deadline: .now() + seconds) { [logger, timeout] in
            logger.error(
                "did not stop within the shutdown timeout; exiting now. What was not committed is read again on the next start",
                metadata: ["shutdown_timeout": "\(timeout)"])
            _exit(1)
        }
    }
}
