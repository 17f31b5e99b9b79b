import Synchronization

/// What ``BoundedBuffer/next(timeout:)`` returns.
public enum BufferEvent<Element: Sendable>: Sendable {
    case element(Element)
    case timeout
    case finished
}

/// A single-producer, single-consumer queue bounded in elements and bytes.
///
/// `send` suspends while the buffer is full, so a slow consumer slows the producer
/// (backpressure) and memory stays bounded. One element is always admitted when the
/// buffer is empty, whatever its size, so an oversized element cannot deadlock.
public final class BoundedBuffer<Element: Sendable>: Sendable {
    private struct State: ~Copyable {
        /// Queued elements from `head` on; taken slots are set to nil at once, so the buffer
        /// never keeps a consumed element alive.
        var items: [(Element, Int)?] = []
        var head = 0
        var bytes = 0
        var finished = false
        var failure: (any Error)?
        var producer: CheckedContinuation<Void, any Error>?
        var consumer: CheckedContinuation<BufferEvent<Element>, any Error>?
        var consumerToken = 0
        var count: Int { items.count - head }
    }

    private let state = Mutex(State())
    public let maxCount: Int
    public let maxBytes: Int

    public init(maxCount: Int, maxBytes: Int) {
        precondition(maxCount > 0)
        self.maxCount = maxCount
        self.maxBytes = maxBytes
    }

    /// Elements waiting (for the queue-depth gauge).
    public var depth: Int { state.withLock { $0.count } }

    /// Appends `element`, waiting while the buffer is full. Throws `CancellationError` if the
    /// producing task is cancelled while waiting.
    public func send(_ element: Element, bytes: Int) async throws {
        while true {
            try Task.checkCancellation()
            let admitted: Bool = state.withLock { s in
                if s.count == 0 || (s.count < maxCount && s.bytes + bytes <= maxBytes) {
                    if let consumer = s.consumer {
                        s.consumer = nil
                        consumer.resume(returning: .element(element))
                    } else {
                        s.items.append((element, bytes))
                        s.bytes += bytes
                    }
                    return true
                }
                return false
            }
            if admitted { return }
            try await withTaskCancellationHandler {
                try await withCheckedThrowingContinuation { (c: CheckedContinuation<Void, any Error>) in
                    let resumeNow = state.withLock { s -> Bool in
                        if s.count < maxCount && s.bytes + bytes <= maxBytes || s.count == 0 { return true }
                        s.producer = c
                        return false
                    }
                    if resumeNow { c.resume() }
                }
            } onCancel: {
                state.withLock { s in
                    s.producer.take()
                }?.resume(throwing: CancellationError())
            }
        }
    }

    /// Marks the end of input; the consumer gets the remaining elements, then `.finished`
    /// (or `error`, if given).
    public func finish(throwing error: (any Error)? = nil) {
        let consumer = state.withLock { s -> CheckedContinuation<BufferEvent<Element>, any Error>? in
            s.finished = true
            s.failure = error
            return s.count == 0 ? s.consumer.take() : nil
        }
        if let consumer {
            if let error { consumer.resume(throwing: error) } else { consumer.resume(returning: .finished) }
        }
    }

    private func takeNow(_ s: inout State) -> BufferEvent<Element>?? {
        if s.count > 0 {
            let (element, bytes) = s.items[s.head]!
            s.items[s.head] = nil
            s.head += 1
            s.bytes -= bytes
            if s.head == s.items.count {
                s.items.removeAll(keepingCapacity: true)
                s.head = 0
            } else if s.head > 64 {
                s.items.removeFirst(s.head)
                s.head = 0
            }
            return .some(.element(element))
        }
        if s.finished { return s.failure == nil ? .some(.finished) : .some(nil) }
        return nil
    }

    /// The next element, `.finished` at the end, or `.timeout` when `timeout` passes first.
    /// No element is ever lost to a timeout.
    public func next(timeout: Duration? = nil) async throws -> BufferEvent<Element> {
        let immediate: BufferEvent<Element>?? = state.withLock { s in
            let r = takeNow(&s)
            if r != nil, let producer = s.producer.take() { producer.resume() }
            return r
        }
        switch immediate {
        case let .some(.some(event)): return event
        case .some(.none): throw state.withLock { $0.failure } ?? CancellationError()
        case .none: break
        }
        return try await withThrowingTaskGroup(of: Void.self) { group in
            let token = state.withLock { s -> Int in
                s.consumerToken += 1; return s.consumerToken
            }
            if let timeout {
                group.addTask { [self] in
                    try? await Task.sleep(for: timeout)
                    expireConsumer(token: token, with: .timeout)
                }
            }
            let event = try await withTaskCancellationHandler {
                try await withCheckedThrowingContinuation { (c: CheckedContinuation<BufferEvent<Element>, any Error>) in
                    let ready: Result<BufferEvent<Element>, any Error>? = state.withLock { s in
                        switch takeNow(&s) {
                        case let .some(.some(e)):
                            if let p = s.producer.take() { p.resume() }
                            return .success(e)
                        case .some(.none): return .failure(s.failure ?? CancellationError())
                        case .none:
                            if token != s.consumerToken { return .success(.timeout) }
                            s.consumer = c
                            return nil
                        }
                    }
                    if let ready { c.resume(with: ready) }
                }
            } onCancel: {
                state.withLock { $0.consumer.take() }?.resume(throwing: CancellationError())
            }
            group.cancelAll()
            if case .element = event {
                if let p = state.withLock({ $0.producer.take() }) { p.resume() }
            }
            return event
        }
    }

    private func expireConsumer(token: Int, with event: BufferEvent<Element>) {
        let consumer = state.withLock { s -> CheckedContinuation<BufferEvent<Element>, any Error>? in
            guard s.consumerToken == token else { return nil }
            s.consumerToken += 1
            return s.consumer.take()
        }
        consumer?.resume(returning: event)
    }
}
