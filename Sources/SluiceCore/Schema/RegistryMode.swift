/// Whether a subject (or the whole registry) accepts changes (Confluent Schema Registry's modes).
///
/// - `READWRITE`: the default; registrations and deletes are allowed.
/// - `READONLY`: registrations and deletes are refused with error 42205.
/// - `READONLY_OVERRIDE`: as `READONLY` (Confluent uses it to override a context's mode).
/// - `IMPORT` (registering schemas under given ids) is not supported; setting it is refused.
public enum RegistryMode: String, Sendable, CaseIterable, Codable {
    case readWrite = "READWRITE"
    case readOnly = "READONLY"
    case readOnlyOverride = "READONLY_OVERRIDE"

    /// The registry-wide mode when nothing is configured.
    public static let `default` = RegistryMode.readWrite

    public var allowsWrites: Bool { self == .readWrite }
}
