import Foundation

/// The identity of a file on disk: its device and inode numbers (a rename keeps it; a copy does not).
struct TailInode: Hashable, Sendable {
    var device: UInt64
    var number: UInt64
}

/// What identifies a tailed file's content: a 64-bit FNV-1a hash of its first lines.
///
/// A file is known by how it starts, not by its name or inode, as Vector's file source does:
/// a log renamed by rotation keeps its fingerprint (and is read on from where it was left); a
/// copy made by copy-truncate rotation has the fingerprint of the original (and is read on
/// from the same offset); the truncated original, once written again, starts with other
/// lines and is a new file.
enum TailFingerprint {
    /// The most bytes read to fingerprint a file: a first line longer than this is
    /// fingerprinted by these bytes alone.
    static let limit = 8192

    /// The fingerprint of a file that starts with `prefix` (its first bytes, up to ``limit``):
    /// the hash of its first `lines` lines, newlines included. Nil while the file has fewer
    /// complete lines and fewer than ``limit`` bytes (it is not read until it has them).
    static func of(_ prefix: UnsafeRawBufferPointer, lines: Int) -> UInt64? {
        var seen = 0
        var end: Int?
        for (i, byte) in prefix.prefix(limit).enumerated() where byte == 0x0A {
            seen += 1
            if seen == lines { end = i + 1; break }
        }
        if end == nil, prefix.count >= limit { end = limit }
        guard let end else { return nil }
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in prefix[0..<end] {
            hash ^= UInt64(byte)
            hash = hash &* 0x0000_0100_0000_01b3
        }
        return hash
    }

    /// The checkpoint partition of the file with `fingerprint`.
    static func partition(_ fingerprint: UInt64) -> String {
        let hex = String(fingerprint, radix: 16)
        return partitionPrefix + String(repeating: "0", count: 16 - hex.count) + hex
    }

    static let partitionPrefix = "tail:"

    /// The fingerprint named by a checkpoint partition (nil for other partitions).
    static func fingerprint(ofPartition partition: String) -> UInt64? {
        guard partition.hasPrefix(partitionPrefix) else { return nil }
        return UInt64(partition.dropFirst(partitionPrefix.count), radix: 16)
    }
}

/// The checkpointed position within one tailed file (the value of its `tail:` partition).
struct TailPosition: Codable, Sendable, Hashable {
    /// Byte offset of the next unread line.
    var offset: Int
    /// 1-based line number of that line.
    var line: Int
    /// Where the file was when this position was read (for people; files are found by fingerprint).
    var path: String

    func encoded() -> String {
        "{\"offset\":\(offset),\"line\":\(line),\"path\":\(FilePosition.jsonString(path))}"
    }

    static func decode(_ text: String) -> TailPosition? {
        try? JSONDecoder().decode(TailPosition.self, from: Data(text.utf8))
    }
}

/// A file found by a tail scan.
struct TailObservation: Hashable, Sendable {
    var inode: TailInode
    var path: String
    var size: Int
    /// Modification time in microseconds since the epoch.
    var modified: Int64
    /// Nil while the file has no complete first line(s) yet.
    var fingerprint: UInt64?
}

/// Decides, for one scan, which file holds each fingerprint (pure; the reader does the I/O).
///
/// - A file that is followed keeps its fingerprint while it still starts with the same lines
///   and is not shorter than the offset read from it.
/// - Another file with the same fingerprint (a copy) takes over when the followed one lost it:
///   truncated by copy-truncate rotation, or gone. Until then it is a duplicate, not read.
/// - A file shorter than the offset already read under its fingerprint is not read (it cannot
///   be the file that was read; it starts like it).
/// - Among several candidates the oldest (by modification time, then path) wins.
enum TailPlan {
    enum Skip: Hashable, Sendable {
        /// Starts like the file that holds `fingerprint` (a copy of a file still followed).
        case duplicate(of: TailInode)
        /// Shorter than the `offset` read under its fingerprint.
        case shorter(offset: Int)
    }

    struct Outcome: Equatable, Sendable {
        /// The file that holds each fingerprint after this scan.
        var owners: [UInt64: TailInode]
        /// Files with a fingerprint that are not read, and why.
        var skipped: [TailInode: Skip]
    }

    static func plan(observed: [TailObservation], following: [UInt64: TailInode], offsets: [UInt64: Int]) -> Outcome {
        var byInode: [TailInode: TailObservation] = [:]
        for o in observed { byInode[o.inode] = o }
        var owners: [UInt64: TailInode] = [:]
        for (fingerprint, inode) in following {
            // Shorter than what was read from it: truncated and written again with the same
            // first lines; it is not read on from the old offset (see the `.shorter` skip).
            if let o = byInode[inode], o.fingerprint == fingerprint, o.size >= offsets[fingerprint] ?? 0 {
                owners[fingerprint] = inode
            }
        }
        var skipped: [TailInode: Skip] = [:]
        let candidates = observed.filter { $0.fingerprint != nil }.sorted {
            ($0.modified, $0.path) < ($1.modified, $1.path)
        }
        for o in candidates {
            let fingerprint = o.fingerprint!
            if let owner = owners[fingerprint] {
                if owner != o.inode { skipped[o.inode] = .duplicate(of: owner) }
                continue
            }
            if let offset = offsets[fingerprint], o.size < offset {
                skipped[o.inode] = .shorter(offset: offset)
                continue
            }
            owners[fingerprint] = o.inode
        }
        return Outcome(owners: owners, skipped: skipped)
    }
}
