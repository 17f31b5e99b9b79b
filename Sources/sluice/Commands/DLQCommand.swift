import ArgumentParser
import Foundation
import SluiceConnectors
import SluiceCore

struct DLQCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dlq",
        abstract: "Look at, count, export and drop records that could not be ingested (the dead-letter queue).",
        discussion: """
            Every rejected record is kept with the stage that rejected it, the reason (its error
            kind), its location (file:line, row, message) and its raw bytes. Filters (every
            command but show): --pipeline, --stage, --reason, --since/--until (first seen; a time,
            a date or a duration ago such as 2h), --id. A pipeline's `dead_letter: { ttl, max_rows }`
            bounds its queue.

            Examples:
              sluice dlq list
              sluice dlq list --pipeline events --reason type_mismatch --limit 20
              sluice dlq show 42
              sluice dlq show 42 --raw > row.txt     the original bytes only
              sluice dlq stats                       counts by pipeline, stage and reason, with ages
              sluice dlq export --pipeline events --format parquet -o dead.parquet
              sluice dlq drop --pipeline events --until 7d --yes
              sluice dlq replay -c p.yaml --pipeline events   after fixing the cause
            """,
        subcommands: [List.self, Show.self, Stats.self, Export.self, Drop.self, Replay.self]
    )

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List dead letters, oldest first.")

        @OptionGroup var filters: DeadLetterFilterOptions
        @Option(name: .long, help: "At most this many.") var limit = 50
        @Flag(name: .long, help: "One JSON object per line.") var json = false
        @OptionGroup var stateOptions: StateOptions

        func run() async throws {
            let filter = try filters.filter()
            let store = try await ConfigLoading.reportingErrors { try await BuiltinComponents.openState(try stateOptions.location()) }
            let letters = try await store.deadLetters(matching: filter, limit: limit)
            let total = try await store.deadLetterStats(matching: filter, now: Date()).reduce(0) { $0 + $1.count }
            if json {
                for l in letters { print(DLQRendering.json(l)) }
                return
            }
            if letters.isEmpty { print("no dead letters"); return }
            for l in letters {
                print("#\(l.id)  \(l.pipeline)  \(l.letter.stage)/\(l.letter.errorKind)  \(l.letter.location)  \(l.letter.message)")
            }
            if total > letters.count { print("… \(total - letters.count) more (use --limit)") }
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show one dead letter with its raw bytes.")

        @Argument(help: "The id shown by `sluice dlq list`.") var id: Int64
        @Flag(name: .long, help: "Print only the raw bytes.") var raw = false
        @OptionGroup var stateOptions: StateOptions

        func run() async throws {
            let store = try await ConfigLoading.reportingErrors { try await BuiltinComponents.openState(try stateOptions.location()) }
            guard let l = try await store.deadLetter(id: id) else {
                FileHandle.standardError.write(Data("error: no dead letter #\(id); `sluice dlq list` shows the ids\n".utf8))
                throw ExitCode(1)
            }
            if raw {
                FileHandle.standardOutput.write(Data(l.letter.raw))
                return
            }
            print(
                """
                id:         \(l.id)
                pipeline:   \(l.pipeline)
                stage:      \(l.letter.stage)
                kind:       \(l.letter.errorKind)
                location:   \(l.letter.location)
                reason:     \(l.letter.message)
                attempts:   \(l.letter.attempts)
                first seen: \(l.firstSeen)
                last seen:  \(l.lastSeen)
                raw (\(l.letter.raw.count) bytes):
                """)
            print(String(decoding: l.letter.raw, as: UTF8.self))
        }
    }
}

enum DLQRendering {
    static func json(_ l: StoredDeadLetter) -> String {
        let object: [String: Any] = [
            "id": l.id, "pipeline": l.pipeline, "stage": l.letter.stage, "kind": l.letter.errorKind,
            "location": l.letter.location, "message": l.letter.message, "attempts": l.letter.attempts,
            "raw": String(validating: l.letter.raw, as: UTF8.self) ?? NSNull(),
            "raw_base64": Data(l.letter.raw).base64EncodedString(),
            "first_seen": l.firstSeen.timeIntervalSince1970, "last_seen": l.lastSeen.timeIntervalSince1970,
            "schema": l.letter.schema ?? NSNull(),
        ]
        let data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])) ?? Data()
        return String(decoding: data, as: UTF8.self)
    }
}
