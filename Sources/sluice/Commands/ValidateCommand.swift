import ArgumentParser
import Foundation
import SluiceConnectors
import SluiceCore

struct ValidateCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "validate",
        abstract: "Check pipeline files without moving any data.",
        discussion: """
        Decodes every file strictly: unknown keys (with a suggestion for typos), wrong types,
        missing required keys, unknown component types, unset ${ENV} variables. Each problem is
        reported as FILE:LINE:COLUMN: KEY.PATH: message. Exit status 2 when anything is wrong.

        With --connect it also opens the state store and checks that each file source's path
        matches at least one file.

        Examples:
          sluice validate pipelines.yaml
          sluice validate a.yaml b.yaml --connect
        """
    )

    @Argument(help: "Pipeline files (YAML).")
    var files: [String]

    @Flag(name: .long, help: "Also check that the state store opens and inputs exist.")
    var connect = false

    func run() async throws {
        let (state, plans) = try await ConfigLoading.reportingErrors { try ConfigLoading.load(files) }
        if connect {
            _ = try await ConfigLoading.reportingErrors { try BuiltinComponents.openState(state) }
        }
        for plan in plans {
            print("ok  \(plan.name): \(type(of: plan.source)) → \(type(of: plan.sink))")
        }
        print("\(plans.count) pipeline(s) valid; state: \(state)")
    }
}
