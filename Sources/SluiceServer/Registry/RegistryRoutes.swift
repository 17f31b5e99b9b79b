import Foundation
import Hummingbird
import HTTPTypes
import SluiceCore

/// The Confluent Schema Registry REST API (its core endpoints), so existing registry clients and
/// tools work against `sluice serve` unchanged. Errors are `{"error_code": N, "message": "…"}`
/// with Confluent's codes (40401 subject, 40402 version, 40403 schema not found, 40409 no
/// subject mode, 409 incompatible, 42201 invalid schema, 42202 invalid version, 42203 invalid
/// compatibility level, 42204 invalid mode, 42205 read-only subject; 404 an unknown route).
public struct RegistryRoutes: Sendable {
    public static let contentType = "application/vnd.schemaregistry.v1+json"

    let registry: SchemaRegistry
    /// Nil when a write may proceed; otherwise the response refusing it (authentication).
    let authorizeWrite: @Sendable (Request) async -> Response?

    public init(registry: SchemaRegistry, authorizeWrite: @escaping @Sendable (Request) async -> Response?) {
        self.registry = registry
        self.authorizeWrite = authorizeWrite
    }

    public func add(to router: Router<BasicRequestContext>) {
        let registry = self.registry
        let authorize = self.authorizeWrite

        @Sendable func read(_ body: @escaping @Sendable (Request, BasicRequestContext) async throws -> Any)
            -> @Sendable (Request, BasicRequestContext) async -> Response
        {
            { request, context in
                do { return Self.json(try await body(request, context)) } catch { return Self.error(error) }
            }
        }
        @Sendable func write(_ body: @escaping @Sendable (Request, BasicRequestContext) async throws -> Any)
            -> @Sendable (Request, BasicRequestContext) async -> Response
        {
            { request, context in
                if let refused = await authorize(request) { return refused }
                do { return Self.json(try await body(request, context)) } catch { return Self.error(error) }
            }
        }

        router.get("/subjects", use: read { r, _ in try await registry.subjects(includeDeleted: Self.flag(r, "deleted")) })
        router.get(
            "/subjects/:subject/versions",
            use: read { r, c in
                try await registry.versions(subject: Self.subject(c), includeDeleted: Self.flag(r, "deleted")).filter { Self.flag(r, "deleted") || !$0.deleted }
                    .map(\.version)
            })
        router.get(
            "/subjects/:subject/versions/:version",
            use: read { r, c in
                let number = try SchemaRegistry.versionNumber(c.parameters.get("version") ?? "")
                let (v, s) = try await registry.version(subject: Self.subject(c), number, includeDeleted: Self.flag(r, "deleted"))
                return Self.describe(v, s)
            })
        router.get("/subjects/:subject/versions/:version/schema") { request, c -> Response in
            do {
                let number = try SchemaRegistry.versionNumber(c.parameters.get("version") ?? "")
                let (_, s) = try await registry.version(subject: Self.subject(c), number)
                return Response(status: .ok, headers: [.contentType: Self.contentType], body: .init(byteBuffer: ByteBuffer(string: s.text)))
            } catch {
                return Self.error(error)
            }
        }
        router.post(
            "/subjects/:subject/versions",
            use: write { r, c in
                let (text, format) = try await Self.schemaBody(r)
                let (id, _, _) = try await registry.register(subject: Self.subject(c), text: text, format: format)
                return ["id": id]
            })
        // A lookup and a compatibility check change nothing: reads (serializers call them without write rights).
        router.post(
            "/subjects/:subject",
            use: read { r, c in
                let (text, format) = try await Self.schemaBody(r)
                let (v, s) = try await registry.lookup(subject: Self.subject(c), text: text, format: format)
                return Self.describe(v, s)
            })
        router.delete(
            "/subjects/:subject",
            use: write { r, c in
                try await registry.deleteSubject(Self.subject(c), permanent: Self.flag(r, "permanent"))
            })
        router.delete(
            "/subjects/:subject/versions/:version",
            use: write { r, c in
                let number = try SchemaRegistry.versionNumber(c.parameters.get("version") ?? "")
                return try await registry.deleteVersion(subject: Self.subject(c), version: number, permanent: Self.flag(r, "permanent"))
            })
        router.get("/schemas/types", use: read { _, _ in SchemaFormat.allCases.map(\.rawValue) })
        router.get(
            "/schemas/ids/:id",
            use: read { _, c in
                let s = try await registry.schema(id: try Self.schemaID(c))
                var out: [String: Any] = ["schema": s.text]
                if s.format != .avro { out["schemaType"] = s.format.rawValue }
                return out
            })
        router.get("/schemas/ids/:id/schema") { _, c -> Response in
            do {
                let s = try await registry.schema(id: try Self.schemaID(c))
                return Response(status: .ok, headers: [.contentType: Self.contentType], body: .init(byteBuffer: ByteBuffer(string: s.text)))
            } catch {
                return Self.error(error)
            }
        }
        router.get(
            "/schemas/ids/:id/versions",
            use: read { r, c in
                let versions = try await registry.versions(
                    schemaID: try Self.schemaID(c), subject: r.uri.queryParameters.get("subject"), includeDeleted: Self.flag(r, "deleted"))
                return Self.page(r, versions.map { ["subject": $0.subject, "version": $0.version] as [String: Any] })
            })
        router.get(
            "/schemas/ids/:id/subjects",
            use: read { r, c in
                let versions = try await registry.versions(
                    schemaID: try Self.schemaID(c), subject: r.uri.queryParameters.get("subject"), includeDeleted: Self.flag(r, "deleted"))
                var subjects: [String] = []
                for v in versions where subjects.last != v.subject { subjects.append(v.subject) }
                return Self.page(r, subjects)
            })
        router.post(
            "/compatibility/subjects/:subject/versions/:version",
            use: read { r, c in
                let number = try SchemaRegistry.versionNumber(c.parameters.get("version") ?? "")
                let (text, format) = try await Self.schemaBody(r)
                let problems = try await registry.checkCompatibility(subject: Self.subject(c), version: number, text: text, format: format)
                var out: [String: Any] = ["is_compatible": problems.isEmpty]
                if Self.flag(r, "verbose") { out["messages"] = problems }
                return out
            })
        router.get(
            "/config",
            use: read { _, _ in
                ["compatibilityLevel": try await registry.effectiveCompatibility(subject: nil).rawValue]
            })
        router.put(
            "/config",
            use: write { r, _ in
                ["compatibility": try await registry.setCompatibility(try await Self.compatibilityBody(r), subject: nil).rawValue]
            })
        router.get(
            "/config/:subject",
            use: read { r, c in
                if let m = try await registry.compatibility(subject: Self.subject(c)) { return ["compatibilityLevel": m.rawValue] }
                guard Self.flag(r, "defaultToGlobal") else {
                    throw RegistryError(40408, "Subject '\(Self.subject(c))' does not have subject-level compatibility configured")
                }
                return ["compatibilityLevel": try await registry.effectiveCompatibility(subject: nil).rawValue]
            })
        router.put(
            "/config/:subject",
            use: write { r, c in
                ["compatibility": try await registry.setCompatibility(try await Self.compatibilityBody(r), subject: Self.subject(c)).rawValue]
            })
        router.delete(
            "/config/:subject",
            use: write { _, c in
                ["compatibilityLevel": try await registry.deleteCompatibility(subject: Self.subject(c)).rawValue]
            })
        router.get("/mode", use: read { _, _ in ["mode": try await registry.effectiveMode(subject: nil).rawValue] })
        router.put("/mode", use: write { r, _ in ["mode": try await registry.setMode(try await Self.modeBody(r), subject: nil).rawValue] })
        router.get(
            "/mode/:subject",
            use: read { r, c in
                if let m = try await registry.mode(subject: Self.subject(c)) { return ["mode": m.rawValue] }
                guard Self.flag(r, "defaultToGlobal") else { throw RegistryError.modeNotConfigured(Self.subject(c)) }
                return ["mode": try await registry.effectiveMode(subject: nil).rawValue]
            })
        router.put(
            "/mode/:subject",
            use: write { r, c in ["mode": try await registry.setMode(try await Self.modeBody(r), subject: Self.subject(c)).rawValue] })
        router.delete("/mode/:subject", use: write { _, c in ["mode": try await registry.deleteMode(subject: Self.subject(c)).rawValue] })
    }

