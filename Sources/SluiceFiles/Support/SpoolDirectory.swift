import Foundation

/// The local directories object-storage connectors write through: `$TMPDIR/sluice-spool/
/// <pipeline>-<name>-<unique>`. A `kill -9` leaves one behind; nothing in it is needed after a
/// restart (uploads start again from the checkpoint), so each start deletes the pipeline's
/// leftovers that nothing has touched for an hour (or all of them, when no other worker can be
/// using them).
enum SpoolDirectory {
    static var root: String { (NSTemporaryDirectory() as NSString).appendingPathComponent("sluice-spool") }

    /// A new spool directory for `pipeline`'s `name` (`sink`, `source`), leftovers removed first.
    static func make(pipeline: String, name: String, othersMayBeRunning: Bool) throws -> String {
        removeLeftovers(prefix: "\(pipeline)@\(name)-", olderThan: othersMayBeRunning ? 3600 : 0)
        let path = (root as NSString).appendingPathComponent("\(pipeline)@\(name)-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    /// Deletes spool directories starting with `prefix` whose newest entry is older than `age` seconds.
    static func removeLeftovers(prefix: String, olderThan age: TimeInterval) {
        let fm = FileManager.default
        guard let names = try? fm.contentsOfDirectory(atPath: root) else { return }
        let cutoff = Date().addingTimeInterval(-age)
        for name in names where name.hasPrefix(prefix) {
            let dir = (root as NSString).appendingPathComponent(name)
            let entries = ((try? fm.contentsOfDirectory(atPath: dir)) ?? []).map { (dir as NSString).appendingPathComponent($0) } + [dir]
            let newest = entries.compactMap { (try? fm.attributesOfItem(atPath: $0))?[.modificationDate] as? Date }.max() ?? .distantPast
            if newest <= cutoff { try? fm.removeItem(atPath: dir) }
        }
    }
}
