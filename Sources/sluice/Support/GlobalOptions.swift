import ArgumentParser
import Foundation
import Logging
import SluiceCore

enum LogFormat: String, ExpressibleByArgument, CaseIterable { case text, json }

/// `--log-level`: a word outside the list is refused with the list (not read as `info`).
enum LogLevel: String, ExpressibleByArgument, CaseIterable {
    case trace, debug, info, notice, warning, error, critical

    var level: Logger.Level { Logger.Level(rawValue: rawValue)! }
}

/// Logging options shared by commands.
struct LoggingOptions: ParsableArguments {
    @Option(name: .long, help: "Log line format: text (for people) or json (one object per line, for machines).")
    var logFormat: LogFormat = .text

    @Option(name: .long, help: "Minimum log level.")
    var logLevel: LogLevel = .info

    func bootstrap(terminal: Terminal) -> Logger {
        let level = logLevel.level
        let format = logFormat
        LoggingSystem.bootstrap { label in
            var handler = SluiceLogHandler(label: label, format: format, terminal: terminal)
            handler.logLevel = level
            return handler
        }
        return Logger(label: "sluice")
    }
}

/// Where the state store is, for commands that only read state.
struct StateOptions: ParsableArguments {
    @Option(name: [.short, .long], help: "A pipeline file; its `state:` location is used.")
    var config: String?

    @Option(name: .long, help: "The state database (default: .sluice/state.db, or the config file's `state:`).")
    var state: String?

    func location() throws -> String {
        if let state { return state }
        if let config {
            do {
                // Only the state location matters here: a `serve:`-only file (the registry alone) will do.
                return try ConfigLoading.loader().load(file: config, requirePipelines: false).state
            } catch let error as ConfigError {
                throw ConfigFailure(errors: [error])
            }
        }
        return ".sluice/state.db"
    }
}

extension TestHooks {
    /// The hooks the test suite sets through `sluice`'s environment (none outside tests).
    static var fromProcessEnvironment: TestHooks { TestHooks(environment: ProcessInfo.processInfo.environment) }
}
