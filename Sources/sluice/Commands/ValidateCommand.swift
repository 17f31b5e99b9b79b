import ArgumentParser
import Foundation
import SluiceConnectors
import SluiceCore
import SluiceServer

struct ValidateCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "validate",
        abstract: "Check pipeline files without moving any data.",
        discussion: """
            Decodes every file strictly: unknown keys (with a suggestion for typos), wrong types,
            missing required keys, unknown component types, unset ${ENV} variables. Each problem is
            reported as FILE:LINE:COLUMN: KEY.PATH: message. Exit status 2 when anything is wrong.

            Pipelines fed by `sluice serve` are checked as `serve` would check them: one push stream
            per pipeline, and no unauthenticated endpoint on a non-loopback `serve.host` (unless
            --allow-unauthenticated, as for `serve`).

            With --connect it also opens the state store and checks that each source can be read and
            each sink written now (input paths exist, output directories are writable); exit status 1
            if one cannot.

            Examples:
              sluice validate pipelines.yaml
              sluice validate a.yaml b.yaml --connect
            """
    )

    @Argument(help: "Pipeline files (YAML).")
    var files: [String]

    @Flag(name: .long, help: "Also check that the state store opens and inputs exist.")
    var connect = false

    @Flag(name: .long, help: "Accept unauthenticated push streams on a non-loopback serve.host (as `serve --allow-unauthenticated`).")
    var allowUnauthenticated = false

    func run() async throws {
        let (state, plans) = try await ConfigLoading.reportingErrors { try ConfigLoading.load(files) }
        try await ConfigLoading.reportingErrors {
            var errors: [ConfigError] = []
            for file in files where !allowUnauthenticated {
                let loaded = try ConfigLoading.loader().load(file: file)
                let streams = ServeRules.streams(in: loaded.pipelines)
                guard !streams.isEmpty else { continue }
                if let exposure = ServeRules.exposure(
                    of: streams, host: loaded.serve?.host ?? "127.0.0.1",
                    registryRequiresKey: loaded.serve?.registryAuth == "api_key")
                {
                    errors.append(ConfigError(file: file, line: nil, column: nil, keyPath: "serve.host", message: exposure))
                }
            }
            if !errors.isEmpty { throw ConfigFailure(errors: errors) }
        }
        if connect {
            _ = try await ConfigLoading.reportingErrors { try await BuiltinComponents.openState(state) }
        }
        var unreachable = 0
        for plan in plans {
            var problems: [String] = []
            if connect {
                do { try await plan.source.checkReachable() } catch { problems.append("source: \((error as? SluiceError)?.message ?? "\(error)")") }
                do { try await plan.sink.checkReachable() } catch { problems.append("sink: \((error as? SluiceError)?.message ?? "\(error)")") }
            }
            if problems.isEmpty {
                print("ok  \(plan.name): \(type(of: plan.source)) → \(type(of: plan.sink))")
            } else {
                unreachable += 1
                print("unreachable  \(plan.name): \(problems.joined(separator: "; "))")
            }
        }
        print("\(plans.count) pipeline(s) valid; state: \(Redaction.url(state))")
        if unreachable > 0 {
            FileHandle.standardError.write(Data("error: \(unreachable) pipeline(s) cannot reach their source or sink\n".utf8))
            throw ExitCode(1)
        }
    }
}
