import AsyncHTTPClient
import Foundation
import NIOCore
import SluiceCore

/// An OAuth 2.0 access token from the client-credentials grant (RFC 6749 section 4.4).
struct OAuth2Token {
    var value: String
    var lifetime: Duration
    /// When to fetch a new one: a minute before expiry, or after 75% of a short lifetime.
    var refreshAt: ContinuousClock.Instant

    struct Response: Decodable {
        var access_token: String
        var token_type: String?
        var expires_in: Double?
    }

    /// Requests a token with the client's id and secret in HTTP Basic authentication (the method
    /// every server must support), `grant_type=client_credentials` and the scope in the body.
    static func fetch(_ credentials: OAuth2ClientCredentials, using http: HTTPClient, timeout: TimeAmount, masker: SecretMasker) async throws -> OAuth2Token {
        var request = HTTPClientRequest(url: credentials.tokenURL)
        request.method = .POST
        func formEncoded(_ s: String) -> String {
            s.addingPercentEncoding(withAllowedCharacters: CharacterSet(charactersIn: "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~"))
                ?? s
        }
        let basic = Data("\(formEncoded(credentials.clientID)):\(formEncoded(credentials.clientSecret))".utf8).base64EncodedString()
        masker.add(basic)
        request.headers.add(name: "Authorization", value: "Basic \(basic)")
        request.headers.add(name: "Content-Type", value: "application/x-www-form-urlencoded")
        request.headers.add(name: "Accept", value: "application/json")
        var form = "grant_type=client_credentials"
        if let scope = credentials.scope { form += "&scope=\(formEncoded(scope))" }
        request.body = .bytes(ByteBuffer(string: form))
        let location = "source.http_api.auth.oauth2.token_url"
        let response: HTTPClientResponse
        let body: ByteBuffer
        do {
            response = try await http.execute(request, timeout: timeout)
            body = try await response.body.collect(upTo: 1 << 20)
        } catch {
            throw SluiceError(.connection, "cannot reach the OAuth2 token endpoint \(credentials.tokenURL): \(masker.mask("\(error)"))", location: location)
        }
        let text = masker.mask(String(decoding: body.readableBytesView.prefix(300), as: UTF8.self))
        guard response.status.code == 200 else {
            let status = response.status.code
            let code: SluiceError.Code = status >= 500 || status == 408 ? .unavailable : status == 429 ? .rateLimited : .authentication
            throw SluiceError(code, "the OAuth2 token endpoint \(credentials.tokenURL) answered \(response.status.code): \(text)", location: location)
        }
        guard let parsed = try? JSONDecoder().decode(Response.self, from: Data(body.readableBytesView)) else {
            throw SluiceError(.malformedInput, "the OAuth2 token endpoint answered without an access_token: \(text)", location: location)
        }
        let seconds = max(parsed.expires_in ?? 3600, 1)
        return OAuth2Token(value: parsed.access_token, lifetime: .seconds(seconds), refreshAt: refreshTime(lifetime: seconds, from: .now))
    }

    /// When a token living `lifetime` seconds from `start` is fetched again: a minute before it
    /// expires, or a quarter of its lifetime before for short-lived ones.
    static func refreshTime(lifetime seconds: Double, from start: ContinuousClock.Instant) -> ContinuousClock.Instant {
        let margin = min(60, seconds / 4)
        return start + .milliseconds(Int64((seconds - margin) * 1000))
    }
}
