import Foundation
import Hummingbird

/// An RFC 9457 problem document (`application/problem+json`): what is wrong and what to do.
public struct Problem: Sendable {
    public var status: HTTPResponse.Status
    /// A stable, machine-readable identifier of the kind of problem (`malformed-json`, `rate-limited`…).
    public var slug: String
    public var title: String
    public var detail: String
    /// Per-record issues, when the problem is about records.
    public var errors: [[String: any Sendable]] = []
    /// Extension members (RFC 9457 §3.2), e.g. the limit a request went past; they may not
    /// reuse the standard members' names.
    public var extensions: [String: any Sendable] = [:]
    public var extraHeaders: HTTPFields = [:]

    public init(_ status: HTTPResponse.Status, _ slug: String, _ title: String, detail: String) {
        self.status = status
        self.slug = slug
        self.title = title
        self.detail = detail
    }

    /// The JSON body.
    public func body(instance: String?) -> [UInt8] {
        var object: [String: Any] = extensions
        object.merge([
            "type": "urn:sluice:problem:\(slug)",
            "title": title,
            "status": Int(status.code),
            "detail": detail,
        ]) { _, standard in standard }
        if let instance { object["instance"] = instance }
        if !errors.isEmpty { object["errors"] = errors }
        let data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])) ?? Data()
        return [UInt8](data) + [0x0A]
    }

    public func response(instance: String? = nil) -> Response {
        var headers = extraHeaders
        headers[.contentType] = "application/problem+json"
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: body(instance: instance))))
    }
}
