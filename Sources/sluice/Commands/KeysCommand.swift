import ArgumentParser
import Foundation
import SluiceConnectors
import SluiceCore
import SluiceServer

struct KeysCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "keys",
        abstract: "Create, list and revoke API keys for the push endpoint.",
        discussion: """
            Streams with `auth: api_key` accept `Authorization: Bearer <key>` (or `X-API-Key: <key>`).
            A key is shown once, when created; only its SHA-256 is stored. A key may be limited to
            some streams. Revoking takes effect within two seconds, without a restart.

            Examples:
              sluice keys create --name checkout-service --stream clicks -c pipelines.yaml
              sluice keys list -c pipelines.yaml
              sluice keys revoke k3x9q2a7bd4f -c pipelines.yaml
            """,
        subcommands: [Create.self, List.self, Revoke.self]
    )

    static func queue(_ options: StateOptions) async throws -> any PushQueueStore {
        let store = try await ConfigLoading.reportingErrors { try await BuiltinComponents.openState(try options.location()) }
        guard let queue = store.pushQueue else {
            FileHandle.standardError.write(
                Data("error: API keys live with the push queue, which this state store does not keep; use a SQLite state store\n".utf8))
            throw ExitCode(2)
        }
        return queue
    }

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Create a key and print it (it is not shown again).")

        @Option(name: .long, help: "Who or what uses the key (shown in listings).") var name: String
        @Option(name: .long, help: "A stream the key may write to (repeatable; default: every stream).") var stream: [String] = []
        @OptionGroup var stateOptions: StateOptions

        func run() async throws {
            for s in stream where s.range(of: #"^[A-Za-z0-9_.-]{1,128}$"#, options: .regularExpression) == nil {
                FileHandle.standardError.write(Data("error: '\(s)' is not a stream name; pass --stream once per stream\n".utf8))
                throw ExitCode(2)
            }
            let queue = try await KeysCommand.queue(stateOptions)
            let (key, stored) = APIKeyFormat.generate(name: name, streams: stream)
            try await queue.createAPIKey(stored)
            FileHandle.standardError.write(
                Data("created key \(stored.id) for \(stored.streams.joined(separator: ", ")); store it now, it is not shown again:\n".utf8))
            print(key)
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List keys (ids, names, streams; never secrets).")
        @OptionGroup var stateOptions: StateOptions

        func run() async throws {
            let keys = try await KeysCommand.queue(stateOptions).apiKeys()
            if keys.isEmpty { print("no API keys (create one with `sluice keys create --name NAME`)"); return }
            let f = ISO8601DateFormatter()
            print("ID            NAME                  STREAMS               CREATED               STATUS")
            for k in keys {
                let status = k.revokedAt.map { "revoked \(f.string(from: $0))" } ?? "active"
                print(
                    "\(k.id.padding(toLength: 13, withPad: " ", startingAt: 0)) \(k.name.padding(toLength: 21, withPad: " ", startingAt: 0)) \(k.streams.joined(separator: ",").padding(toLength: 21, withPad: " ", startingAt: 0)) \(f.string(from: k.createdAt))  \(status)"
                )
            }
        }
    }

    struct Revoke: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Revoke a key by its id (the part after slk_ and before the next _).")
        @Argument(help: "The key id (or the whole key).") var id: String
        @OptionGroup var stateOptions: StateOptions

        func run() async throws {
            let keyID = APIKeyFormat.parse(Substring(id))?.id ?? id
            if try await KeysCommand.queue(stateOptions).revokeAPIKey(id: keyID, at: Date()) {
                print("revoked \(keyID)")
            } else {
                FileHandle.standardError.write(Data("error: no key with id '\(keyID)' (see `sluice keys list`)\n".utf8))
                throw ExitCode(1)
            }
        }
    }
}
