import AsyncHTTPClient
import Foundation
import NIOCore
import SluiceCore

/// Posts alert notifications to a URL: Sluice's JSON or a Slack-compatible message, signed
/// with HMAC-SHA256 when a secret is set (`X-Sluice-Timestamp`, and `X-Sluice-Signature:
/// sha256=<hex>` over `"<timestamp>.<body>"`, as the push endpoint verifies). One attempt per
/// ``send(_:)``; ``AlertEngine`` queues and retries.
public struct AlertWebhook: AlertNotifier {
    public let webhook: AlertsConfig.Webhook
    public let host: String
    public var timeout: TimeAmount = .seconds(10)

    public init(_ webhook: AlertsConfig.Webhook, host: String = ProcessInfo.processInfo.hostName) {
        self.webhook = webhook
        self.host = host
    }

    public var name: String { webhook.description }

    /// The request's body and headers for `transition`, signed at `now`.
    public func request(for transition: AlertTransition, now: Date = Date()) -> (body: [UInt8], headers: [(String, String)]) {
        let body = webhook.format == .slack ? AlertPayload.slack(transition, host: host) : AlertPayload.json(transition, host: host)
        var headers = [("Content-Type", "application/json"), ("User-Agent", "sluice/\(SluiceVersion.current)")]
        if let secret = webhook.secret {
            let timestamp = Int(now.timeIntervalSince1970)
            headers.append(("X-Sluice-Timestamp", String(timestamp)))
            headers.append(("X-Sluice-Signature", WebhookSignature.sign(body: body, timestamp: timestamp, secret: secret)))
        }
        return (body, headers)
    }

    public func send(_ transition: AlertTransition) async throws {
        let (body, headers) = request(for: transition)
        var request = HTTPClientRequest(url: webhook.url)
        request.method = .POST
        for (name, value) in headers { request.headers.add(name: name, value: value) }
        request.body = .bytes(ByteBuffer(bytes: body))
        let response = try await HTTPClient.shared.execute(request, timeout: timeout)
        // Read (and drop) the body so the connection can be reused.
        _ = try? await response.body.collect(upTo: 64 << 10)
        guard (200..<300).contains(response.status.code) else {
            throw SluiceError(.connection, "\(name) answered \(response.status.code)", location: name)
        }
    }
}
