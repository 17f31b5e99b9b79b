import Foundation
import SluiceConnectors
import SluiceCore
import SluicePostgres

/// The steps of `sluice state export|import|migrate`: open a store for copying, make sure no
/// other process uses it, copy through an export file, and compare what arrived with what left.
enum StateTransferRun {
    typealias Store = any StateStore & StateTransferable

    /// Opens the store at `location` (creating or migrating it like any command does). A
    /// PostgreSQL store is opened under its own application name, so its connections are not
    /// counted as another user's.
    static func open(_ location: String) async throws -> Store {
        var target = location
        if (location.hasPrefix("postgres://") || location.hasPrefix("postgresql://")) && !location.contains("application_name=") {
            target += (location.contains("?") ? "&" : "?") + "application_name=\(PostgresStateStore.transferApplicationName)"
        }
        let store = try await BuiltinComponents.openState(target)
        guard let transferable = store as? Store else {
            throw SluiceError(.unsupported, "the state store at \(Redaction.url(location)) cannot be copied", retryable: false)
        }
        return transferable
    }

    /// Refuses when another process uses the store (and, for the embedded store, keeps it from
    /// being opened until this process ends).
    static func requireAlone(_ store: Store, _ location: String) async throws {
        let others = try await store.otherUsers()
        guard others.isEmpty else {
            throw SluiceError(
                .conflict,
                "refusing to copy state while it is in use: \(others.joined(separator: "; ")). Stop the pipelines (and `sluice serve`) that use \(Redaction.url(location)) first",
                retryable: false)
        }
    }

    /// Refuses a store that already holds state: an import never merges.
    static func requireEmpty(_ store: Store, _ location: String) async throws {
        let contents = try await store.stateContents()
        guard contents.isEmpty else {
            let listed = contents.keys.sorted().map { "\($0): \(contents[$0]!)" }.joined(separator: ", ")
            throw SluiceError(
                .conflict, "the state store at \(Redaction.url(location)) is not empty (\(listed)); import into an empty one", retryable: false)
        }
    }

    /// Refuses when `source` holds rows of tables the store kind at `target` does not keep.
    static func requireFeatures(of source: Store, for target: String) async throws {
        guard let backend = BuiltinComponents.registry.stateBackend(for: target) else { return }
        let contents = try await source.stateContents()
        let lost = StateTables.all.filter { table in
            guard let feature = table.feature, !backend.features.contains(feature) else { return false }
            return contents[table.name, default: 0] > 0
        }
        guard lost.isEmpty else {
            throw SluiceError(
                .unsupported,
                "the \(backend.name) state store keeps no \(Set(lost.compactMap { $0.feature?.rawValue }).sorted().joined(separator: " or ")), "
                    + "and this state holds some (\(lost.map { "\($0.name): \(contents[$0.name]!)" }.joined(separator: ", "))). "
                    + "`sluice serve` keeps its push queue and keys in a SQLite state store: keep that one for the push endpoint",
                retryable: false)
        }
    }

    /// Writes every row of `store` to a new file at `path`; returns what was written.
    static func export(_ store: Store, from location: String, to path: String) async throws -> StateSummary {
        let writer = try StateExportFile.Writer(path: path, from: Redaction.url(location))
        do {
            try await store.exportState { try writer.write($0) }
            try writer.finish()
        } catch {
            try? FileManager.default.removeItem(atPath: path)
            throw error
        }
        return writer.summary
    }

    /// Imports the file at `path` into `store` in one transaction; returns what the file held.
    static func importFile(_ path: String, into store: Store) async throws -> StateSummary {
        let reader = try StateExportFile.Reader(path: path)
        try await store.importState { try reader.next() }
        return reader.summary
    }

    /// What `store` holds, counted and checksummed as an export would.
    static func summary(of store: Store) async throws -> StateSummary {
        let box = SummaryBox()
        try await store.exportState { box.add($0) }
        return box.summary
    }

    /// Compares the copy with the original; prints both and throws when they differ.
    static func verify(expected: StateSummary, actual: StateSummary, target: String) throws {
        func pad(_ text: String, _ width: Int, right: Bool = false) -> String {
            let fill = String(repeating: " ", count: max(0, width - text.count))
            return right ? fill + text : text + fill
        }
        print(pad("table", 20) + pad("rows", 12, right: true) + "  " + pad("checksum", 16) + "  copy")
        for table in StateTables.all.map(\.name) where expected.rows[table] != nil || actual.rows[table] != nil {
            let same = expected.rows[table] == actual.rows[table] && expected.checksums[table] == actual.checksums[table]
            let sum = String(expected.checksums[table] ?? 0, radix: 16)
            let got = same ? "same" : "DIFFERENT: \(actual.rows[table] ?? 0) rows, \(String(actual.checksums[table] ?? 0, radix: 16))"
            print(pad(table, 20) + pad("\(expected.rows[table] ?? 0)", 12, right: true) + "  " + pad(sum, 16) + "  " + got)
        }
        let differ = expected.differences(from: actual)
        guard differ.isEmpty else {
            throw SluiceError(
                .corruptState, "the copy at \(Redaction.url(target)) differs in \(differ.joined(separator: ", ")); do not use it (the original is unchanged)",
                retryable: false)
        }
    }

    /// A summary filled from export callbacks (one at a time).
    final class SummaryBox: @unchecked Sendable {
        var summary = StateSummary()
        func add(_ row: StateRow) { summary.add(row) }
    }
}
