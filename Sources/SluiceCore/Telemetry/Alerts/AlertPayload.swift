import Foundation

/// The bodies of alert notifications: Sluice's JSON, or a Slack-compatible message.
public enum AlertPayload {
    /// `{"version":"1","status":"firing","alert":…,"pipeline":…,"severity":…,"summary":…,"value":…,
    /// "threshold":…,"fired_at":…,"resolved_at":…,"id":…,"host":…}`; times in RFC 3339 UTC.
    public static func json(_ t: AlertTransition, host: String) -> [UInt8] {
        var fields: [(String, Any)] = [
            ("version", "1"), ("status", t.state.rawValue), ("alert", t.rule.name), ("pipeline", t.rule.pipeline),
            ("severity", t.rule.severity.rawValue), ("summary", t.rule.summary), ("value", t.value), ("threshold", t.rule.threshold),
            ("fired_at", timestamp(t.firedAt)), ("host", host),
        ]
        if t.state == .resolved { fields.append(("resolved_at", timestamp(t.at))) }
        if let id = t.id { fields.append(("id", id)) }
        return Array(object(fields).utf8)
    }

    /// `{"text": "…"}`, which Slack's incoming webhooks (and Mattermost, Discord's Slack route) accept.
    public static func slack(_ t: AlertTransition, host: String) -> [UInt8] {
        let head = t.state == .firing ? "[FIRING] \(t.rule.severity.rawValue.uppercased())" : "[RESOLVED]"
        let text = "\(head) \(t.rule.name) · pipeline \(t.rule.pipeline): \(t.rule.summary) (value \(format(t.value)), on \(host))"
        return Array(object([("text", text)]).utf8)
    }

    static func timestamp(_ d: Date) -> String {
        let f = ISO8601DateFormatter()
        f.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return f.string(from: d)
    }

    static func format(_ x: Double) -> String { x == x.rounded() && abs(x) < 1e15 ? String(Int64(x)) : String(format: "%.4g", x) }

    /// A JSON object with its keys in the given order.
    static func object(_ fields: [(String, Any)]) -> String {
        "{" + fields.map { key, value in "\(quote(key)):\(encode(value))" }.joined(separator: ",") + "}"
    }

    static func encode(_ value: Any) -> String {
        switch value {
        case let s as String: quote(s)
        case let n as Int64: String(n)
        case let d as Double: d.isFinite ? (d == d.rounded() && abs(d) < 1e15 ? String(Int64(d)) : String(d)) : "null"
        default: "null"
        }
    }

    /// `s` as a JSON string literal.
    static func quote(_ s: String) -> String { RowRendering.quote(s) }
}
