import ArgumentParser
import Foundation
import SluiceConnectors
import SluiceCore

struct ComponentsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "components",
        abstract: "List every source and sink, or write the configuration reference.",
        discussion: """
            Every option shown comes from the component's one declaration (its spec), the same one
            `sluice validate` checks files against.

            Examples:
              sluice components                                  # a summary and an example of each
              sluice components --format markdown --output docs/reference
                                                                 # one page per source and sink, an index, sluice.schema.json
              sluice components --format json > sluice.schema.json
                                                                 # the JSON Schema of a pipeline file, for editors
            """
    )

    enum Format: String, ExpressibleByArgument, CaseIterable { case text, markdown, json }

    @Option(name: .long, help: "text (a summary), markdown (the reference pages; needs --output) or json (the JSON Schema of a pipeline file).")
    var format: Format = .text

    @Option(name: .long, help: "With --format markdown: the folder to write the reference into (docs/reference).")
    var output: String?

    func validate() throws {
        if format == .markdown && output == nil {
            throw ValidationError("--format markdown writes several files: give the folder with --output (e.g. --output docs/reference)")
        }
        if format != .markdown && output != nil { throw ValidationError("--output goes with --format markdown") }
    }

    func run() throws {
        let registry = BuiltinComponents.registry
        let reference = ComponentReference(registry: registry)
        switch format {
        case .text:
            print("Sources:\n")
            for f in registry.sources { describe(f.spec) }
            print("Sinks:\n")
            for f in registry.sinks { describe(f.spec) }
            print("Every option of each: sluice components --format markdown --output DIR (or docs/reference/ in the repository).")
        case .json:
            print(try reference.jsonSchema(), terminator: "")
        case .markdown:
            let root = URL(fileURLWithPath: output!)
            for file in try reference.files() {
                let url = root.appendingPathComponent(file.path)
                try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
                try file.text.write(to: url, atomically: true, encoding: .utf8)
            }
            print("wrote the reference to \(output!)")
        }
    }

    func describe(_ spec: ComponentSpec) {
        print("  \(spec.type): \(spec.summary)")
        for line in spec.example.split(separator: "\n", omittingEmptySubsequences: false) { print("      \(line)") }
        if !spec.options.isEmpty { print("      options: \(spec.options.map(\.name).joined(separator: ", "))") }
        print("")
    }
}
