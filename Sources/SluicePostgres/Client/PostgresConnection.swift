import CPostgres
import Dispatch
import Foundation
#if canImport(Glibc)
    import Glibc
#endif
import SluiceCore

/// One libpq connection. libpq is blocking, so every call runs on the connection's own serial
/// dispatch queue (never on Swift's cooperative threads), reached through ``run(_:)``.
///
/// Why libpq and not PostgresNIO: libpq has `COPY … FROM STDIN` in binary format (the sink's
/// bulk load), the replication protocol (CDC) and single-allocation binary result sets that the
/// source decodes straight into column builders. One client serves source, sink, state and CDC.
///
/// Used by one task at a time (a source reader, a sink writer, one pooled borrower).
public final class PostgresConnection: @unchecked Sendable {
    public let url: PostgresURL
    private let queue: DispatchQueue
    private let session: PostgresSession
    private let cancelHandle: OpaquePointer?

    private init(url: PostgresURL, session: PostgresSession, queue: DispatchQueue) {
        self.url = url
        self.session = session
        self.queue = queue
        cancelHandle = PQgetCancel(session.handle)
    }

    deinit {
        if let cancelHandle { PQfreeCancel(cancelHandle) }
        let session = self.session
        queue.async { session.finish() }
    }

    /// Ends the session now, so the server sees the connection go (a walsender lets its slot
    /// go), rather than whenever the last reference does. Later calls of ``run(_:)`` fail.
    public func close() async {
        let session = self.session
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            queue.async {
                session.finish()
                continuation.resume()
            }
        }
    }

    /// Connects and sets the session up for exact, predictable values: UTC, ISO dates,
    /// shortest-exact floats, UTF-8.
    public static func connect(_ url: PostgresURL) async throws -> PostgresConnection {
        let queue = DispatchQueue(label: "sluice.postgres")
        let session: PostgresSession = try await withCheckedThrowingContinuation { continuation in
            queue.async {
                guard let handle = PQconnectdb(url.conninfo) else {
                    continuation.resume(throwing: SluiceError(.connection, "out of memory connecting to \(url.redacted)"))
                    return
                }
                guard PQstatus(handle) == CONNECTION_OK else {
                    let message = String(cString: PQerrorMessage(handle)).trimmingCharacters(in: .whitespacesAndNewlines)
                    PQfinish(handle)
                    continuation.resume(throwing: PostgresErrors.connectFailure(message, url: url))
                    return
                }
                // Server notices ("table … already exists, skipping") are not for the user's terminal.
                PQsetNoticeProcessor(handle, { _, _ in }, nil)
                let session = PostgresSession(handle: handle, url: url)
                do {
                    try session.execute(
                        "SET TimeZone = 'UTC'; SET DateStyle = 'ISO, YMD'; SET extra_float_digits = 3; SET client_encoding = 'UTF8'; SET IntervalStyle = 'iso_8601'"
                    )
                    continuation.resume(returning: session)
                } catch {
                    PQfinish(handle)
                    continuation.resume(throwing: error)
                }
            }
        }
        return PostgresConnection(url: url, session: session, queue: queue)
    }

    /// Runs `body` on the connection's queue with the session. Cancelling the task sends a
    /// cancel request to the server, which ends a running statement with an error.
    @discardableResult
    public func run<T: Sendable>(_ body: @escaping @Sendable (PostgresSession) throws -> T) async throws -> T {
        let session = self.session
        let queue = self.queue
        let cancel = SendableCancel(handle: cancelHandle)
        do {
            return try await withTaskCancellationHandler {
                try await withCheckedThrowingContinuation { continuation in
                    queue.async {
                        guard !session.finished else {
                            continuation.resume(throwing: SluiceError(.connection, "the PostgreSQL connection was closed"))
                            return
                        }
                        continuation.resume(with: Result { try body(session) })
                    }
                }
            } onCancel: {
                cancel.send()
            }
        } catch {
            // A statement ended by our own cancel request is a stop, not a failure.
            if Task.isCancelled { throw CancellationError() }
            throw error
        }
    }
}

/// A libpq cancel handle (thread-safe by libpq's contract).
struct SendableCancel: @unchecked Sendable {
    let handle: OpaquePointer?

    func send() {
        guard let handle else { return }
        var buffer = [CChar](repeating: 0, count: 256)
        _ = PQcancel(handle, &buffer, 256)
    }
}

/// The synchronous libpq API, valid only inside ``PostgresConnection/run(_:)``.
public final class PostgresSession: @unchecked Sendable {
    let handle: OpaquePointer
    let url: PostgresURL

    /// Set once `PQfinish` ran (only on the connection's queue).
    private(set) var finished = false

    init(handle: OpaquePointer, url: PostgresURL) {
        self.handle = handle
        self.url = url
    }

