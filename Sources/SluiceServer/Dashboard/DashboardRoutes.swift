import Hummingbird
import HTTPTypes
import SluiceCore

/// `GET /` (the dashboard page) and `GET /api/v1/status` (its data, JSON), on the metrics
/// port of `sluice run` and on `sluice serve`. `authorize` answers a refusal for a request the
/// data may not go to (a server listening beyond loopback asks for an API key), else nil.
public enum DashboardRoutes {
    public static func add(
        to router: Router<BasicRequestContext>, history: StatusHistory,
        authorize: @escaping @Sendable (Request) async -> Response? = { _ in nil }
    ) {
        router.get("/") { _, _ -> Response in
            Response(
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
}