    static func schemaID(_ c: BasicRequestContext) throws -> Int64 {
        let raw = c.parameters.get("id") ?? ""
        guard let id = Int64(raw) else { throw RegistryError(40403, "Schema \(raw) not found") }
        return id
    }

    /// `offset` and `limit` (negative: no limit) of Confluent's paged listings.
    static func page<T>(_ r: Request, _ items: [T]) -> [T] {
        let offset = max(0, r.uri.queryParameters.get("offset").flatMap { Int($0) } ?? 0)
        let limit = r.uri.queryParameters.get("limit").flatMap { Int($0) } ?? -1
        let rest = items.dropFirst(offset)
        return Array(limit < 0 ? rest : rest.prefix(limit))
    }

    static func modeBody(_ request: Request) async throws -> String {
        guard let mode = try await body(request)["mode"] as? String else { throw RegistryError(42204, "Invalid mode: \"mode\" is required") }
        return mode
    }

    /// The subject from the path, percent-decoded (clients encode `/`, `:` and spaces differently).
    static func subject(_ c: BasicRequestContext) -> String {
        let raw = c.parameters.get("subject") ?? ""
        return raw.removingPercentEncoding ?? raw
    }
    static func flag(_ r: Request, _ name: String) -> Bool { r.uri.queryParameters.get(name) == "true" }

