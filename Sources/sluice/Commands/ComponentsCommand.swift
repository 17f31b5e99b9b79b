import ArgumentParser
import SluiceConnectors
import SluiceCore

struct ComponentsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "components",
        abstract: "List every source and sink with an example of its configuration."
    )

    func run() throws {
        let registry = BuiltinComponents.registry
        print("Sources:\n")
        for f in registry.sources { describe(f.type, f.summary, f.example) }
        print("Sinks:\n")
        for f in registry.sinks { describe(f.type, f.summary, f.example) }
    }

    func describe(_ type: String, _ summary: String, _ example: String) {
        print("  \(type): \(summary)")
        for line in example.split(separator: "\n", omittingEmptySubsequences: false) { print("      \(line)") }
        print("")
    }
}
