/// The one declaration of a connector's options: what the strict decoder checks a configuration
/// against before the component's own decoding runs, and what `sluice components` renders as the
/// reference (`docs/reference/`) and as the JSON Schema of the configuration file.
public struct ComponentSpec: Sendable {
    /// The key users write: `file`, `ndjson`, `postgres`.
    public var type: String
    /// One line saying what it does.
    public var summary: String
    /// Every option, in the order the reference lists them.
    public var options: [OptionSpec]
    /// A YAML snippet of a typical configuration (`source:` or `sink:` and below).
    public var example: String
    /// What the component can do beyond reading or writing.
    public var capabilities: Set<ComponentCapability>
    /// The runnable example file under `examples/`, if any.
    public var exampleFile: String?
    /// Groups of options of which exactly one must be given (`table` or `query`).
    public var alternatives: [[String]]
    /// What the state store must keep for this component (the push queue), checked when a file
    /// is loaded against the features of the store its `state:` names.
    public var requiredState: Set<StateFeature>

    public init(
        type: String, summary: String, options: [OptionSpec], example: String,
        capabilities: Set<ComponentCapability> = [], exampleFile: String? = nil, alternatives: [[String]] = [],
        requiredState: Set<StateFeature> = []
    ) {
        self.type = type
        self.summary = summary
        self.options = options
        self.example = example
        self.capabilities = capabilities
        self.exampleFile = exampleFile
        self.alternatives = alternatives
        self.requiredState = requiredState
    }
}

/// What a component can do beyond reading or writing records, for the commands that use it.
public enum ComponentCapability: String, Sendable, CaseIterable {
    /// Fed by `sluice serve` (an HTTP push endpoint), not by `sluice run`.
    case servedByServe = "served_by_serve"
    /// Can re-extract a historical range (`sluice backfill`).
    case backfillable
    /// Reads or writes a queue that `sluice queue` can inspect.
    case queue
    /// Has change-data-capture administration (`sluice cdc`).
    case cdcAdministration = "cdc_administration"
}

/// One option of a component (or of a nested object).
public struct OptionSpec: Sendable {
    public var name: String
    public var type: OptionType
    /// Must be given.
    public var required: Bool
    /// The default as the user would write it (`2s`, `true`, `auto`), or nil.
    public var defaultValue: String?
    /// What it does, in one or two sentences.
    public var description: String
    /// A value as the user would write it in YAML flow style (`"data/*.csv"`, `[id]`).
    public var example: String?
    /// Holds a secret: never logged, and shown as `${ENV_VAR}` in examples.
    public var secret: Bool
    /// Other options this one goes with, as written in YAML (`mode: incremental`).
    public var requires: [String]

    public init(
        _ name: String, _ type: OptionType, required: Bool = false, default defaultValue: String? = nil,
        example: String? = nil, secret: Bool = false, requires: [String] = [], _ description: String
    ) {
        self.name = name
        self.type = type
        self.required = required
        self.defaultValue = defaultValue
        self.description = description
        self.example = example
        self.secret = secret
        self.requires = requires
    }
}

/// The type of an option's value.
public indirect enum OptionType: Sendable {
    case string
    /// A whole number, optionally bounded.
    case integer(ClosedRange<Int>? = nil)
    case number
    case boolean
    /// `250ms`, `30s`, `5m`, `2h`, `7d` or a combination (`1h30m`).
    case duration
    /// `512KB`, `64MB`, `1GB`, or a number of bytes.
    case byteSize
    /// One of the listed words.
    case choice([String])
    /// A list (a single value reads as a list of one).
    case list(OptionType)
    /// A mapping with free keys (`columns: { id: int64 }`).
    case map(OptionType)
    /// A mapping with the listed keys.
    case object([OptionSpec])
    /// Any of the listed shapes.
    case oneOf([OptionType])

    /// How the reference names the type.
    public var displayName: String {
        switch self {
        case .string: "string"
        case let .integer(range): range.map { "integer (\($0.lowerBound)–\($0.upperBound))" } ?? "integer"
        case .number: "number"
        case .boolean: "boolean"
        case .duration: "duration"
        case .byteSize: "size"
        case let .choice(words): words.joined(separator: " \\| ")
        case let .list(element): "list of \(element.displayName)"
        case let .map(value): "map of \(value.displayName)"
        case .object: "object"
        case let .oneOf(types): types.map(\.displayName).joined(separator: " or ")
        }
    }
}
