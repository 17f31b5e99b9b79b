import Foundation
import GRDB
import SluiceCore

extension SQLiteStateStore {
    /// `sluice doctor`'s checks of the state file at `path`, opened read-only (nothing is
    /// created or migrated): SQLite's `quick_check`, the schema version against this binary's,
    /// and the free space where the file lives.
    static func diagnose(path: String, limits: DiagnosisLimits) -> [Diagnosis] {
        var found = [FreeSpace.diagnose("state.disk_space", path: path, what: "the state database", limits: limits)]
        guard FileManager.default.fileExists(atPath: path) else {
            found.insert(Diagnosis("state.schema", .ok, "\(path) does not exist yet; the first run creates it", stateSchema: .absent), at: 0)
            return found
        }
        var configuration = Configuration()
        configuration.readonly = true
        configuration.busyMode = .timeout(10)
        do {
            let queue = try DatabaseQueue(path: path, configuration: configuration)
            let (check, applied) = try queue.read { db in
                let check = try String.fetchAll(db, sql: "PRAGMA quick_check")
                let applied = try db.tableExists("grdb_migrations") ? try String.fetchAll(db, sql: "SELECT identifier FROM grdb_migrations") : []
                return (check, Set(applied))
            }
            try queue.close()
            if check == ["ok"] {
                found.insert(Diagnosis("state.integrity", .ok, "\(path): SQLite quick_check ok"), at: 0)
            } else {
                found.insert(
                    Diagnosis(
                        "state.integrity", .error, "\(path) is damaged: \(check.prefix(3).joined(separator: "; "))",
                        fix: "stop every pipeline, keep a copy of the file, then restore the state from a backup (or `sqlite3 \(path) .recover`)"),
                    at: 0)
            }
            found.insert(schemaFinding(path: path, applied: applied), at: 1)
        } catch {
            found.insert(
                .failed(
                    "state.integrity", "cannot read the state database \(path)", error,
                    fix: "check the file's permissions; a file that is not a SQLite database cannot be the state"), at: 0)
        }
        return found
    }

    /// The migrations applied to the file against those this binary knows.
    static func schemaFinding(path: String, applied: Set<String>) -> Diagnosis {
        let known = StateMigrations.migrator.migrations
        let unknown = applied.subtracting(known)
        if !unknown.isEmpty {
            return Diagnosis(
                "state.schema", .error,
                "\(path) has migrations this binary does not know (\(unknown.sorted().joined(separator: ", "))): a newer sluice wrote it",
                fix: "run the sluice version that wrote it (or a newer one)", stateSchema: .other)
        }
        let pending = known.filter { !applied.contains($0) }
        if pending.isEmpty {
            return Diagnosis("state.schema", .ok, "schema \(known.last ?? "?") (current)", stateSchema: .current)
        }
        return Diagnosis(
            "state.schema", .ok,
            "schema \(known.last(where: applied.contains) ?? "none"); \(pending.count) migration(s) apply at the next start (\(pending.joined(separator: ", ")))",
            stateSchema: .other)
    }
}
