import Foundation

/// One finding of `sluice doctor`: what was checked, on what, how it stands, and what to do.
public struct Diagnosis: Sendable, Hashable, Codable {
    /// How a check came out.
    public enum Status: String, Sendable, Hashable, Codable, Comparable {
        case ok, warning, error

        public static func < (a: Status, b: Status) -> Bool { a.rank < b.rank }
        var rank: Int { self == .ok ? 0 : self == .warning ? 1 : 2 }
    }

    /// What was checked, as a stable dotted name: `sink.reachable`, `cdc.slot`, `state.integrity`.
    public var check: String
    /// What it was checked on: `state`, `config`, or a pipeline's name.
    public var subject: String
    public var status: Status
    /// What was found, with the numbers that matter.
    public var message: String
    /// What to do about it (nil when nothing is wrong).
    public var fix: String?
    /// On a state store's `state.schema` finding: whether the store is there and at this
    /// binary's version (only such a store is opened by `sluice doctor`: opening creates or
    /// migrates what is missing).
    public var stateSchema: StateSchema?

    enum CodingKeys: String, CodingKey {
        case check, subject, status, message, fix
        case stateSchema = "state_schema"
    }

    /// A state store's schema against this binary's.
    public enum StateSchema: String, Sendable, Hashable, Codable {
        /// Not created yet: nothing was ever committed.
        case absent
        /// At this binary's version.
        case current
        /// Older (migrations pending), newer, or unreadable.
        case other
    }

    public init(_ check: String, subject: String = "", _ status: Status, _ message: String, fix: String? = nil, stateSchema: StateSchema? = nil) {
        self.check = check
        self.subject = subject
        self.status = status
        self.message = message
        self.fix = fix
        self.stateSchema = stateSchema
    }

    /// An error finding made from a thrown error: its message, and the hint it carries if any.
    public static func failed(_ check: String, subject: String = "", _ what: String, _ error: any Error, fix: String? = nil) -> Diagnosis {
        let text = (error as? SluiceError)?.message ?? "\(error)"
        return Diagnosis(check, subject: subject, .error, "\(what): \(text)", fix: fix)
    }
}

/// The limits `sluice doctor` judges against (each one a flag of the command).
public struct DiagnosisLimits: Sendable {
    /// Warn when a replication slot holds back more WAL than this.
    public var slotLagBytes: Int64 = 1 << 30
    /// Fail when a file system that outputs or state go to has less free space than this.
    public var minFreeBytes: Int64 = 1 << 30
    /// Warn when a pipeline has not committed for this long.
    public var staleAfter: TimeInterval = 24 * 3600
    /// Warn when a dead letter has waited longer than this.
    public var deadLetterAge: TimeInterval = 24 * 3600
    /// Warn when a server's clock differs from this machine's by more than this.
    public var clockSkew: TimeInterval = 5

    public init() {}
}

/// What a component's checks may use: the limits, and what the state store holds for it.
public struct DiagnosisContext: Sendable {
    public var limits: DiagnosisLimits
    /// The pipeline's committed checkpoint (empty if it never committed, or when unknown).
    public var checkpoint: Checkpoint
    /// Whether ``checkpoint`` was read from the state store (false: the store was not opened,
    /// so an empty checkpoint says nothing).
    public var checkpointKnown: Bool

    public init(limits: DiagnosisLimits = DiagnosisLimits(), checkpoint: Checkpoint = Checkpoint(), checkpointKnown: Bool = true) {
        self.limits = limits
        self.checkpoint = checkpoint
        self.checkpointKnown = checkpointKnown
    }
}

/// A source, sink or state store that checks itself more deeply than ``Source/checkReachable()``:
/// the privileges it needs, the server objects it depends on, the space it writes into.
/// `sluice doctor` asks components that conform; the others are checked for reachability.
public protocol Diagnosable: Sendable {
    /// The findings, never throwing: a check that cannot run is itself an error finding.
    func diagnose(_ context: DiagnosisContext) async -> [Diagnosis]
}

/// Free space on file systems, for checks of outputs and state.
public enum FreeSpace {
    /// Bytes available to unprivileged writers on the file system holding `path` (or its nearest
    /// existing parent), nil when it cannot be told.
    public static func available(at path: String) -> Int64? {
        var probe = path.isEmpty ? "." : path
        while !FileManager.default.fileExists(atPath: probe) {
            let parent = (probe as NSString).deletingLastPathComponent
            if parent == probe || parent.isEmpty { probe = "."; break }
            probe = parent
        }
        var s = statvfs()
        guard statvfs(probe, &s) == 0 else { return nil }
        return Int64(s.f_bavail) * Int64(s.f_frsize)
    }

    /// A finding for the space left where `path` lives, judged against `limits.minFreeBytes`.
    public static func diagnose(_ check: String, path: String, what: String, limits: DiagnosisLimits) -> Diagnosis {
        guard let free = available(at: path) else {
            return Diagnosis(check, .warning, "cannot tell the free space for \(what) at \(path)")
        }
        let text = "\(ByteCountFormatter.string(fromByteCount: free, countStyle: .binary)) free for \(what) at \(path)"
        guard free >= limits.minFreeBytes else {
            return Diagnosis(
                check, .error, text + " (below \(ByteCountFormatter.string(fromByteCount: limits.minFreeBytes, countStyle: .binary)))",
                fix: "free space there or move \(what) elsewhere; a full disk pauses the pipeline until space returns")
        }
        return Diagnosis(check, .ok, text)
    }
}
