import Synchronization

/// Asks a running pipeline to commit what it holds now, instead of when its sink would next
/// commit (a file sink's `max_file_age`, say). `sluice serve` requests it of its push pipelines
/// when it drains on SIGTERM, so the records it answered 202 are committed within moments.
///
/// Once requested it stays requested: every later batch is committed as soon as it is written.
public final class CommitRequest: Sendable {
    private let requested = Atomic<Bool>(false)

    public init() {}

    /// Asks for the commit (from any thread; the pipeline sees it within ``pollInterval``).
    public func request() { requested.store(true, ordering: .releasing) }

    /// Whether ``request()`` was called.
    public var isRequested: Bool { requested.load(ordering: .acquiring) }

    /// How long a pipeline holding unwritten or uncommitted records waits, at most, before it
    /// looks again (a look that finds no request changes nothing: the batch still goes when due).
    static let pollInterval: Duration = .milliseconds(250)
}
