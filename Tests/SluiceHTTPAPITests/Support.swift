import Foundation

/// Runs blocking work (curl to the test API) on a thread of its own and awaits it, so a test's
/// waiting does not hold one of the cooperative threads.
func offPool<T: Sendable>(_ body: @escaping () throws -> T) async throws -> T {
    let work = UncheckedWork(run: body)
    return try await withCheckedThrowingContinuation { continuation in
        Thread { continuation.resume(with: Result { try work.run() }) }.start()
    }
}

struct UncheckedWork<T>: @unchecked Sendable { let run: () throws -> T }
