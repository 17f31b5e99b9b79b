import ArgumentParser
import Foundation
import SluiceConnectors
import SluiceCore

struct SchemaCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "schema",
        abstract: "See the schema registry: subjects, versions, and the drift pipelines met.",
        discussion: """
            Every pipeline registers the schema of its data under a subject (its name, or
            `schema: {subject: NAME}`), and records each change it notices (a drift event: added or
            removed column, type or nullability change) with what its `on_change` policy did.
            The same registry is served over HTTP by `sluice serve` (Confluent Schema Registry API).

            Examples:
              sluice schema list -c pipelines.yaml           subjects, their latest version and compatibility
              sluice schema show events                      every version of a subject, and its drift events
              sluice schema diff events                      what changed between the last two versions
              sluice schema diff events --from 1 --to 3
            """,
        subcommands: [List.self, Show.self, Diff.self]
    )

    static func registry(_ options: StateOptions) async throws -> SchemaRegistry {
        let store = try await ConfigLoading.reportingErrors { try await BuiltinComponents.openState(try options.location()) }
        guard let registryStore = store.schemaRegistry else {
            FileHandle.standardError.write(Data("error: this state store has no schema registry\n".utf8))
            throw ExitCode(2)
        }
        return SchemaRegistry(store: registryStore)
    }

    static func fail(_ error: any Error) -> ExitCode {
        FileHandle.standardError.write(Data("error: \((error as? RegistryError)?.message ?? "\(error)")\n".utf8))
        return ExitCode(1)
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List subjects with their latest version and compatibility mode.")
        @OptionGroup var stateOptions: StateOptions

        func run() async throws {
            let registry = try await SchemaCommand.registry(stateOptions)
            let subjects = try await registry.subjects()
            if subjects.isEmpty { print("no subjects yet (pipelines register theirs when they run)"); return }
            print("SUBJECT                         LATEST  FORMAT   COMPATIBILITY")
            for s in subjects {
                let (v, schema) = try await registry.version(subject: s, nil)
                let mode = try await registry.effectiveCompatibility(subject: s)
                print(
                    "\(s.padding(toLength: 31, withPad: " ", startingAt: 0)) v\(String(v.version).padding(toLength: 6, withPad: " ", startingAt: 0)) \(schema.format.rawValue.padding(toLength: 8, withPad: " ", startingAt: 0)) \(mode.rawValue)"
                )
            }
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show every version of a subject and its drift events.")
        @Argument(help: "The subject (a pipeline's name unless `schema: {subject: …}` says otherwise).") var subject: String
        @Option(name: .long, help: "How many drift events to show.") var events = 20
        @OptionGroup var stateOptions: StateOptions

        func run() async throws {
            let registry = try await SchemaCommand.registry(stateOptions)
            do {
                let versions = try await registry.versions(subject: subject)
                print("subject: \(subject)   compatibility: \(try await registry.effectiveCompatibility(subject: subject).rawValue)")
                let f = ISO8601DateFormatter()
                for v in versions {
                    let s = try await registry.schema(id: v.schemaID)
                    print("\nversion \(v.version)  id \(v.schemaID)  \(s.format.rawValue)  \(f.string(from: v.createdAt))")
                    if s.format == .sluice, case let .sluice(schema) = try ParsedSchema.parse(s.text, format: .sluice) {
                        for field in schema.fields { print("  \(field.name): \(field.type)\(field.nullable ? "" : " not null")") }
                    } else {
                        print("  \(s.text)")
                    }
                }
                let drift = try await registry.store.driftEvents(subject: subject, limit: events)
                if !drift.isEmpty {
                    print("\ndrift events (newest first):")
                    for e in drift {
                        let versions = "v\(e.fromVersion.map(String.init) ?? "-") -> \(e.toVersion.map { "v\($0)" } ?? "(not registered)")"
                        print("  \(f.string(from: e.at))  \(e.pipeline)  \(e.action)  \(versions)  \(e.diff)")
                    }
                }
            } catch let e as RegistryError {
                throw SchemaCommand.fail(e)
            }
        }
    }

    struct Diff: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show what changed between two versions (default: the last two).")
        @Argument(help: "The subject.") var subject: String
        @Option(name: .long, help: "The older version (default: the one before --to).") var from: Int?
        @Option(name: .long, help: "The newer version (default: the latest).") var to: Int?
        @OptionGroup var stateOptions: StateOptions

        func run() async throws {
            let registry = try await SchemaCommand.registry(stateOptions)
            do {
                let versions = try await registry.versions(subject: subject).map(\.version)
                let newer = to ?? versions.last!
                guard let older = from ?? versions.last(where: { $0 < newer }) else {
                    print("\(subject) has only version \(newer); nothing to compare")
                    return
                }
                let (_, a) = try await registry.version(subject: subject, older)
                let (_, b) = try await registry.version(subject: subject, newer)
                print("\(subject): v\(older) -> v\(newer)")
                if case let .sluice(old) = try ParsedSchema.parse(a.text, format: a.format),
                    case let .sluice(new) = try ParsedSchema.parse(b.text, format: b.format)
                {
                    let diff = SchemaDiff(from: old, to: new)
                    print(diff.isEmpty ? "  (no change)" : diff.lines.map { "  " + $0 }.joined(separator: "\n"))
                } else {
                    print("- \(a.text)\n+ \(b.text)")
                }
                let parsedOld = try ParsedSchema.parse(a.text, format: a.format)
                let parsedNew = try ParsedSchema.parse(b.text, format: b.format)
                let backward = parsedNew.problemsReading(parsedOld), forward = parsedOld.problemsReading(parsedNew)
                print("backward compatible: \(backward.isEmpty ? "yes" : "no (\(backward.joined(separator: "; ")))")")
                print("forward compatible:  \(forward.isEmpty ? "yes" : "no (\(forward.joined(separator: "; ")))")")
            } catch let e as RegistryError {
                throw SchemaCommand.fail(e)
            }
        }
    }
}
