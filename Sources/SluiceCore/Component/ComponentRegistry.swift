import Foundation

/// What a component factory may use while building (no I/O happens at build time).
public struct ComponentBuildContext: Sendable {
    /// Directory relative paths resolve against (the working directory).
    public var baseDirectory: String
    public var pipeline: String

    public init(baseDirectory: String, pipeline: String) {
        self.baseDirectory = baseDirectory
        self.pipeline = pipeline
    }

    /// `path` made absolute against ``baseDirectory``.
    public func resolve(_ path: String) -> String {
        path.hasPrefix("/") ? path : (baseDirectory as NSString).appendingPathComponent(path)
    }
}

/// Describes and builds one kind of component. The description doubles as `--help` text.
public struct ComponentFactory<Component: Sendable>: Sendable {
    /// The key users write: `file`, `ndjson`, `postgres`.
    public var type: String
    /// One line saying what it does.
    public var summary: String
    /// A YAML snippet showing its options.
    public var example: String
    /// Decodes options from the config and validates them, without I/O.
    public var build: @Sendable (ComponentConfig, ComponentBuildContext) throws -> Component

    public init(type: String, summary: String, example: String,
                build: @escaping @Sendable (ComponentConfig, ComponentBuildContext) throws -> Component) {
        self.type = type
        self.summary = summary
        self.example = example
        self.build = build
    }
}

public typealias SourceFactory = ComponentFactory<any Source>
public typealias SinkFactory = ComponentFactory<any Sink>

/// The set of components a binary knows. `SluiceConnectors` holds the one list of built-ins.
public struct ComponentRegistry: Sendable {
    public private(set) var sources: [SourceFactory] = []
    public private(set) var sinks: [SinkFactory] = []

    public init() {}

    public mutating func register(source: SourceFactory) { sources.append(source) }
    public mutating func register(sink: SinkFactory) { sinks.append(sink) }

    func build<C>(_ config: ComponentConfig, from factories: [ComponentFactory<C>], kind: String,
                  context: ComponentBuildContext) throws -> C {
        guard let factory = factories.first(where: { $0.type == config.type }) else {
            let known = factories.map(\.type)
            var message = "unknown \(kind) type '\(config.type)'"
            if let s = NameSuggestion.closest(to: config.type, in: known) { message += "; did you mean '\(s)'?" }
            message += " (known \(kind)s: \(known.joined(separator: ", ")))"
            var e = config.error(message)
            e.keyPath = YAMLNodeDecoding.render(config.path)
            throw e
        }
        return try factory.build(config, context)
    }

    public func buildSource(_ config: ComponentConfig, context: ComponentBuildContext) throws -> any Source {
        try build(config, from: sources, kind: "source", context: context)
    }

    public func buildSink(_ config: ComponentConfig, context: ComponentBuildContext) throws -> any Sink {
        try build(config, from: sinks, kind: "sink", context: context)
    }
}
