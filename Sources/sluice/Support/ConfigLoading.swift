import ArgumentParser
import Foundation
import SluiceConnectors
import SluiceCore

/// Configuration problems: printed, then exit status 2.
struct ConfigFailure: Error, CustomStringConvertible {
    var errors: [ConfigError]
    var description: String { errors.map { "error: \($0)" }.joined(separator: "\n") }
}

enum ConfigLoading {
    static func loader() -> ConfigLoader { ConfigLoader(registry: BuiltinComponents.registry) }

    /// Loads and validates every file; all problems are reported together.
    static func load(_ files: [String]) throws -> (state: String, pipelines: [PipelinePlan]) {
        var errors: [ConfigError] = []
        var plans: [PipelinePlan] = []
        var state: (String, String)?
        for file in files {
            do {
                let loaded = try loader().load(file: file)
                if let (s, f) = state, s != loaded.state {
                    errors.append(
                        ConfigError(
                            file: file, line: nil, column: nil, keyPath: "state",
                            message: "state location '\(Redaction.url(loaded.state))' differs from '\(Redaction.url(s))' in \(f); one run uses one state store")
                    )
                }
                state = state ?? (loaded.state, file)
                for plan in loaded.pipelines {
                    if plans.contains(where: { $0.name == plan.name }) {
                        errors.append(
                            ConfigError(
                                file: file, line: nil, column: nil, keyPath: "pipelines.\(plan.name)",
                                message: "pipeline '\(plan.name)' is defined twice"))
                    }
                    plans.append(plan)
                }
            } catch let error as ConfigError {
                errors.append(error)
            }
        }
        if !errors.isEmpty { throw ConfigFailure(errors: errors) }
        return (state?.0 ?? ".sluice/state.db", plans)
    }

    /// Runs `body`, turning configuration failures into exit status 2 with located messages.
    static func reportingErrors<T>(_ body: () async throws -> T) async throws -> T {
        do {
            return try await body()
        } catch let failure as ConfigFailure {
            FileHandle.standardError.write(Data((failure.description + "\n").utf8))
            throw ExitCode(2)
        } catch let error as SluiceError {
            FileHandle.standardError.write(Data("error: \(error)\n".utf8))
            throw ExitCode(error.code == .configuration ? 2 : 1)
        }
    }
}
