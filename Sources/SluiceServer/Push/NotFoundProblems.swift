import Foundation
import Hummingbird
import SluiceCore

/// Answers requests no route matched with a body that says why, never a blank 404: an RFC 9457
/// problem for the push API and the server's own paths, and a Confluent-style error
/// (`{"error_code": 404, …}`) for schema-registry paths when the registry is served. A path with
/// `.` or `..` segments is refused as such (400): the server does not normalize paths, so
/// `/v1/streams/x/../x/records` is never a second name of a stream. Add it to the router after
/// every route: it then wraps only the not-found responder.
struct NotFoundProblems<Context: RequestContext>: RouterMiddleware {
    /// Whether the schema registry's routes are served (its clients expect Confluent's errors).
    let registry: Bool

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch let error as HTTPError where error.status == .notFound {
            let path = request.uri.path
            let segments = path.split(separator: "/", omittingEmptySubsequences: false)
            if segments.contains(where: { $0 == "." || $0 == ".." || $0 == "%2e" || $0 == "%2E" || $0.lowercased() == "%2e%2e" }) {
                return Problem(
                    .badRequest, "invalid-path", "Invalid path",
                    detail: "the path has '.' or '..' segments, which this server does not resolve; send the canonical path"
                ).response()
            }
            let shown = Problem.excerpt(path)
            if registry, !path.hasPrefix("/v1/"), !["/healthz", "/readyz", "/metrics"].contains(path) {
                return RegistryRoutes.error(RegistryError(404, "HTTP 404 Not Found: no endpoint \(request.method) \(shown)"))
            }
            return Problem(
                .notFound, "no-such-endpoint", "No such endpoint",
                detail: "no endpoint \(request.method) \(shown); records go to POST /v1/streams/{stream}/records"
            ).response()
        }
    }
}

extension Problem {
    /// Client input quoted in a problem, cut to 64 characters (an over-long path or name is
    /// not echoed back whole).
    static func excerpt(_ text: String) -> String {
        text.count <= 64 ? text : String(text.prefix(64)) + "…"
    }
}