    /// Closes the libpq connection once.
    func finish() {
        guard !finished else { return }
        finished = true
        PQfinish(handle)
    }

    /// Runs one or more statements without parameters (simple protocol); results are discarded.
    public func execute(_ sql: String) throws {
        guard let result = PQexec(handle, sql) else { throw PostgresErrors.lost(self) }
        defer { PQclear(result) }
        try check(result, sql: sql)
    }

    /// Runs one statement without parameters over the simple protocol and returns its result
    /// (replication connections accept only this, e.g. for `CREATE_REPLICATION_SLOT`).
    @discardableResult
    public func simpleQuery(_ sql: String) throws -> PostgresResult {
        try checked(PQexec(handle, sql), sql: sql)
    }

    /// Runs one statement with parameters bound as text (`$1`, `$2`, …; cast them in SQL where
    /// the type matters). `binary` asks for binary result values.
    @discardableResult
    public func query(_ sql: String, _ parameters: [String?] = [], binary: Bool = false) throws -> PostgresResult {
        let result: OpaquePointer? = withParameterPointers(parameters) { values in
            PQexecParams(handle, sql, Int32(parameters.count), nil, values, nil, nil, binary ? 1 : 0)
        }
        return try checked(result, sql: sql)
    }

    /// The result of a statement, or its error (the result freed).
    func checked(_ result: OpaquePointer?, sql: String) throws -> PostgresResult {
        guard let result else { throw PostgresErrors.lost(self) }
        do {
            try check(result, sql: sql)
        } catch {
            PQclear(result)
            throw error
        }
        return PostgresResult(result)
    }

    /// Sends a statement without waiting for its result (``receive(sql:)`` collects it): the server
    /// works on it while the caller does something else, such as decoding the previous page.
    public func send(_ sql: String, _ parameters: [String?] = [], binary: Bool = false) throws {
        let sent = withParameterPointers(parameters) { values in
            PQsendQueryParams(handle, sql, Int32(parameters.count), nil, values, nil, nil, binary ? 1 : 0)
        }
        if sent != 1 { throw PostgresErrors.lost(self) }
    }

    /// The result of the statement ``send(_:_:binary:)`` sent (waiting for it).
    public func receive(sql: String) throws -> PostgresResult {
        var last: OpaquePointer?
        var failure: (any Error)?
        while let result = PQgetResult(handle) {
            if failure == nil {
                do {
                    try check(result, sql: sql)
                } catch {
                    failure = error
                }
            }
            if let last { PQclear(last) }
            last = result
        }
        if let failure {
            if let last { PQclear(last) }
            throw failure
        }
        guard let last else { throw PostgresErrors.lost(self) }
        return PostgresResult(last)
    }

    /// Starts streaming replication (`START_REPLICATION …`); the connection is then in CopyBoth
    /// mode: read with ``readCopyData(timeoutMilliseconds:)``, answer with ``sendCopyData(_:)``.
    public func startReplication(_ command: String) throws {
        guard let result = PQexec(handle, command) else { throw PostgresErrors.lost(self) }
        defer { PQclear(result) }
        guard PQresultStatus(result) == PGRES_COPY_BOTH else {
            try check(result, sql: command)
            throw SluiceError(.internalError, "START_REPLICATION did not enter CopyBoth mode")
        }
    }

    /// The next CopyData message, or nil when none arrived within the timeout.
    public func readCopyData(timeoutMilliseconds: Int32) throws -> [UInt8]? {
        while true {
            var buffer: UnsafeMutablePointer<CChar>?
            let n = PQgetCopyData(handle, &buffer, 1)
            if n > 0, let buffer {
                defer { PQfreemem(buffer) }
                return Array(UnsafeRawBufferPointer(start: buffer, count: Int(n)))
            }
            if n == -1 {
                // The server ended the stream: its reason is in the final result.
                while let result = PQgetResult(handle) {
                    defer { PQclear(result) }
                    try check(result, sql: "START_REPLICATION")
                }
                throw SluiceError(.connection, "the server ended replication", retryable: true)
            }
            if n == -2 { throw PostgresErrors.lost(self) }
            var descriptor = pollfd(fd: PQsocket(handle), events: Int16(POLLIN), revents: 0)
            let ready = poll(&descriptor, 1, timeoutMilliseconds)
            if ready == 0 { return nil }
            if ready < 0 && errno != EINTR { throw PostgresErrors.lost(self) }
            if PQconsumeInput(handle) != 1 { throw PostgresErrors.lost(self) }
        }
    }

    /// Sends one CopyData message (a standby status update) and flushes it.
    public func sendCopyData(_ bytes: [UInt8]) throws {
        let sent = bytes.withUnsafeBufferPointer { p in
            p.baseAddress!.withMemoryRebound(to: CChar.self, capacity: p.count) { PQputCopyData(handle, $0, Int32(p.count)) }
        }
        if sent != 1 || PQflush(handle) != 0 { throw PostgresErrors.lost(self) }
    }

