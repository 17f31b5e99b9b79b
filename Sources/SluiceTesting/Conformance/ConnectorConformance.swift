import Foundation
import Logging
import SluiceCore

/// A contract a connector broke, with what was expected and what happened.
public struct ConformanceFailure: Error, CustomStringConvertible {
    public var component: String
    public var check: String
    public var detail: String

    public var description: String { "\(component) fails '\(check)': \(detail)" }
}

/// What every connector's tests share: building a component from configuration text with the
/// real registry, and reading ids back from record batches.
public enum ConformanceSupport {
    public static let pipeline = "conformance"

    /// Builds the pipeline `conformance` from `source:` and `sink:` mappings (flow YAML, one line each).
    public static func plan(registry: ComponentRegistry, source: String, sink: String, state: String = ".sluice/state.db") throws -> PipelinePlan {
        let text = """
            state: \(state)
            pipelines:
              \(pipeline):
                source:
                  \(source)
                sink:
                  \(sink)
            """
        let loader = ConfigLoader(registry: registry, environment: ProcessInfo.processInfo.environment, baseDirectory: "/tmp")
        guard let plan = try loader.load(text: text, file: "conformance.yaml").pipelines.first else {
            throw ConformanceFailure(component: source, check: "configuration", detail: "no pipeline was built")
        }
        return plan
    }

    /// The integer ids of column `id` (integers, or text holding integers), in order.
    public static func ids(_ batch: RecordBatch) -> [Int] {
        guard let column = batch.column(named: "id") else { return [] }
        return (0..<batch.count).compactMap { row in
            switch column.value(at: row) {
            case let .int64(v): Int(v)
            case let .string(s): Int(s)
            case let .decimal(v, 0): Int(exactly: v)
            default: nil
            }
        }
    }

    static var logger: Logger {
        var logger = Logger(label: "conformance")
        logger.logLevel = .warning
        return logger
    }
}

/// Checks that apply to every registered component from its spec alone, with no server: a
/// configuration error names the file, the line and the key.
public enum ConfigConformance {
    /// An undeclared key and each missing required option are refused with a location.
    /// `kind` is `source` or `sink`; `valid` are the options of a configuration that loads.
    public static func check(
        registry: ComponentRegistry, kind: String, spec: ComponentSpec,
        valid: [(String, String)], environment: [String: String]
    ) throws {
        func load(_ options: [(String, String)]) throws {
            let flow = "{ " + options.map { "\($0.0): \($0.1)" }.joined(separator: ", ") + " }"
            let other = kind == "source" ? "sink:\n      blackhole: {}" : "source:\n      file: { path: \"in/*.csv\" }"
            let text = "pipelines:\n  p:\n    \(kind):\n      \(spec.type): \(flow)\n    \(other)\n"
            _ = try ConfigLoader(registry: registry, environment: environment, baseDirectory: "/tmp").load(text: text, file: "p.yaml")
        }
        func expectLocated(_ options: [(String, String)], mentioning key: String, check: String) throws {
            do {
                try load(options)
            } catch let error as ConfigError {
                guard error.file == "p.yaml", error.line != nil, "\(error.keyPath) \(error.message)".contains(key) else {
                    throw ConformanceFailure(
                        component: "\(kind) \(spec.type)", check: check,
                        detail: "the error is not located or does not name '\(key)': \(error)")
                }
                return
            }
            throw ConformanceFailure(component: "\(kind) \(spec.type)", check: check, detail: "the configuration was accepted")
        }
        try load(valid)
        try expectLocated(valid + [("conformance_unknown_key", "1")], mentioning: "conformance_unknown_key", check: "an unknown key is refused")
        let alternatives = Set(spec.alternatives.flatMap { $0 })
        for option in spec.options where option.required && !alternatives.contains(option.name) {
            try expectLocated(valid.filter { $0.0 != option.name }, mentioning: option.name, check: "a missing required option is refused")
        }
    }
}
