import Foundation

/// A pipeline ready to run: built components and resolved settings.
public struct PipelinePlan: Sendable {
    public var name: String
    public var source: any Source
    public var sink: any Sink
    public var settings: PipelineSettings
    /// What the source and the sink can do beyond reading and writing (from their specs).
    public var capabilities: Set<ComponentCapability>
    /// Where the pipeline's dead letters are copied besides the state store (`dead_letter.sink`).
    public var deadLetterSink: (any Sink)?
    /// The pipeline's requests to APIs and object storage, counted for cost accounting.
    public let requests = RequestTally()

    public init(
        name: String, source: any Source, sink: any Sink, settings: PipelineSettings = PipelineSettings(),
        capabilities: Set<ComponentCapability> = [], deadLetterSink: (any Sink)? = nil
    ) {
        self.name = name
        self.source = source
        self.sink = sink
        self.settings = settings
        self.capabilities = capabilities
        self.deadLetterSink = deadLetterSink
    }
}

/// A loaded, validated configuration file.
public struct LoadedConfig: Sendable {
    public var file: String
    /// The state location (`.sluice/state.db` when not set).
    public var state: String
    public var pipelines: [PipelinePlan]
    /// The `serve:` section (nil when absent).
    public var serve: ServeConfig?
    /// `shutdown_timeout` (default 30s).
    public var shutdownTimeout: Duration = .seconds(30)

    public func pipeline(named name: String) -> PipelinePlan? { pipelines.first { $0.name == name } }
}

/// Reads, decodes and validates configuration files. Does no I/O beyond reading the file.
public struct ConfigLoader: Sendable {
    public var registry: ComponentRegistry
    public var environment: [String: String]
    public var baseDirectory: String

    public init(
        registry: ComponentRegistry,
        environment: [String: String] = ProcessInfo.processInfo.environment,
        baseDirectory: String = FileManager.default.currentDirectoryPath
    ) {
        self.registry = registry
        self.environment = environment
        self.baseDirectory = baseDirectory
    }

    /// Loads one file. Throws ``ConfigError`` for every problem, located. A file without
    /// pipelines is refused unless `requirePipelines` is false (`sluice serve` with only a
    /// `serve:` section serves the schema registry alone).
    public func load(file: String, requirePipelines: Bool = true) throws -> LoadedConfig {
        guard let data = FileManager.default.contents(atPath: file) else {
            let exists = FileManager.default.fileExists(atPath: file)
            throw ConfigError(
                file: file, line: nil, column: nil, keyPath: "",
                message: exists
                    ? "cannot read the file (check its permissions)"
                    : "no such file; pass the path of a pipeline YAML file (see `sluice run --help`)")
        }
        guard let text = String(data: data, encoding: .utf8) else {
            throw ConfigError(file: file, line: nil, column: nil, keyPath: "", message: "the file is not valid UTF-8")
        }
        return try load(text: text, file: file, requirePipelines: requirePipelines)
    }

