import Foundation

/// What a component factory may use while building (no I/O happens at build time).
public struct ComponentBuildContext: Sendable {
    /// Directory relative paths resolve against (the working directory).
    public var baseDirectory: String
    public var pipeline: String
    /// How `s3://` paths are reached: the file's `storage:` with the pipeline's overrides.
    public var storage: StorageConfig

    public init(baseDirectory: String, pipeline: String, storage: StorageConfig = StorageConfig()) {
        self.baseDirectory = baseDirectory
        self.pipeline = pipeline
        self.storage = storage
    }

    /// `path` made absolute against ``baseDirectory``; URLs (`s3://bucket/key`) stay as they are.
    public func resolve(_ path: String) -> String {
        path.hasPrefix("/") || path.contains("://") ? path : (baseDirectory as NSString).appendingPathComponent(path)
    }
}

/// Describes (``spec``) and builds one kind of component.
public struct ComponentFactory<Component: Sendable>: Sendable {
    /// The one declaration of the component's options, checked before ``build`` runs.
    public var spec: ComponentSpec
    /// Decodes options from the config and validates them, without I/O.
    public var build: @Sendable (ComponentConfig, ComponentBuildContext) throws -> Component
    /// Rules across the pipelines of a file that this kind of component owns (one push stream
    /// feeds one pipeline), checked by every command that loads the file, `validate` included.
    public var validatePlans: (@Sendable ([PipelinePlan]) -> [PlanProblem])?

    /// The key users write: `file`, `ndjson`, `postgres`.
    public var type: String { spec.type }

    public init(
        spec: ComponentSpec, validatePlans: (@Sendable ([PipelinePlan]) -> [PlanProblem])? = nil,
        build: @escaping @Sendable (ComponentConfig, ComponentBuildContext) throws -> Component
    ) {
        self.spec = spec
        self.validatePlans = validatePlans
        self.build = build
    }
}

/// A problem a component's ``ComponentFactory/validatePlans`` found in a file's pipelines.
public struct PlanProblem: Sendable {
    /// The pipeline, and the key path below it (`source.http.stream`).
    public var pipeline: String
    public var keyPath: String
    public var message: String

    public init(pipeline: String, keyPath: String, message: String) {
        self.pipeline = pipeline
        self.keyPath = keyPath
        self.message = message
    }
}

public typealias SourceFactory = ComponentFactory<any Source>
public typealias SinkFactory = ComponentFactory<any Sink>

/// The set of components a binary knows. `SluiceConnectors` holds the one list of built-ins.
public struct ComponentRegistry: Sendable {
    public private(set) var sources: [SourceFactory] = []
    public private(set) var sinks: [SinkFactory] = []
    /// The kinds of state store, in the order they are asked whether they handle a location.
    public private(set) var stateBackends: [StateBackend] = []

    public init() {}

    public mutating func register(source: SourceFactory) { sources.append(source) }
    public mutating func register(sink: SinkFactory) { sinks.append(sink) }
    public mutating func register(state: StateBackend) { stateBackends.append(state) }

    func build<C>(
        _ config: ComponentConfig, from factories: [ComponentFactory<C>], kind: String,
        context: ComponentBuildContext
    ) throws -> C {
        guard let factory = factories.first(where: { $0.type == config.type }) else {
            let known = factories.map(\.type)
            var message = "unknown \(kind) type '\(config.type)'"
            if let s = NameSuggestion.closest(to: config.type, in: known) { message += "; did you mean '\(s)'?" }
            message += " (known \(kind)s: \(known.joined(separator: ", ")))"
            var e = config.error(message)
            e.keyPath = YAMLNodeDecoding.render(config.path)
            throw e
        }
        try config.check(against: factory.spec)
        return try factory.build(config, context)
    }

    public func buildSource(_ config: ComponentConfig, context: ComponentBuildContext) throws -> any Source {
        try build(config, from: sources, kind: "source", context: context)
    }

    /// The spec of the source (or sink) type `type`.
    public func sourceSpec(_ type: String) -> ComponentSpec? { sources.first { $0.type == type }?.spec }
    public func sinkSpec(_ type: String) -> ComponentSpec? { sinks.first { $0.type == type }?.spec }

    /// What every component's ``ComponentFactory/validatePlans`` finds in `plans`.
    public func problems(in plans: [PipelinePlan]) -> [PlanProblem] {
        sources.compactMap(\.validatePlans).flatMap { $0(plans) } + sinks.compactMap(\.validatePlans).flatMap { $0(plans) }
    }

    public func buildSink(_ config: ComponentConfig, context: ComponentBuildContext) throws -> any Sink {
        try build(config, from: sinks, kind: "sink", context: context)
    }
}