    /// `COPY … FROM STDIN`: `write` is handed a function that sends bytes to the server.
    /// Returns the number of rows the server reports.
    @discardableResult
    public func copyIn(_ sql: String, write: ((UnsafeRawBufferPointer) throws -> Void) throws -> Void) throws -> Int {
        guard let start = PQexec(handle, sql) else { throw PostgresErrors.lost(self) }
        let status = PQresultStatus(start)
        if status != PGRES_COPY_IN {
            defer { PQclear(start) }
            try check(start, sql: sql)
            throw SluiceError(.internalError, "COPY did not start (status \(status))")
        }
        PQclear(start)
        var failure: (any Error)?
        do {
            try write { bytes in
                guard bytes.count > 0 else { return }
                let sent = PQputCopyData(handle, bytes.baseAddress!.assumingMemoryBound(to: CChar.self), Int32(bytes.count))
                if sent != 1 { throw PostgresErrors.lost(self) }
            }
        } catch {
            failure = error
        }
        let end = failure == nil ? PQputCopyEnd(handle, nil) : PQputCopyEnd(handle, "aborted by sluice")
        if end != 1 && failure == nil { failure = PostgresErrors.lost(self) }
        var rows = 0
        while let result = PQgetResult(handle) {
            defer { PQclear(result) }
            if failure == nil {
                do {
                    try check(result, sql: sql)
                    rows = Int(String(cString: PQcmdTuples(result))) ?? 0
                } catch {
                    failure = error
                }
            }
        }
        if let failure { throw failure }
        return rows
    }

    /// The server's error for `result`, if any, as a classified ``SluiceError``.
    func check(_ result: OpaquePointer, sql: String) throws {
        switch PQresultStatus(result) {
        case PGRES_COMMAND_OK, PGRES_TUPLES_OK, PGRES_COPY_IN, PGRES_COPY_OUT, PGRES_EMPTY_QUERY, PGRES_SINGLE_TUPLE:
            return
        default:
            func field(_ code: Int32) -> String? {
                PQresultErrorField(result, code).map { String(cString: $0) }
            }
            throw PostgresErrors.serverError(
                sqlState: field(Int32(UInt8(ascii: "C"))) ?? "",
                message: field(Int32(UInt8(ascii: "M"))) ?? String(cString: PQresultErrorMessage(result)),
                detail: field(Int32(UInt8(ascii: "D"))),
                hint: field(Int32(UInt8(ascii: "H"))),
                connectionLost: PQstatus(handle) != CONNECTION_OK,
                url: url)
        }
    }
}

/// Calls `body` with C strings for the parameters (NULL for nil) that live for the call.
func withParameterPointers<R>(_ parameters: [String?], _ body: ([UnsafePointer<CChar>?]) -> R) -> R {
    var storage: [UnsafeMutablePointer<CChar>?] = parameters.map { $0.flatMap { strdup($0) } }
    defer { for p in storage { free(p) } }
    return storage.withUnsafeMutableBufferPointer { buffer in
        body(buffer.map { $0.map { UnsafePointer($0) } })
    }
}

/// A result set with its values in place (no copy until a column builder takes them).
public final class PostgresResult: @unchecked Sendable {
    let handle: OpaquePointer
    public let rows: Int
    public let columns: Int

    init(_ handle: OpaquePointer) {
        self.handle = handle
        rows = Int(PQntuples(handle))
        columns = Int(PQnfields(handle))
    }

    deinit { PQclear(handle) }

    @inline(__always) public func isNull(_ row: Int, _ column: Int) -> Bool {
        PQgetisnull(handle, Int32(row), Int32(column)) == 1
    }

    /// The raw value bytes (binary or text format, as asked for).
    @inline(__always) public func bytes(_ row: Int, _ column: Int) -> UnsafeRawBufferPointer {
        let length = Int(PQgetlength(handle, Int32(row), Int32(column)))
        return UnsafeRawBufferPointer(start: PQgetvalue(handle, Int32(row), Int32(column)), count: length)
    }

    /// A text-format value (nil for NULL).
    public func string(_ row: Int, _ column: Int) -> String? {
        isNull(row, column) ? nil : String(decoding: bytes(row, column), as: UTF8.self)
    }

    public func name(_ column: Int) -> String { String(cString: PQfname(handle, Int32(column))) }
    public func typeOID(_ column: Int) -> UInt32 { UInt32(PQftype(handle, Int32(column))) }
    public func typeModifier(_ column: Int) -> Int32 { PQfmod(handle, Int32(column)) }

    /// Rows affected by an INSERT/UPDATE/DELETE.
    public var affectedRows: Int { Int(String(cString: PQcmdTuples(handle))) ?? 0 }
}