    static func describe(_ v: SubjectVersion, _ s: RegisteredSchema) -> [String: Any] {
        var out: [String: Any] = ["subject": v.subject, "version": v.version, "id": s.id, "schema": s.text]
        if s.format != .avro { out["schemaType"] = s.format.rawValue }
        return out
    }

    static func body(_ request: Request) async throws -> [String: Any] {
        let buffer: ByteBuffer
        do { buffer = try await request.body.collect(upTo: 1 << 20) } catch {
            throw RegistryError(42201, "Invalid schema: the request body is larger than 1 MB")
        }
        guard let object = try? JSONSerialization.jsonObject(with: Data(buffer: buffer)) as? [String: Any] else {
            throw RegistryError(42201, "Invalid schema: the request body must be a JSON object")
        }
        return object
    }

    /// `{"schema": "…", "schemaType": "AVRO"|"JSON"|"SLUICE"}` (AVRO when absent).
    static func schemaBody(_ request: Request) async throws -> (String, SchemaFormat) {
        let object = try await body(request)
        guard let text = object["schema"] as? String else { throw RegistryError(42201, "Invalid schema: \"schema\" (a string) is required") }
        let typeName = (object["schemaType"] as? String)?.uppercased() ?? "AVRO"
        guard let format = SchemaFormat(rawValue: typeName) else {
            throw RegistryError(42201, "Invalid schema: unsupported schemaType '\(typeName)' (AVRO, JSON or SLUICE)")
        }
        if let refs = object["references"] as? [Any], !refs.isEmpty {
            throw RegistryError(42201, "Invalid schema: schema references are not supported")
        }
        return (text, format)
    }

    static func compatibilityBody(_ request: Request) async throws -> String {
        let object = try await body(request)
        guard let level = (object["compatibility"] ?? object["compatibilityLevel"]) as? String else {
            throw RegistryError(42203, "Invalid compatibility level: \"compatibility\" is required")
        }
        return level
    }

    static func json(_ value: Any) -> Response {
        let data = (try? JSONSerialization.data(withJSONObject: value, options: [.fragmentsAllowed, .withoutEscapingSlashes])) ?? Data("{}".utf8)
        return Response(status: .ok, headers: [.contentType: contentType], body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }

    static func error(_ error: any Error) -> Response {
        let e = error as? RegistryError ?? RegistryError(50001, "Error in the backend datastore: \(error)")
        let data = (try? JSONSerialization.data(withJSONObject: ["error_code": e.errorCode, "message": e.message])) ?? Data()
        return Response(status: .init(code: e.httpStatus), headers: [.contentType: contentType], body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }
}
