import ArgumentParser
import Foundation
import SluiceConnectors
import SluiceCore
import SluiceServer

struct KeysCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "keys",
        abstract: "Create, list and revoke API keys for the push endpoint and the schema registry API.",
        discussion: """
            A key is shown once, when created; only its SHA-256 is stored. Revoking takes effect
            within two seconds, without a restart.

            Every key has explicit scopes, given when it is created (a key without one is refused):
              --stream NAME     write to the push stream NAME (repeatable)
              --all-streams     write to every push stream, including streams added later
              --registry write  register, delete and configure in the schema registry API
                                (served by `sluice serve`, with `serve.registry_auth: api_key`)
            Stream scopes never include the registry, and the registry scope never includes a stream.
            Reading the registry (and lookups, compatibility checks) needs no key.

            Streams with `auth: api_key` accept `Authorization: Bearer <key>` or `X-API-Key: <key>`;
            registry clients may also send the key as the Basic auth password (`basic.auth.user.info`).

            Examples:
              sluice keys create --name checkout-service --stream clicks -c pipelines.yaml
              sluice keys create --name schema-ci --registry write -c pipelines.yaml
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
        @Option(name: .long, help: ArgumentHelp("A push stream the key may write to (repeatable).", valueName: "name")) var stream: [String] = []
        @Flag(name: .long, help: "The key may write to every push stream (not the schema registry).") var allStreams = false
        @Option(
            name: .long,
            help: ArgumentHelp(
                "Access to the schema registry API: `write` lets the key register, delete and configure (reads need no key).",
                valueName: "write"))
        var registry: String?
        @OptionGroup var stateOptions: StateOptions

        func validate() throws {
            for s in stream where s.range(of: #"^[A-Za-z0-9_.-]{1,128}$"#, options: .regularExpression) == nil {
                throw ValidationError("'\(s)' is not a stream name; pass --stream once per stream")
            }
            if let registry, registry != "write" {
                throw ValidationError("--registry takes `write` (reading the registry needs no key)")
            }
            if allStreams && !stream.isEmpty {
                throw ValidationError("--all-streams already covers every stream; drop --stream or --all-streams")
            }
            if stream.isEmpty && !allStreams && registry == nil {
                throw ValidationError(
                    "a key needs a scope: --stream NAME (repeatable), --all-streams, and/or --registry write (see `sluice keys --help`)")
            }
        }

        func run() async throws {
            let scopes = (allStreams ? ["*"] : stream) + (registry == nil ? [] : [StoredAPIKey.registryWriteScope])
            let queue = try await KeysCommand.queue(stateOptions)
            let (key, stored) = APIKeyFormat.generate(name: name, streams: scopes)
            try await queue.createAPIKey(stored)
            FileHandle.standardError.write(
                Data("created key \(stored.id) for \(KeysCommand.describe(stored.streams)); store it now, it is not shown again:\n".utf8))
            print(key)
        }
    }

    /// Scopes as people read them: `all streams`, stream names, `registry write`.
    static func describe(_ scopes: [String]) -> String {
        scopes.map { $0 == "*" ? "all streams" : $0 == StoredAPIKey.registryWriteScope ? "registry write" : "stream \($0)" }.joined(separator: ", ")
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List keys (ids, names, scopes; never secrets).")
        @OptionGroup var stateOptions: StateOptions

        func run() async throws {
            let keys = try await KeysCommand.queue(stateOptions).apiKeys()
            if keys.isEmpty { print("no API keys (create one with `sluice keys create --name NAME --stream STREAM`)"); return }
            let f = ISO8601DateFormatter()
            print("ID            NAME                  SCOPES                CREATED               STATUS")
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
