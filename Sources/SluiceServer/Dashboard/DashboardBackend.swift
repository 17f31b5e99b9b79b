import Foundation
import Hummingbird
import Logging
import SluiceCore
import SluiceFormats

/// What the dashboard's page per pipeline reads and does: the pipeline's recent runs, its
/// checkpoint and its dead letters (paged); with writes enabled (`--dashboard-writes`), replay
/// and drop of dead letters.
public struct DashboardBackend: Sendable {
    public let plans: [PipelinePlan]
    public let store: any StateStore
    public let logger: Logger
    /// Replay and drop from the page (off by default: the dashboard is read-only).
    public var writes = false

    public init(plans: [PipelinePlan], store: any StateStore, logger: Logger, writes: Bool = false) {
        self.plans = plans
        self.store = store
        self.logger = logger
        self.writes = writes
    }

    /// `GET /api/v1/pipelines/{name}?after=ID&limit=N`.
    func details(_ name: String, after: Int64, limit: Int) async throws -> [UInt8] {
        let runs = try await store.runs(pipeline: name, limit: 20)
        let checkpoint = try await store.checkpoint(pipeline: name).partitions
        let letters = try await store.deadLetters(matching: DeadLetterFilter(pipeline: name, afterID: after), limit: limit + 1)
        let total = try await store.deadLetterStats(matching: DeadLetterFilter(pipeline: name), now: Date()).reduce(0) { $0 + $1.count }
        let q = { (s: String) in RowRendering.quote(s) }
        func n(_ d: Date?) -> String { d.map { String($0.timeIntervalSince1970) } ?? "null" }
        let runText = runs.map { r in
            "{\"id\":\(r.id),\"status\":\(q(r.status.rawValue)),\"started_at\":\(n(r.startedAt)),\"ended_at\":\(n(r.endedAt)),"
                + "\"records_in\":\(r.recordsIn),\"records_out\":\(r.recordsOut),\"dead_lettered\":\(r.deadLettered),\"duplicates\":\(r.duplicates),"
                + "\"message\":\(r.message.map { q($0) } ?? "null")}"
        }
        let cpText = checkpoint.keys.sorted().map { "{\"partition\":\(q($0)),\"position\":\(q(checkpoint[$0]!))}" }
        let dlText = letters.prefix(limit).map { l in
            "{\"id\":\(l.id),\"stage\":\(q(l.letter.stage)),\"reason\":\(q(l.letter.errorKind)),\"message\":\(q(l.letter.message)),"
                + "\"location\":\(q(l.location)),\"attempts\":\(l.letter.attempts),\"first_seen\":\(n(l.firstSeen)),"
                + "\"raw\":\(q(String(decoding: l.letter.raw.prefix(4096), as: UTF8.self))),\"raw_bytes\":\(l.letter.raw.count)}"
        }
        let next = letters.count > limit ? String(letters[limit - 1].id) : "null"
        let body =
            "{\"pipeline\":\(q(name)),\"writes\":\(writes),\"runs\":[\(runText.joined(separator: ","))],\"checkpoint\":[\(cpText.joined(separator: ","))],"
            + "\"dead_letters\":{\"total\":\(total),\"next_after\":\(next),\"page\":[\(dlText.joined(separator: ","))]}}"
        return Array(body.utf8)
    }

    /// `POST /api/v1/pipelines/{name}/dead-letters/{replay|drop}?id=…`: replay or drop the given
    /// dead letters (all of the pipeline's when no id is given).
    func act(_ action: String, pipeline name: String, ids: [Int64]) async throws -> [UInt8] {
        let filter = DeadLetterFilter(pipeline: name, ids: ids)
        switch action {
        case "drop":
            let dropped = try await store.deleteDeadLetters(matching: filter)
            logger.notice("dead letters dropped from the dashboard", metadata: ["pipeline": "\(name)", "count": "\(dropped)"])
            return Array("{\"dropped\":\(dropped)}".utf8)
        default:
            guard let plan = plans.first(where: { $0.name == name }) else { throw SluiceError(.configuration, "no pipeline \(name)") }
            var replay = DeadLetterReplay(plan: plan, store: store, logger: logger, filter: filter)
            replay.renderedRows = RenderedRowDecoder()
            if let refusal = replay.refusal { throw SluiceError(.unsupported, refusal) }
            let t = try await replay.run()
            logger.notice(
                "dead letters replayed from the dashboard",
                metadata: ["pipeline": "\(name)", "replayed": "\(t.replayed)", "failed_again": "\(t.failedAgain)"])
            return Array("{\"replayed\":\(t.replayed),\"failed_again\":\(t.failedAgain),\"dropped\":\(t.dropped),\"skipped\":\(t.skipped)}".utf8)
        }
    }
}

extension StoredDeadLetter {
    var location: String { letter.location }
}

extension DashboardRoutes {
    static func addBackend(
        to router: Router<BasicRequestContext>, backend: DashboardBackend, authorize: @escaping @Sendable (Request) async -> Response?
    ) {
        let names = Set(backend.plans.map(\.name))
        @Sendable func json(_ status: HTTPResponse.Status, _ body: [UInt8]) -> Response {
            Response(status: status, headers: [.contentType: "application/json", .cacheControl: "no-store"], body: .init(byteBuffer: ByteBuffer(bytes: body)))
        }
        @Sendable func problem(_ status: HTTPResponse.Status, _ detail: String) -> Response {
            json(
                status, Array("{\"title\":\(RowRendering.quote(status.reasonPhrase)),\"status\":\(status.code),\"detail\":\(RowRendering.quote(detail))}".utf8))
        }
        router.get("/api/v1/pipelines/:name") { request, context -> Response in
            if let refused = await authorize(request) { return refused }
            guard let name = context.parameters.get("name"), names.contains(name) else { return problem(.notFound, "no such pipeline") }
            let query = request.uri.queryParameters
            let after = query["after"].flatMap { Int64($0) } ?? 0
            let limit = min(max(query["limit"].flatMap { Int($0) } ?? 50, 1), 500)
            do {
                return json(.ok, try await backend.details(name, after: after, limit: limit))
            } catch {
                return problem(.serviceUnavailable, "\(error)")
            }
        }
        router.post("/api/v1/pipelines/:name/dead-letters/:action") { request, context -> Response in
            if let refused = await authorize(request) { return refused }
            guard backend.writes else {
                return problem(.forbidden, "the dashboard is read-only; start the process with --dashboard-writes to replay and drop from it")
            }
            guard let name = context.parameters.get("name"), names.contains(name) else { return problem(.notFound, "no such pipeline") }
            guard let action = context.parameters.get("action"), ["replay", "drop"].contains(action) else {
                return problem(.notFound, "actions: replay, drop")
            }
            let ids = request.uri.queryParameters[values: "id"].compactMap { Int64($0) }
            do {
                return json(.ok, try await backend.act(action, pipeline: name, ids: ids))
            } catch let error as SluiceError where error.code == .unsupported || error.code == .conflict {
                return problem(.conflict, error.message)
            } catch {
                return problem(.internalServerError, "\(error)")
            }
        }
    }
}
