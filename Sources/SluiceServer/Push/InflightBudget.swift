import Synchronization

/// The bytes of request bodies the server holds at once, shared by all requests, with a smaller
/// share for bodies whose sender is not known yet.
///
/// A request whose credential is in its headers (an API key) is authenticated before it takes
/// anything, and draws on the whole ``limit``. A body whose credential is the body itself (a
/// webhook signature over it, checked once the body is in) or that needs none (an open stream)
/// is *anonymous*: it draws on ``anonymousLimit`` as well, until its signature is verified
/// (``MemoryReservation/authenticate()``). However many anonymous uploads stall or flood, they
/// leave authenticated requests at least `limit - anonymousLimit`.
public final class InflightBudget: Sendable {
    /// Bytes held by all bodies at once.
    public let limit: Int
    /// Bytes held by anonymous bodies at once.
    public let anonymousLimit: Int
    private let used = Mutex<Usage>(Usage())

    /// What the bodies in flight hold now.
    public struct Usage: Sendable, Equatable {
        public var total = 0
        /// The part of ``total`` held by anonymous bodies.
        public var anonymous = 0
    }

    /// `anonymousLimit` defaults to a quarter of `limit`.
    public init(limit: Int, anonymousLimit: Int? = nil) {
        self.limit = limit
        self.anonymousLimit = min(limit, anonymousLimit ?? limit / 4)
    }

    public var usage: Usage { used.withLock { $0 } }

    /// Takes `bytes` if they fit. With `aloneHolding`, the bytes the caller holds already, the
    /// caller may go beyond a limit when every byte counted against it is its own: one body may
    /// always proceed alone, however small the budget (its stream's `max_body` still bounds it).
    func take(_ bytes: Int, anonymous: Bool, aloneHolding held: Int?) -> Bool {
        used.withLock { u in
            let alone = held.map { u.total == $0 } ?? false
            guard u.total + bytes <= limit || alone else { return false }
            if anonymous {
                let aloneAnonymous = held.map { u.anonymous == $0 } ?? false
                guard u.anonymous + bytes <= anonymousLimit || aloneAnonymous else { return false }
                u.anonymous += bytes
            }
            u.total += bytes
            return true
        }
    }

    /// Gives back `bytes` (counted as anonymous when `anonymous`).
    func give(_ bytes: Int, anonymous: Bool) {
        used.withLock { u in
            u.total -= bytes
            if anonymous { u.anonymous -= bytes }
        }
    }

    /// `bytes` held by a body whose sender is now verified stop counting as anonymous.
    func authenticate(_ bytes: Int) {
        used.withLock { $0.anonymous -= bytes }
    }
}

/// One request's share of the ``InflightBudget``, grown as the request needs more and given back at the end.
final class MemoryReservation: @unchecked Sendable {
    let budget: InflightBudget
    // Used by one request only (its task, or one child task at a time while the request waits).
    private(set) var held = 0
    /// Whether the sender is not known yet (see ``InflightBudget``).
    private(set) var anonymous: Bool

    init(budget: InflightBudget, anonymous: Bool) {
        self.budget = budget
        self.anonymous = anonymous
    }

    /// Takes `bytes` more if they fit. `alone`: for the body itself, which may go beyond the
    /// budget when no other request holds anything (see ``InflightBudget/take(_:anonymous:aloneHolding:)``).
    func grow(by bytes: Int, alone: Bool = false) -> Bool {
        guard bytes > 0 else { return true }
        guard budget.take(bytes, anonymous: anonymous, aloneHolding: alone ? held : nil) else { return false }
        held += bytes
        return true
    }

    /// The sender is verified: what the request holds, and takes from now on, is no longer anonymous.
    func authenticate() {
        guard anonymous else { return }
        budget.authenticate(held)
        anonymous = false
    }

    func release() {
        budget.give(held, anonymous: anonymous)
        held = 0
    }
}
