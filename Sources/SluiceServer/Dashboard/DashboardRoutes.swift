import Hummingbird
import HTTPTypes
import SluiceCore

/// `GET /` (the dashboard page) and `GET /api/v1/status` (its data, JSON), on the metrics
/// port of `sluice run` and on `sluice serve`. `authorize` answers a refusal for a request the
/// data may not go to (a server listening beyond loopback asks for an API key), else nil.
public enum DashboardRoutes {
    public static func add(
        to router: Router<BasicRequestContext>, history: StatusHistory, tap: TapHub? = nil, backend: DashboardBackend? = nil,
        authorize given: @escaping @Sendable (Request) async -> Response? = { _ in nil }
    ) {
        // A refusal asks the browser for credentials: the API key as the Basic password (or user).
        let authorize: @Sendable (Request) async -> Response? = { request in
            guard var refused = await given(request) else { return nil }
            if refused.status == .unauthorized { refused.headers[.wwwAuthenticate] = "Basic realm=\"sluice\", charset=\"UTF-8\"" }
            return refused
        }
        if let tap { addTap(to: router, hub: tap, pipelines: history.statuses.map(\.pipeline), authorize: authorize) }
        if let backend { addBackend(to: router, backend: backend, authorize: authorize) }
        router.get("/") { request, _ -> Response in
            if let refused = await authorize(request) { return refused }
            return Response(
                status: .ok,
                headers: [.contentType: "text/html; charset=utf-8", .cacheControl: "no-store", .init("Content-Security-Policy")!: csp],
                body: .init(byteBuffer: ByteBuffer(string: DashboardPage.html)))
        }
        router.get("/api/v1/status") { request, _ -> Response in
            if let refused = await authorize(request) { return refused }
            return Response(
                status: .ok, headers: [.contentType: "application/json", .cacheControl: "no-store"],
                body: .init(byteBuffer: ByteBuffer(bytes: history.json())))
        }
    }

    /// Only the page's own inline script and style, and requests to its own origin.
    static let csp = "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; img-src 'self' data:"

    /// `GET /api/v1/tap?pipeline=P&stage=source|sink|dead-letter&limit=N&timeout=S`: a live
    /// sample of the pipeline's records as NDJSON, streamed until `limit` lines (default 10, at
    /// most 10 000) or `timeout` seconds (default 300), whichever comes first.
    static func addTap(
        to router: Router<BasicRequestContext>, hub: TapHub, pipelines: [String], authorize: @escaping @Sendable (Request) async -> Response?
    ) {
        router.get("/api/v1/tap") { request, _ -> Response in
            if let refused = await authorize(request) { return refused }
            let query = request.uri.queryParameters
            guard let pipeline = query["pipeline"].map(String.init), pipelines.contains(pipeline) else {
                return Response(
                    status: .notFound, headers: [.contentType: "text/plain; charset=utf-8"],
                    body: .init(byteBuffer: ByteBuffer(string: "no such pipeline; this process runs: \(pipelines.joined(separator: ", "))\n")))
            }
            guard let stage = TapHub.Stage(rawValue: query["stage"].map(String.init) ?? "sink") else {
                return Response(
                    status: .badRequest, headers: [.contentType: "text/plain; charset=utf-8"],
                    body: .init(byteBuffer: ByteBuffer(string: "stage: source, sink or dead-letter\n")))
            }
            let limit = min(max(query["limit"].flatMap { Int($0) } ?? 10, 1), 10_000)
            let timeout = min(max(query["timeout"].flatMap { Int($0) } ?? 300, 1), 3600)
            return Response(
                status: .ok, headers: [.contentType: "application/x-ndjson", .cacheControl: "no-store"],
                body: ResponseBody { writer in
                    let (id, lines) = hub.subscribe(pipeline: pipeline, stage: stage)
                    defer { hub.unsubscribe(id) }
                    try await withThrowingTaskGroup(of: Void.self) { group in
                        // A tap nobody reads any more (a client gone while nothing flowed) ends
                        // after `timeout`: the subscription never outlives it.
                        group.addTask {
                            try await Task.sleep(for: .seconds(timeout))
                            hub.unsubscribe(id)
                        }
                        var sent = 0
                        for await line in lines {
                            try await writer.write(ByteBuffer(string: line + "\n"))
                            sent += 1
                            if sent >= limit { break }
                        }
                        group.cancelAll()
                    }
                    try await writer.finish(nil)
                })
        }
    }
}
