/// One kind of state store a binary can open (`state:` in a pipeline file), and the features
/// it keeps, so a file is checked against them when it is loaded, before anything opens.
public struct StateBackend: Sendable {
    /// What users call it: `SQLite`, `PostgreSQL`.
    public var name: String
    /// What this kind of store keeps beyond the pipeline state.
    public var features: Set<StateFeature>
    /// Whether a `state:` location names this kind of store.
    public var handles: @Sendable (String) -> Bool
    /// Opens (creating or migrating where needed) the store at a location it handles.
    public var open: @Sendable (String) async throws -> any StateStore
    /// `sluice doctor`'s checks of a store at a location, without opening it for use (which
    /// would create or migrate it): reachable, intact, its schema version known to this binary.
    public var diagnose: @Sendable (String, DiagnosisLimits) async -> [Diagnosis]

    public init(
        name: String, features: Set<StateFeature>, handles: @escaping @Sendable (String) -> Bool,
        open: @escaping @Sendable (String) async throws -> any StateStore,
        diagnose: @escaping @Sendable (String, DiagnosisLimits) async -> [Diagnosis] = { _, _ in [] }
    ) {
        self.name = name
        self.features = features
        self.handles = handles
        self.open = open
        self.diagnose = diagnose
    }
}

extension ComponentRegistry {
    /// The state store kind a `state:` location names (the first registered that handles it).
    public func stateBackend(for location: String) -> StateBackend? {
        stateBackends.first { $0.handles(location) }
    }

    /// Opens the state store at `location`.
    public func openState(_ location: String) async throws -> any StateStore {
        guard let backend = stateBackend(for: location) else {
            throw SluiceError(.configuration, "no state store kind handles '\(Redaction.url(location))'", location: "state")
        }
        return try await backend.open(location)
    }

    /// What `plan` needs of the state store that its store kind does not keep: one message per
    /// missing feature, saying which component needs it and which store kinds keep it.
    func missingStateFeatures(of plan: PipelinePlan, sourceType: String, sinkType: String, location: String) -> [(key: String, message: String)] {
        guard let backend = stateBackend(for: location) else { return [] }
        var needs: [(key: String, who: String, feature: StateFeature)] = []
        for feature in sourceSpec(sourceType)?.requiredState.sorted(by: { $0.rawValue < $1.rawValue }) ?? [] {
            needs.append(("source.\(sourceType)", "the `\(sourceType)` source", feature))
        }
        for feature in sinkSpec(sinkType)?.requiredState.sorted(by: { $0.rawValue < $1.rawValue }) ?? [] {
            needs.append(("sink.\(sinkType)", "the `\(sinkType)` sink", feature))
        }
        if plan.settings.schema != nil { needs.append(("schema", "`schema:`", .schemaRegistry)) }
        return needs.filter { !backend.features.contains($0.feature) }.map { need in
            let keepers = stateBackends.filter { $0.features.contains(need.feature) }.map(\.name)
            var message =
                "\(need.who) needs a state store with a \(need.feature.rawValue); the \(backend.name) state store '\(Redaction.url(location))' has none"
            if !keepers.isEmpty { message += " (use a \(keepers.joined(separator: " or ")) state store: set `state:` accordingly)" }
            return (need.key, message)
        }
    }
}
