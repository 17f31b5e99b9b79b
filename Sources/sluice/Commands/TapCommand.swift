import ArgumentParser
import AsyncHTTPClient
import Foundation
import NIOCore

/// `sluice tap`: a live sample of the records flowing through a running pipeline, as NDJSON
/// (like `vector tap`).
struct TapCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tap",
        abstract: "Print a live sample of a running pipeline's records as NDJSON.",
        discussion: """
            Connects to a running `sluice run --metrics-port` or `sluice serve` and prints records
            of PIPELINE as they flow, one JSON object per line: as the source decoded them
            (--stage source), as the sink took them (sink, the default), or as they were
            dead-lettered (dead-letter: stage, kind, reason, location, raw). It stops after --limit
            records or --timeout seconds. A pipeline nobody taps pays nothing; a tapped one renders
            at most 100 records of a batch, and a slow reader loses the oldest lines, never slows
            the pipeline.

            Examples:
              sluice tap events --url http://127.0.0.1:9464 --limit 5
              sluice tap events --stage dead-letter --limit 20 | jq .reason
            """)

    @Argument(help: "The pipeline.") var pipeline: String
    @Option(name: .long, help: "The running process (http://host:port).") var url = "http://127.0.0.1:9464"
    @Option(name: .long, help: "source, sink or dead-letter.") var stage = "sink"
    @Option(name: .long, help: "Records to print before exiting (at most 10000).") var limit = 10
    @Option(name: .long, help: "Seconds to wait for them.") var timeout = 300
    @Option(name: .customLong("api-key"), help: "An API key, for a `sluice serve` listening beyond loopback.") var apiKey: String?

    func validate() throws {
        guard ["source", "sink", "dead-letter"].contains(stage) else { throw ValidationError("--stage: source, sink or dead-letter") }
        guard (1...10_000).contains(limit) else { throw ValidationError("--limit: 1 to 10000") }
        guard (1...3600).contains(timeout) else { throw ValidationError("--timeout: 1 to 3600 seconds") }
    }

    func run() async throws {
        let base = url.hasSuffix("/") ? String(url.dropLast()) : url
        var components = URLComponents(string: base + "/api/v1/tap")
        components?.queryItems = [
            .init(name: "pipeline", value: pipeline), .init(name: "stage", value: stage), .init(name: "limit", value: String(limit)),
            .init(name: "timeout", value: String(timeout)),
        ]
        guard let target = components?.string else { throw ValidationError("--url: '\(url)' is not a URL") }
        var request = HTTPClientRequest(url: target)
        if let apiKey { request.headers.add(name: "Authorization", value: "Bearer \(apiKey)") }
        let response: HTTPClientResponse
        do {
            response = try await HTTPClient.shared.execute(request, timeout: .seconds(Int64(timeout) + 10))
        } catch {
            FileHandle.standardError.write(Data("error: cannot reach \(base): \(error); is `sluice run --metrics-port` or `sluice serve` running?\n".utf8))
            throw ExitCode(1)
        }
        guard response.status.code == 200 else {
            let body = (try? await response.body.collect(upTo: 1 << 16)).map { String(buffer: $0) } ?? ""
            let hint = response.status.code == 401 ? " (pass --api-key)" : ""
            FileHandle.standardError.write(Data("error: \(base) answered \(response.status.code)\(hint): \(body)".utf8))
            throw ExitCode(1)
        }
        for try await chunk in response.body {
            FileHandle.standardOutput.write(Data(chunk.readableBytesView))
        }
    }
}
