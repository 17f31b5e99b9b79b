import HTTPTypes
import NIOCore
import NIOHTTP1
import NIOHTTPTypes
import NIOHTTPTypesHTTP1

/// Answers a request the HTTP/1 parser refuses with a problem document instead of a bare 400:
/// `431 header-fields-too-large` when the request line and header fields are over the parser's
/// limits, `400 invalid-request-target` when the path or query is not valid (raw bytes outside
/// ASCII, spaces), and `400 malformed-request` for any other request that is not HTTP/1.1.
///
/// It sits in the child channel after the HTTP codecs. A parse error that comes while no request
/// is being received belongs to the next request's head: the handler answers it (after the
/// responses still being written, if requests were pipelined), half-closes the connection and
/// discards whatever the client sends after it, so the answer is read before the connection
/// ends. An error inside a request's body is passed on: the endpoint reading that body answers it.
final class ParserErrorProblems: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPRequestPart
    typealias InboundOut = HTTPRequestPart
    typealias OutboundIn = HTTPResponsePart
    typealias OutboundOut = HTTPResponsePart

    /// A request head was read and its end was not yet.
    private var receivingRequest = false
    /// Requests read whose response has not ended yet.
    private var unansweredRequests = 0
    /// The answer to a parse error, waiting for the responses before it, or sent.
    private var refusal: Problem?
    private var refusalSent = false

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard refusal == nil else { return }
        switch unwrapInboundIn(data) {
        case .head:
            receivingRequest = true
            unansweredRequests += 1
        case .body:
            break
        case .end:
            receivingRequest = false
        }
        context.fireChannelRead(data)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        // Once refused, the decoder reports every later read as an error too: the client is done.
        guard refusal == nil else { return }
        guard !receivingRequest, let problem = Self.problem(for: error) else {
            context.fireErrorCaught(error)
            return
        }
        refusal = problem
        if unansweredRequests == 0 { sendRefusal(context: context) }
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        context.write(data, promise: promise)
        if case .end = unwrapOutboundIn(data) {
            unansweredRequests -= 1
            if unansweredRequests == 0, refusal != nil { sendRefusal(context: context) }
        }
    }

    private func sendRefusal(context: ChannelHandlerContext) {
        guard let refusal, !refusalSent else { return }
        refusalSent = true
        let body = refusal.body(instance: nil)
        var fields = refusal.extraHeaders
        fields[.contentType] = "application/problem+json"
        fields[.contentLength] = String(body.count)
        fields[.connection] = "close"
        context.write(wrapOutboundOut(.head(HTTPResponse(status: refusal.status, headerFields: fields))), promise: nil)
        context.write(wrapOutboundOut(.body(ByteBuffer(bytes: body))), promise: nil)
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
        // Output only: closing both ways with the client's bytes unread would reset the
        // connection and could destroy the answer before the client reads it.
        context.close(mode: .output, promise: nil)
    }

    /// The answer to a refused request, or nil for errors that are not about the request (I/O).
    static func problem(for error: any Error) -> Problem? {
        if let error = error as? HTTPParserError {
            switch error {
            case .headerOverflow:
                return Problem(
                    .requestHeaderFieldsTooLarge, "header-fields-too-large", "Request header fields too large",
                    detail:
                        "the request line and header fields exceed the server's limits (80 KB in all, 80 KB for one field, 1000 fields); "
                        + "send a shorter path and fewer or smaller headers (records go in the body)")
            case .invalidURL, .invalidPath, .invalidQueryString, .invalidFragment, .invalidHost, .invalidPort:
                return Problem(
                    .badRequest, "invalid-request-target", "Invalid request target",
                    detail:
                        "the path or query is not a valid request target: it may hold only visible ASCII characters; "
                        + "percent-encode other bytes (a space is %20, 'é' is %C3%A9)")
            default:
                return Problem(
                    .badRequest, "malformed-request", "Malformed request",
                    detail: "the request is not valid HTTP/1.1 (\(error)); check the request line, the header fields and the framing")
            }
        }
        if let error = error as? HTTP1TypeConversionError {
            return Problem(
                .badRequest, "malformed-request", "Malformed request",
                detail: "the request line cannot be served (\(error)); send METHOD /path HTTP/1.1")
        }
        return nil
    }
}