    public func load(text: String, file: String, requirePipelines: Bool = true) throws -> LoadedConfig {
        let decoding = YAMLNodeDecoding(file: file, environment: environment)
        let config = try decoding.decode(SluiceConfig.self, from: text)
        if config.pipelines.isEmpty && requirePipelines {
            throw ConfigError(
                file: file, line: nil, column: nil, keyPath: "pipelines",
                message: (config.hasPipelinesKey ? "no pipelines are defined" : "missing required key 'pipelines'")
                    + "; this command runs pipelines (a file with only `serve:` and `state:` is for `sluice serve`, which then serves the schema registry alone)"
            )
        }
        var plans: [PipelinePlan] = []
        for (name, p) in config.pipelines {
            let context = ComponentBuildContext(
                baseDirectory: baseDirectory, pipeline: name, storage: (config.storage ?? StorageConfig()).overridden(by: p.storage))
            guard name.range(of: #"^[A-Za-z0-9_.-]+$"#, options: .regularExpression) != nil else {
                throw ConfigError(
                    file: file, line: p.source.line.map { $0 - 2 }, column: nil, keyPath: "pipelines.\(name)",
                    message: "pipeline names may use letters, digits, '_', '-' and '.' only")
            }
            let source = try registry.buildSource(p.source, context: context)
            let sink = try registry.buildSink(p.sink, context: context)
            if let problem = sink.incompatibility(with: source) {
                throw ConfigError(
                    file: file, line: p.sink.line, column: nil, keyPath: "pipelines.\(name).sink.\(problem.key)",
                    message: problem.message)
            }
            var settings = try PipelineSettings(p, file: file)
            settings.alerts = (config.alerts ?? AlertsConfig()).overridden(by: p.alerts)
            settings.pricing = (config.pricing ?? PricingConfig()).overridden(by: p.pricing)
            if let timeout = config.shutdownTimeout { settings.shutdownTimeout = timeout }
            settings.eventTime = p.eventTime
            if settings.dedupe == nil, let key = source.implicitDedupeKey {
                settings.dedupe = DedupeSettings(key: key, ttl: .seconds(7 * 86_400))
            }
            let capabilities = (registry.sourceSpec(p.source.type)?.capabilities ?? []).union(registry.sinkSpec(p.sink.type)?.capabilities ?? [])
            let deadLetterSink = try p.deadLetter?.sink.map { try registry.buildSink($0, context: context) }
            if let deadLetterSink, let why = deadLetterSink.replacesOutputEachPass ?? (deadLetterSink.takesAnyRecords ? nil : "mode") {
                throw ConfigError(
                    file: file, line: p.deadLetter?.sink?.line, column: nil, keyPath: "pipelines.\(name).dead_letter.sink",
                    message: "a dead-letter sink appends the dead letters: this sink's `\(why)` does not (use append, or a file sink)")
            }
            plans.append(PipelinePlan(name: name, source: source, sink: sink, settings: settings, capabilities: capabilities, deadLetterSink: deadLetterSink))
        }
        if let problem = registry.problems(in: plans).first {
            let line = config.pipelines.first { $0.name == problem.pipeline }?.config.source.line
            throw ConfigError(file: file, line: line, column: nil, keyPath: "pipelines.\(problem.pipeline).\(problem.keyPath)", message: problem.message)
        }
        let state =
            config.state.map { $0.contains("://") ? $0 : ComponentBuildContext(baseDirectory: baseDirectory, pipeline: "").resolve($0) }
            ?? ComponentBuildContext(baseDirectory: baseDirectory, pipeline: "").resolve(".sluice/state.db")
        for (plan, (_, p)) in zip(plans, config.pipelines) {
            if plan.deadLetterSink != nil, state.hasPrefix("postgres") {
                throw ConfigError(
                    file: file, line: p.deadLetter?.sink?.line, column: nil, keyPath: "pipelines.\(plan.name).dead_letter.sink",
                    message:
                        "a dead-letter sink needs the embedded (SQLite) state store for now: with a shared store, the dead letters of workers committing at once can appear out of id order, and one could be skipped"
                )
            }
            if let missing = registry.missingStateFeatures(of: plan, sourceType: p.source.type, sinkType: p.sink.type, location: state).first {
                throw ConfigError(
                    file: file, line: missing.key.hasPrefix("sink") ? p.sink.line : p.source.line, column: nil,
                    keyPath: "pipelines.\(plan.name).\(missing.key)", message: missing.message)
            }
        }
        var serve = config.serve
        if let tls = serve?.tls {
            let base = ComponentBuildContext(baseDirectory: baseDirectory, pipeline: "")
            serve?.tls = ServeConfig.TLSFiles(certificate: base.resolve(tls.certificate), privateKey: base.resolve(tls.privateKey))
        }
        var loaded = LoadedConfig(file: file, state: state, pipelines: plans, serve: serve)
        if let timeout = config.shutdownTimeout { loaded.shutdownTimeout = timeout }
        return loaded
    }
}
