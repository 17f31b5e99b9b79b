import SluiceCore
import Testing

@testable import SluicePostgres

/// How a failed statement is classified: what the server reports by SQLSTATE, and an error
/// without one (libpq's own, for a connection that broke) as a lost connection worth a retry.
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
