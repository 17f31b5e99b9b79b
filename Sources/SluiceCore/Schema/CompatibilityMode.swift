/// How a new version of a subject's schema must relate to the earlier ones (Confluent Schema Registry semantics).
///
/// - `BACKWARD`: readers using the new schema can read data written with the latest one.
/// - `FORWARD`: readers using the latest schema can read data written with the new one.
/// - `FULL`: both. The `_TRANSITIVE` variants check against every earlier version, not only the latest.
/// - `NONE`: no check.
public enum CompatibilityMode: String, Sendable, CaseIterable, Codable {
    case none = "NONE"
    case backward = "BACKWARD"
    case backwardTransitive = "BACKWARD_TRANSITIVE"
    case forward = "FORWARD"
    case forwardTransitive = "FORWARD_TRANSITIVE"
    case full = "FULL"
    case fullTransitive = "FULL_TRANSITIVE"

    /// The registry-wide default when nothing is configured (as in Confluent's registry).
    public static let `default` = CompatibilityMode.backward

    public var isTransitive: Bool { self == .backwardTransitive || self == .forwardTransitive || self == .fullTransitive }
    var checksBackward: Bool { self == .backward || self == .backwardTransitive || self == .full || self == .fullTransitive }
    var checksForward: Bool { self == .forward || self == .forwardTransitive || self == .full || self == .fullTransitive }
}
