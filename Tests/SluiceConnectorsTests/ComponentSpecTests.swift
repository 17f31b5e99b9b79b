import Foundation
import SluiceConnectors
import SluiceCore
import Testing

/// Every registered component's spec agrees with its decoder: the spec is what users are checked
/// against, so a key it declares must decode, and its examples and defaults must be valid values.
@Suite struct ComponentSpecTests {
    let registry = BuiltinComponents.registry

    /// Values for the `${ENV_VAR}`s the examples use.
    func environment(for text: String) -> [String: String] {
        var env: [String: String] = [:]
        var rest = Substring(text)
        while let start = rest.range(of: "${"), let end = rest[start.upperBound...].firstIndex(of: "}") {
            let name = String(rest[start.upperBound..<end]).split(separator: ":").first.map(String.init) ?? ""
            env[name] =
                name.contains("NATS")
                ? "nats://127.0.0.1:4222"
                : name.contains("MYSQL")
                    ? "mysql://u:p@127.0.0.1:3306/db"
                    : name.contains("URL") ? "postgres://u:p@127.0.0.1:5432/db" : "a-secret-value-of-32-bytes-long!"
            rest = rest[rest.index(after: end)...]
        }
        return env
    }

    /// Loads a file with one pipeline whose `kind` (source or sink) is `type` with `options`.
    func load(_ kind: String, _ type: String, _ options: [(String, String)]) throws -> LoadedConfig {
        let flow = "{ " + options.map { "\($0.0): \($0.1)" }.joined(separator: ", ") + " }"
        let other = kind == "source" ? "sink:\n      blackhole: {}" : "source:\n      file: { path: \"in/*.csv\" }"
        let text = """
            pipelines:
              p:
                \(kind):
                  \(type): \(flow)
                \(other)
            """
        let loader = ConfigLoader(registry: registry, environment: environment(for: text), baseDirectory: "/tmp")
        return try loader.load(text: text, file: "p.yaml")
    }

    /// The required options, and the first of each group of alternatives, with their examples.
    func required(_ spec: ComponentSpec) -> [(String, String)] {
        let firsts = Set(spec.alternatives.compactMap(\.first))
        return spec.options.filter { $0.required || firsts.contains($0.name) }.map { ($0.name, $0.example ?? "") }
    }

    /// `base`, `context` and `option` with later values replacing earlier ones of the same key,
    /// and an option that is an alternative replacing the other members of its group.
    func merged(_ spec: ComponentSpec, _ option: OptionSpec, _ value: String, withContext: Bool) -> [(String, String)] {
        var pairs = required(spec)
        let group = spec.alternatives.first { $0.contains(option.name) } ?? []
        pairs.removeAll { group.contains($0.0) }
        for (k, v) in (withContext ? context(option) : []) + [(option.name, value)] {
            pairs.removeAll { $0.0 == k }
            pairs.append((k, v))
        }
        return pairs
    }

