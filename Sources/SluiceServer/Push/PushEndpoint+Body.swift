import Hummingbird
import HTTPTypes
import NIOCore

extension PushEndpoint {
    /// Reads the body, up to `limit` bytes and within ``bodyTimeout`` (a slow sender cannot hold
    /// memory forever), charging `memory` as the bytes arrive: twice each byte received (the
    /// buffer grows by doubling), beyond what the request holds already (an authenticated body of
    /// announced length is reserved before it is read). A stalled upload so holds only what it
    /// sent, and a body the budget cannot hold is refused (503) as soon as that is known.
    func readBody(_ request: Request, stream: String, limit: Int, memory: MemoryReservation) async throws -> [UInt8] {
        let body = request.body
        let timeout = bodyTimeout
        let announced = request.headers[.contentLength].flatMap { Int($0) }
        // Problems are made only when one is the answer (this runs for every request).
        let tooLarge: @Sendable () -> ProblemThrown = {
            Self.fail(.contentTooLarge, "body-too-large", "Body too large", "the body exceeds \(limit) bytes; split the batch")
        }
        let read: @Sendable () async -> Result<[UInt8], any Error> = {
            var charged = memory.held
            var bytes: [UInt8] = []
            if let announced, charged >= 2 * announced { bytes.reserveCapacity(announced) }
            do {
                for try await chunk in body {
                    let count = bytes.count + chunk.readableBytes
                    guard count <= limit else { throw tooLarge() }
                    if 2 * count > charged {
                        guard memory.grow(by: 2 * count - charged, alone: true) else { throw Self.busyProblem }
                        charged = 2 * count
                    }
                    bytes.append(contentsOf: chunk.readableBytesView)
                }
                return .success(bytes)
            } catch {
                return .failure(error)
            }
        }
        let outcome: Result<[UInt8], any Error>?
        if let announced, announced <= 64 << 10 {
            // A small body holds little memory; the connection's idle timeout bounds it. No timer per request.
            outcome = await read()
        } else {
            outcome = await withTaskGroup(of: Result<[UInt8], any Error>?.self) { group in
                group.addTask { await read() }
                group.addTask {
                    try? await Task.sleep(for: timeout)
                    return nil
                }
                let first = await group.next() ?? nil
                group.cancelAll()
                return first
            }
        }
        switch outcome {
        case .success(let bytes)?:
            return bytes
        case .failure(let problem as ProblemThrown)?:
            if problem.problem.slug == Self.busyProblem.problem.slug { metrics.backpressure(stream: stream).increment() }
            throw problem
        case .failure(let error as HTTPError)? where error.status == .contentTooLarge:
            throw tooLarge()
        case .failure?:
            throw Self.fail(.badRequest, "incomplete-body", "Incomplete body", "the connection ended before the whole body arrived")
        case nil:
            throw Self.fail(
                .requestTimeout, "body-timeout", "Body too slow",
                "the body did not arrive within \(timeout.components.seconds) seconds; send it faster or in smaller requests")
        }
    }

    /// The answer when the bodies in flight fill the memory budget.
    static var busyProblem: ProblemThrown {
        fail(
            .serviceUnavailable, "busy", "Too many requests in flight",
            "the server holds its maximum of request bodies in memory; retry after the Retry-After delay",
            headers: [.retryAfter: "1"])
    }

    /// ``busyProblem``, counted as backpressure on `stream`.
    func busy(stream: String) -> ProblemThrown {
        metrics.backpressure(stream: stream).increment()
        return Self.busyProblem
    }
}
