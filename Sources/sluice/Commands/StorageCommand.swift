import ArgumentParser
import Foundation
import Logging
import SluiceCore
import SluiceObjectStore

/// `sluice storage`: look at and copy to object storage with the same client the sinks use.
struct StorageCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "storage",
        abstract: "List objects, copy files to object storage, and find incomplete uploads (s3:// paths).",
        discussion: """
            Uses the client the parquet and ndjson sinks use: SigV4, multipart uploads with parallel
            parts, retries with backoff. Credentials and endpoint come from the environment
            (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN, AWS_REGION, AWS_ENDPOINT_URL,
            AWS_PROFILE and ~/.aws/credentials), or from a pipeline file's `storage:` with -c.

            Examples:
              sluice storage ls s3://lake/events/ --endpoint http://127.0.0.1:8333
              sluice storage cp exports/ s3://lake/imports/2026-12-05/        (a directory, recursively)
              sluice storage uploads s3://lake/events/                          (started, never completed)
              sluice storage uploads s3://lake/events/ --abort                  (and abort them)
            """,
        subcommands: [List.self, Copy.self, Uploads.self]
    )

    struct Connection: ParsableArguments {
        @Option(name: .long, help: "An S3-compatible server (default: AWS_ENDPOINT_URL, else AWS S3).") var endpoint: String?
        @Option(name: .long, help: "The region (default: AWS_REGION, else us-east-1).") var region: String?
        @Option(name: [.short, .long], help: "A pipeline file whose top-level `storage:` to use.") var config: String?

        func store(for location: ObjectLocation) throws -> S3ObjectStore {
            var storage = StorageConfig()
            if let config {
                let text = try String(contentsOfFile: config, encoding: .utf8)
                storage =
                    try YAMLNodeDecoding(file: config, environment: ProcessInfo.processInfo.environment)
                    .decode(SluiceConfig.self, from: text).storage ?? storage
            }
            storage = storage.overridden(by: StorageConfig(endpoint: endpoint, region: region))
            return S3ObjectStore(bucket: location.bucket, settings: try S3Settings.resolve(storage), logger: Logger(label: "sluice.storage"))
        }
    }

    static func location(_ path: String) throws -> ObjectLocation {
        guard let location = try ObjectLocation(parsing: path) else {
            throw ValidationError("'\(path)' is not an object path; write s3://bucket/prefix")
        }
        return location
    }

    /// Runs `body` with a store, closing it after; errors are printed as `error: …`.
    static func with<T>(_ connection: Connection, _ path: String, _ body: (S3ObjectStore, ObjectLocation) async throws -> T) async throws -> T {
        let location = try Self.location(path)
        let store: S3ObjectStore
        do {
            store = try connection.store(for: location)
        } catch {
            FileHandle.standardError.write(Data("error: \(error)\n".utf8))
            throw ExitCode(2)
        }
        do {
            let result = try await body(store, location)
            await store.shutdown()
            return result
        } catch {
            await store.shutdown()
            FileHandle.standardError.write(Data("error: \(error)\n".utf8))
            throw ExitCode(1)
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "ls", abstract: "List the objects under a prefix: size, last modified, key.")
        @Argument(help: "s3://bucket/prefix") var path: String
        @OptionGroup var connection: Connection

        func run() async throws {
            try await StorageCommand.with(connection, path) { store, location in
                let objects = try await store.list(prefix: location.key)
                for o in objects {
                    let when = o.lastModified.map { ISO8601DateFormatter().string(from: $0) } ?? "-"
                    print(
                        "\(InspectCommand.bytes(Int64(o.size)).padding(toLength: 10, withPad: " ", startingAt: 0))  \(when)  s3://\(location.bucket)/\(o.key)")
                }
                print("\(objects.count) object(s), \(InspectCommand.bytes(Int64(objects.reduce(0) { $0 + $1.size }))))")
            }
        }
    }

    struct Copy: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "cp", abstract: "Copy local files (or a directory, recursively) to object storage, each published whole or not at all.")
        @Argument(help: "Local files or directories, then the destination s3://bucket/prefix/.") var paths: [String]
        @Option(name: .long, help: "Bytes per part (at least 5MB).") var partSize: String = "8MB"
        @Option(name: .long, help: "Parts uploaded at once per file.") var parallelParts = 4
        @Option(name: .long, help: "Files uploaded at once. Each part in flight is read from disk 1 MB at a time as it is sent.") var parallelFiles = 2
        @OptionGroup var connection: Connection

        func run() async throws {
            guard paths.count >= 2, let destination = paths.last else {
                throw ValidationError("give at least one local path and a destination s3://bucket/prefix/")
            }
            guard let partBytes = ConfigByteSize.parse(partSize) else { throw ValidationError("--part-size: '\(partSize)' is not a size (16MB, 64MB)") }
            var files: [(local: String, key: String, size: Int)] = []
            let target = try StorageCommand.location(destination)
            for source in paths.dropLast() {
                var isDirectory: ObjCBool = false
                guard FileManager.default.fileExists(atPath: source, isDirectory: &isDirectory) else { throw ValidationError("no such file: \(source)") }
                if isDirectory.boolValue {
                    let enumerator = FileManager.default.enumerator(atPath: source)
                    while let relative = enumerator?.nextObject() as? String {
                        let full = (source as NSString).appendingPathComponent(relative)
                        guard let a = try? FileManager.default.attributesOfItem(atPath: full), a[.type] as? FileAttributeType == .typeRegular else { continue }
                        files.append((full, target.appending(relative).key, (a[.size] as? Int) ?? 0))
                    }
                } else {
                    let size = (try FileManager.default.attributesOfItem(atPath: source)[.size] as? Int) ?? 0
                    let key = destination.hasSuffix("/") || target.key.isEmpty ? target.appending((source as NSString).lastPathComponent).key : target.key
                    files.append((source, key, size))
                }
            }
            let parallelFiles = max(1, self.parallelFiles)
            let parallelParts = parallelParts
            try await StorageCommand.with(connection, destination) { store, location in
                let upload = FileUpload(store: store, partSize: partBytes, parallelParts: parallelParts)
                try await withThrowingTaskGroup(of: (String, Int).self) { group in
                    var next = 0
                    func start() {
                        let f = files[next]
                        next += 1
                        group.addTask {
                            let (id, parts) = try await upload.upload(path: f.local, size: f.size, to: f.key)
                            try await store.completeMultipartUpload(f.key, uploadID: id, parts: parts)
                            return ("s3://\(location.bucket)/\(f.key)", f.size)
                        }
                    }
                    while next < min(files.count, parallelFiles) { start() }
                    var total = 0
                    while let (done, size) = try await group.next() {
                        print("uploaded \(done) (\(InspectCommand.bytes(Int64(size))))")
                        total += size
                        if next < files.count { start() }
                    }
                    print("\(files.count) file(s), \(InspectCommand.bytes(Int64(total)))")
                }
            }
        }
    }

    struct Uploads: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "uploads", abstract: "List multipart uploads started and never completed under a prefix; --abort aborts them.")
        @Argument(help: "s3://bucket/prefix") var path: String
        @Flag(name: .long, help: "Abort them (do not while a sink writes there: it would lose its uncommitted files and retry).") var abort = false
        @OptionGroup var connection: Connection

        func run() async throws {
            try await StorageCommand.with(connection, path) { store, location in
                let uploads = try await store.listMultipartUploads(prefix: location.key)
                for u in uploads {
                    let when = u.initiated.map { ISO8601DateFormatter().string(from: $0) } ?? "-"
                    print("\(when)  s3://\(location.bucket)/\(u.key)  \(u.uploadID)")
                    if abort { try await store.abortMultipartUpload(u.key, uploadID: u.uploadID) }
                }
                print("\(uploads.count) incomplete upload(s)\(abort && !uploads.isEmpty ? ", aborted" : "")")
            }
        }
    }
}
