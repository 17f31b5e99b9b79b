import Synchronization

/// The top-level field names a push stream has: its declared columns, its arrival stamp, and
/// every field of the records the endpoint accepted since the server started (or found queued
/// when it started). The endpoint checks each request against it before answering 202, so the
/// stream's reader, whose decoder learns the same names from the same records, never meets a
/// field past its column cap (``HTTPStreamOptions/maxColumns``).
///
/// Names of records that later fail (a type mismatch, a queue write that failed) stay counted:
/// the catalog may know more names than the decoder, never fewer.
final class StreamFieldCatalog: Sendable {
    /// Why a request may not add its new fields.
    struct Refusal: Sendable, Hashable {
        enum Limit: String, Sendable {
            /// `max_new_fields`: new names in one request.
            case newFieldsPerRequest = "max_new_fields"
            /// `max_columns`: names the stream may have in all.
            case columns = "max_columns"
        }
        var limit: Limit
        /// The limit's value.
        var allowed: Int
        /// Names the stream had before the request.
        var known: Int
        /// The request's new names, in first-seen order.
        var newNames: [String]
    }

    let maxNewPerRequest: Int
    let maxColumns: Int
    private let names: Mutex<Set<String>>

    init(initial: [String], maxNewPerRequest: Int, maxColumns: Int) {
        self.maxNewPerRequest = maxNewPerRequest
        self.maxColumns = maxColumns
        names = Mutex(Set(initial))
    }

    /// How many names the stream has.
    var count: Int { names.withLock { $0.count } }

    /// Adds names already in the stream (records queued before the server started), whatever the limits.
    func learn<S: Sequence<String>>(_ more: S) {
        names.withLock { $0.formUnion(more) }
    }

    /// Adds the names a request brings, or refuses them all (adding none) when the new ones are
    /// more than one request may add, or would take the stream past its column cap.
    /// Check and addition are one step, so concurrent requests cannot pass the cap together.
    func admit(_ requestNames: [String]) -> Refusal? {
        names.withLock { known in
            var new: [String] = []
            for name in requestNames where !known.contains(name) { new.append(name) }
            guard !new.isEmpty else { return nil }
            if new.count > maxNewPerRequest {
                return Refusal(limit: .newFieldsPerRequest, allowed: maxNewPerRequest, known: known.count, newNames: new)
            }
            if known.count + new.count > maxColumns {
                return Refusal(limit: .columns, allowed: maxColumns, known: known.count, newNames: new)
            }
            known.formUnion(new)
            return nil
        }
    }
}
