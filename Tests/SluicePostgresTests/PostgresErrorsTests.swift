import SluiceCore
import Testing

@testable import SluicePostgres

/// How a failed statement is classified: what the server reports by SQLSTATE, and an error
/// without one (libpq's own) as a lost connection worth a retry when its message says the
/// connection broke.
@Suite struct PostgresErrorsTests {
    let url = try! PostgresURL("postgres://app:pw@db.example:5432/prod")

    @Test func anErrorWithoutASQLStateIsALostConnection() {
        // A server killed mid-statement: libpq's message, no SQLSTATE, and the connection's
        // status possibly still OK when the result is checked (seen in the outage test).
        let e = PostgresErrors.serverError(
            sqlState: "", message: "server closed the connection unexpectedly", detail: nil, hint: nil, connectionLost: false, url: url)
        #expect(e.code == .connection)
        #expect(e.isRetryable)
        #expect(e.message.contains("was lost"))
    }

    @Test func libpqsOtherErrorsAreNotRetried() {
        // A misused call is not a broken connection: retrying it would fail the same way.
        let e = PostgresErrors.serverError(
            sqlState: "", message: "number of parameters must be between 0 and 65535", detail: nil, hint: nil, connectionLost: false,
            url: url)
        #expect(!e.isRetryable)
        let ssl = PostgresErrors.serverError(
            sqlState: "", message: "SSL SYSCALL error: EOF detected", detail: nil, hint: nil, connectionLost: false, url: url)
        #expect(ssl.isRetryable && ssl.code == .connection)
    }

    @Test func serverErrorsAreClassifiedBySQLState() {
        func classify(_ state: String) -> SluiceError {
            PostgresErrors.serverError(sqlState: state, message: "m", detail: nil, hint: nil, connectionLost: false, url: url)
        }
        #expect(classify("08006").isRetryable && classify("08006").code == .connection)
        #expect(classify("40001").isRetryable)
        #expect(!classify("23505").isRetryable && classify("23505").code == .constraint)
        #expect(!classify("42P01").isRetryable && classify("42P01").code == .configuration)
        #expect(classify("42P01").sqlState == "42P01")
    }
}