    /// The options `option` goes with (``OptionSpec/requires``), as pairs.
    func context(_ option: OptionSpec) -> [(String, String)] {
        option.requires.map { pair in
            let parts = pair.split(separator: ":", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
            return (parts[0], parts.count > 1 ? parts[1] : "")
        }
    }

    var specs: [(kind: String, spec: ComponentSpec)] {
        registry.sources.map { ("source", $0.spec) } + registry.sinks.map { ("sink", $0.spec) }
    }

    @Test func everyRequiredOptionHasAnExampleAndTheyBuildTheComponent() throws {
        for (kind, spec) in specs {
            for o in spec.options where o.required { #expect(o.example != nil, "\(kind) \(spec.type): required '\(o.name)' has no example") }
            #expect(throws: Never.self, "\(kind) \(spec.type)") { try load(kind, spec.type, required(spec)) }
        }
    }

    @Test func everyOptionsExampleAndDefaultDecode() throws {
        for (kind, spec) in specs {
            for o in spec.options where !o.required || !o.requires.isEmpty {
                #expect(o.example != nil, "\(kind) \(spec.type): '\(o.name)' has no example")
                // An example goes with the options it requires; a default stands alone.
                for (value, withContext) in [(o.example, true), (o.defaultValue, false)] {
                    guard let value else { continue }
                    // Defaults are written as a user would; a string default is quoted for YAML.
                    let written = value.first == "\"" || value.first == "{" || value.first == "[" || value.first == "\\" ? value : "\"\(value)\""
                    let literal = Double(value) != nil || ["true", "false"].contains(value) ? value : written
                    #expect(throws: Never.self, "\(kind) \(spec.type): \(o.name): \(literal)") {
                        try load(kind, spec.type, merged(spec, o, literal, withContext: withContext))
                    }
                }
            }
        }
    }

    @Test func everySummaryExampleBuilds() throws {
        for (kind, spec) in specs {
            let body = spec.example.split(separator: "\n").dropFirst().map { "    " + $0 }.joined(separator: "\n")
            let other = kind == "source" ? "    sink:\n      blackhole: {}" : "    source:\n      file: { path: \"in/*.csv\" }"
            let text = "pipelines:\n  p:\n    \(kind):\n\(body)\n\(other)\n"
            let loader = ConfigLoader(registry: registry, environment: environment(for: text), baseDirectory: "/tmp")
            #expect(throws: Never.self, "\(kind) \(spec.type):\n\(text)") { try loader.load(text: text, file: "p.yaml") }
        }
    }

    @Test func anUndeclaredKeyIsRefusedWithTheSpecsSuggestionAndLocation() throws {
        do {
            _ = try load("source", "file", [("path", #""in/*.csv""#), ("infer_row", "10")])
            Issue.record("an unknown key was accepted")
        } catch let e as ConfigError {
            #expect(e.keyPath == "pipelines.p.source.file.infer_row")
            #expect(e.message.contains("did you mean 'infer_rows'?"), "\(e.message)")
            #expect(e.line == 4)
        }
    }

    @Test func aWordOutsideAChoiceAndAValueOfTheWrongShapeAreRefused() throws {
        #expect(throws: ConfigError.self) { try load("source", "file", [("path", #""in/*.csv""#), ("compression", "gzipp")]) }
        do {
            _ = try load("source", "file", [("path", #""in/*.csv""#), ("compression", "gzipp")])
        } catch let e as ConfigError {
            #expect(e.message.contains("did you mean 'gzip'?"), "\(e.message)")
        }
        #expect(throws: ConfigError.self) { try load("source", "file", [("path", "{ a: 1 }")]) }
        #expect(throws: ConfigError.self) { try load("source", "file", [("path", #""in/*.csv""#), ("infer_rows", "0")]) }
    }

    /// A capability the spec declares is the protocol the commands cast to, and the other way round.
    @Test func declaredCapabilitiesMatchTheProtocolsTheComponentsConformTo() throws {
        for (kind, spec) in specs {
            let plan = try #require(try load(kind, spec.type, required(spec)).pipelines.first)
            let component: Any = kind == "source" ? plan.source : plan.sink
            let label = "\(kind) \(spec.type)"
            #expect(spec.capabilities.contains(.queue) == (component is any QueueInspectable), "\(label): queue")
            #expect(spec.capabilities.contains(.cdcAdministration) == (component is any CDCAdministrable), "\(label): cdc_administration")
            #expect(spec.capabilities.contains(.backfillable) == (component is any BackfillableSource), "\(label): backfillable")
            #expect(plan.capabilities.isSuperset(of: spec.capabilities), "\(label): the plan carries its capabilities")
        }
    }

    @Test func componentTypesAreUnique() {
        #expect(Set(registry.sources.map(\.type)).count == registry.sources.count)
        #expect(Set(registry.sinks.map(\.type)).count == registry.sinks.count)
    }
}
