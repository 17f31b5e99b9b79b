import CPostgres
import SluiceCore

/// Turns libpq failures into classified ``SluiceError``s: bad credentials and missing objects are
/// not worth retrying; a server that is down, restarting or overloaded is.
enum PostgresErrors {
    /// A failed connection attempt. libpq gives no SQLSTATE here, only its message.
    static func connectFailure(_ raw: String, url: PostgresURL) -> SluiceError {
        let message = url.scrub(raw)
        let lower = message.lowercased()
        if lower.contains("too many connections") || lower.contains("the database system is starting up")
            || lower.contains("the database system is shutting down") || lower.contains("in recovery mode")
        {
            return SluiceError(.unavailable, "PostgreSQL at \(url.redacted) is busy or restarting: \(message); retrying", retryable: true)
        }
        if lower.contains("invalid uri") || lower.contains("invalid percent-encoded") || lower.contains("invalid connection option")
            || lower.contains("invalid integer value") || lower.contains("invalid sslmode") || lower.contains("unexpected spaces")
        {
            return SluiceError(.configuration, "the PostgreSQL URL \(url.redacted) is malformed: \(message)", retryable: false)
        }
        let credentials = [
            "password authentication failed", "no password supplied", "scram", "no pg_hba.conf entry",
            "pg_hba.conf rejects",
        ]
        if credentials.contains(where: lower.contains) || (lower.contains("role \"") && lower.contains("does not exist")) {
            return SluiceError(
                .authentication,
                "PostgreSQL refused the credentials for \(url.redacted): \(message). "
                    + "Check the user and password in the URL (not retried)", retryable: false)
        }
        if lower.contains("database \"") && lower.contains("does not exist") {
            return SluiceError(.configuration, "\(message) (\(url.redacted)); create it or fix the URL (not retried)", retryable: false)
        }
        if lower.contains("certificate") || lower.contains("server does not support ssl") || lower.contains("sslmode") {
            return SluiceError(.connection, "TLS to \(url.redacted) failed: \(message); check sslmode/sslrootcert in the URL", retryable: false)
        }
        return SluiceError(.connection, "cannot reach PostgreSQL at \(url.redacted): \(message); retrying while it is down", retryable: true)
    }

    /// The connection broke in the middle of a call.
    static func lost(_ session: PostgresSession) -> SluiceError {
        let message = session.url.scrub(String(cString: PQerrorMessage(session.handle)).trimmingCharacters(in: .whitespacesAndNewlines))
        return SluiceError(.connection, "the connection to \(session.url.redacted) was lost: \(message)", retryable: true)
    }

    /// libpq's messages for a connection that broke under a call.
    static let brokenConnectionMessages = [
        "server closed the connection", "could not receive data from server", "could not send data to server",
        "no connection to the server", "SSL SYSCALL error", "SSL connection has been closed", "terminating connection",
        "connection to server was lost",
    ]

    static func saysConnectionBroke(_ message: String) -> Bool {
        brokenConnectionMessages.contains { message.contains($0) }
    }

    /// An error the server reported for a statement.
    static func serverError(
        sqlState: String, message: String, detail: String?, hint: String?,
        connectionLost: Bool, url: PostgresURL
    ) -> SluiceError {
        var text = message
        if let detail { text += " (\(detail))" }
        if let hint { text += "; hint: \(hint)" }
        // The server sends a SQLSTATE with every error it reports; one without comes from libpq
        // itself. When its message says the connection broke, it did, even if the connection's
        // status had not turned bad yet when the result was checked (a server killed
        // mid-statement): worth a retry. libpq's other errors (a misused call) are not.
        if connectionLost || (sqlState.isEmpty && Self.saysConnectionBroke(message)) {
            // libpq reports a broken connection without a SQLSTATE.
            return SluiceError(
                .connection, "the connection to PostgreSQL at \(url.redacted) was lost: \(text)",
                location: sqlState.isEmpty ? nil : "SQLSTATE \(sqlState)", retryable: true)
        }
        let code: SluiceError.Code
        let retryable: Bool
        switch sqlState.prefix(2) {
        case "08": (code, retryable) = (.connection, true)  // connection exception
        case "40": (code, retryable) = (.unavailable, true)  // serialization failure, deadlock
        case "53", "57", "58": (code, retryable) = (.unavailable, true)  // resources, operator intervention, system
        case "55": (code, retryable) = (.unavailable, sqlState == "55P03" || sqlState == "55006")  // lock not available, object in use
        case "28": (code, retryable) = (.authentication, false)
        case "42", "3D", "3F": (code, retryable) = (.configuration, false)  // undefined objects, syntax, privileges
        case "22": (code, retryable) = (.schemaViolation, false)  // data exception
        case "23": (code, retryable) = (.constraint, false)
        default: (code, retryable) = (.io, false)
        }
        return SluiceError(code, text, location: "SQLSTATE \(sqlState)", retryable: retryable)
    }
}

extension SluiceError {
    /// The SQLSTATE of a PostgreSQL server error (kept in ``location``), when it is one.
    var sqlState: String? {
        guard let location, location.hasPrefix("SQLSTATE ") else { return nil }
        return String(location.dropFirst(9))
    }
}
