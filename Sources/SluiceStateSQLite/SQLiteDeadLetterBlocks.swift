import Foundation
import GRDB
import SluiceCore

/// The embedded store's dead-letter queue, kept in blocks (``DeadLetterBlock``): table
/// `dead_letter_blocks`, one row per block of one pipeline's letters (their count, first-seen
/// range and stage/kind groups beside the letters), and `dead_letter_locations`, the index from a
/// letter's location (hashed) to its block that makes a location unique per pipeline: a letter
/// filed again at a location updates the one there (attempts + 1) rather than adding another.
///
/// An index entry outlives its letter when the letter goes (a replay deletes a block as one row,
/// not its letters' entries one by one): a lookup checks the block, and ``sweepIndex(_:pipeline:)``
/// removes the entries of blocks that are gone: when letters are dropped or expire, and when the
/// pipeline sweeps (as it starts, then every ten minutes).
///
/// Every function runs inside the caller's transaction.
enum SQLiteDeadLetterBlocks {
    /// The tables (migration `v9-dead-letter-blocks`), and the letters of the table they replace
    /// moved into them.
    static func migrate(_ db: Database) throws {
        try db.execute(
            sql: """
                CREATE TABLE dead_letter_blocks (
                    id INTEGER PRIMARY KEY AUTOINCREMENT, pipeline TEXT NOT NULL, letters INTEGER NOT NULL,
                    first_seen_min REAL NOT NULL, first_seen_max REAL NOT NULL, groups BLOB NOT NULL, slots BLOB NOT NULL,
                    payload BLOB NOT NULL);
                CREATE INDEX dead_letter_blocks_pipeline ON dead_letter_blocks(pipeline, id);
                CREATE TABLE dead_letter_locations (
                    pipeline TEXT NOT NULL, hash INTEGER NOT NULL, block INTEGER NOT NULL, PRIMARY KEY (pipeline, hash, block)) WITHOUT ROWID;
                """)
        // Letters get new ids (block and slot); a dead-letter sink's forwarding position (the
        // last id it copied) moves with them.
        var pending: [String: [StoredDeadLetter]] = [:]
        var pendingBytes: [String: Int] = [:]
        // New ids above every id ever given out (its letter still there or not): an old id kept
        // elsewhere (a PostgreSQL sink's pending commit) names no letter rather than another one.
        let top =
            try Int64.fetchOne(
                db,
                sql: """
                    SELECT MAX(COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'dead_letters'), 0),
                        COALESCE((SELECT MAX(id) FROM dead_letters), 0))
                    """) ?? 0
        if top > 0 {
            try db.execute(
                sql: "INSERT INTO sqlite_sequence(name, seq) VALUES ('dead_letter_blocks', ?)", arguments: [DeadLetterBlock.split(top).block + 1])
        }
        var newID: [String: [(old: Int64, new: Int64)]] = [:]
        func flush(_ pipeline: String) throws {
            pendingBytes[pipeline] = 0
            guard let letters = pending.removeValue(forKey: pipeline), !letters.isEmpty else { return }
            let block = try insert(db, pipeline: pipeline, DeadLetterBlock(letters: letters))
            for (slot, l) in letters.enumerated() { newID[pipeline, default: []].append((l.id, DeadLetterBlock.id(block: block, slot: slot))) }
        }
        let rows = try Row.fetchCursor(db, sql: "SELECT * FROM dead_letters ORDER BY id")
        while let row = try rows.next() {
            let letter = SQLiteStateStore.deadLetter(row)
            pending[letter.pipeline, default: []].append(letter)
            pendingBytes[letter.pipeline, default: 0] += letter.letter.raw.count + letter.letter.message.utf8.count
            if pending[letter.pipeline]!.count >= DeadLetterBlock.targetLetters || pendingBytes[letter.pipeline]! >= DeadLetterBlock.targetBytes {
                try flush(letter.pipeline)
            }
        }
        for pipeline in pending.keys.sorted() { try flush(pipeline) }
        for row in try Row.fetchAll(db, sql: "SELECT pipeline, value FROM checkpoints WHERE pipeline LIKE '%~dead_letters' AND partition = 'id'") {
            let name: String = row[0]
            guard let forwarded = Int64(row[1] as String) else { continue }
            let pipeline = String(name.dropLast("~dead_letters".count))
            let moved = newID[pipeline]?.last(where: { $0.old <= forwarded })?.new ?? 0
            try db.execute(
                sql: "UPDATE checkpoints SET value = ? WHERE pipeline = ? AND partition = 'id'", arguments: [String(moved), name])
        }
        try db.execute(sql: "DROP TABLE dead_letters")
    }

    // MARK: Writing

    /// Blocks read in one transaction, changed in memory and written back by ``save(_:)``.
    struct Edit {
        var blocks: [Int64: DeadLetterBlock] = [:]
        var pipelines: [Int64: String] = [:]
        var dirty: Set<Int64> = []
        /// Index by location (its bytes), for the blocks a filing looked into.
        var locations: [Int64: [[UInt8]: Int]] = [:]

        /// Block `id` of `pipeline`, or nil when there is none.
        mutating func load(_ db: Database, _ id: Int64, pipeline: String) throws -> DeadLetterBlock? {
            if let b = blocks[id] { return pipelines[id] == pipeline ? b : nil }
            guard let row = try Row.fetchOne(db, sql: "SELECT pipeline, payload FROM dead_letter_blocks WHERE id = ?", arguments: [id]) else {
                return nil
            }
            let owner: String = row[0]
            let payload: Data = row[1]
            let block = try payload.withUnsafeBytes { try DeadLetterBlock.decode($0, block: id, pipeline: owner) }
            blocks[id] = block
            pipelines[id] = owner
            return owner == pipeline ? block : nil
        }

        /// The index in block `id` (loaded) of the letter at `location`.
        mutating func index(of location: [UInt8], in id: Int64) -> Int? {
            if locations[id] == nil {
                var map: [[UInt8]: Int] = [:]
                for (i, l) in blocks[id]!.letters.enumerated() { map[Array(l.letter.location.utf8)] = i }
                locations[id] = map
            }
            return locations[id]![location]
        }

        /// Removes the letters of `slots` from block `id` (loaded); returns how many it had.
        mutating func remove(slots: Set<Int>, from id: Int64) -> Int {
            let before = blocks[id]!.letters.count
            blocks[id]!.letters.removeAll { slots.contains(DeadLetterBlock.split($0.id).slot) }
            let removed = before - blocks[id]!.letters.count
            if removed > 0 {
                dirty.insert(id)
                locations[id] = nil
            }
            return removed
        }

        /// Writes the changed blocks back; a block left empty is deleted.
        func save(_ db: Database) throws {
            let emptied = dirty.filter { blocks[$0]!.letters.isEmpty }
            try deleteBlocks(db, Array(emptied))
            for id in dirty.subtracting(emptied).sorted() {
                try db.execute(
                    sql: """
                        UPDATE dead_letter_blocks SET letters = ?, first_seen_min = ?, first_seen_max = ?, groups = ?, slots = ?, payload = ?
                        WHERE id = ?
                        """,
                    arguments: StatementArguments(columns(of: blocks[id]!) + [id]))
            }
        }
    }

    /// A block row's values after its pipeline: letters, first seen (min, max), groups, slots,
    /// payload.
    static func columns(of block: DeadLetterBlock) -> [(any DatabaseValueConvertible)?] {
        let seen = block.letters.map(\.firstSeen.timeIntervalSince1970)
        return [
            block.letters.count, seen.min() ?? 0, seen.max() ?? 0, Data(DeadLetterBlock.encode(groups: block.groups)), Data(block.slotBitmap),
            Data(block.encode()),
        ]
    }

    /// Deletes the blocks `ids` (rows only: their index entries go with the next sweep).
    static func deleteBlocks(_ db: Database, _ ids: [Int64]) throws {
        for start in stride(from: 0, to: ids.count, by: 500) {
            let chunk = ids[start..<min(start + 500, ids.count)]
            try db.execute(
                sql: "DELETE FROM dead_letter_blocks WHERE id IN (\(chunk.map { _ in "?" }.joined(separator: ", ")))",
                arguments: StatementArguments(Array(chunk)))
        }
    }

    /// Inserts `block` as a new block of `pipeline` (its letters' ids are ignored: they become
    /// the new block's) and indexes its locations; returns the block's number.
    @discardableResult
    static func insert(_ db: Database, pipeline: String, _ block: DeadLetterBlock) throws -> Int64 {
        var block = block
        for i in block.letters.indices { block.letters[i].id = DeadLetterBlock.id(block: 0, slot: i) }
        try db.execute(
            sql: "INSERT INTO dead_letter_blocks(pipeline, letters, first_seen_min, first_seen_max, groups, slots, payload) VALUES (?, ?, ?, ?, ?, ?, ?)",
            arguments: StatementArguments([pipeline] + columns(of: block)))
        let id = db.lastInsertedRowID
        // Many rows per statement: one statement per letter costs more than the insert itself.
        let hashes = Set(block.letters.map { DeadLetterBlock.locationHash($0.letter.location) }).sorted()
        for start in stride(from: 0, to: hashes.count, by: 300) {
            let chunk = hashes[start..<min(start + 300, hashes.count)]
            var arguments: [(any DatabaseValueConvertible)?] = []
            arguments.reserveCapacity(chunk.count * 3)
            for h in chunk { arguments += [pipeline, h, id] }
            try db.execute(
                sql: "INSERT OR IGNORE INTO dead_letter_locations(pipeline, hash, block) VALUES "
                    + Array(repeating: "(?, ?, ?)", count: chunk.count).joined(separator: ", "),
                arguments: StatementArguments(arguments))
        }
        return id
    }

    /// The blocks each of `hashes` (location hashes of `pipeline`) was filed in, newest first.
    static func blocks(_ db: Database, pipeline: String, hashes: [Int64]) throws -> [Int64: [Int64]] {
        var out: [Int64: [Int64]] = [:]
        for start in stride(from: 0, to: hashes.count, by: 500) {
            let chunk = hashes[start..<min(start + 500, hashes.count)]
            let rows = try Row.fetchCursor(
                db,
                sql: """
                    SELECT hash, block FROM dead_letter_locations WHERE pipeline = ? AND hash IN (\(chunk.map { _ in "?" }.joined(separator: ", ")))
                    ORDER BY hash, block DESC
                    """, arguments: StatementArguments([pipeline as (any DatabaseValueConvertible)?] + chunk.map { $0 as (any DatabaseValueConvertible)? }))
            while let row = try rows.next() { out[row[0], default: []].append(row[1]) }
        }
        return out
    }

    /// Deletes the letters `ids` of `pipeline`; returns how many there were and how many
    /// different ids were asked for. A block all of whose
    /// letters go is deleted without reading its letters: its bitmap of slots says so.
    static func resolve(_ db: Database, pipeline: String, ids: [Int64], edit: inout Edit) throws -> (removed: Int, asked: Int) {
        // Ids come in order, block after block: runs, not a dictionary entry per id.
        var byBlock: [(block: Int64, slots: [Int])] = []
        var seen: [Int64: Int] = [:]
        for id in ids {
            let (block, slot) = DeadLetterBlock.split(id)
            if byBlock.last?.block == block {
                byBlock[byBlock.count - 1].slots.append(slot)
            } else if let i = seen[block] {
                byBlock[i].slots.append(slot)
            } else {
                seen[block] = byBlock.count
                byBlock.append((block, [slot]))
            }
        }
        var removed = 0
        var asked = 0
        let live = try db.cachedStatement(sql: "SELECT letters, slots FROM dead_letter_blocks WHERE id = ? AND pipeline = ?")
        for (block, slots) in byBlock.sorted(by: { $0.block < $1.block }) {
            let requested = DeadLetterBlock.bitmap(slots: slots)
            let distinct = requested.reduce(0) { $0 + $1.nonzeroBitCount }
            asked += distinct
            if edit.blocks[block] == nil {
                guard let row = try Row.fetchOne(live, arguments: [block, pipeline]) else { continue }
                if row[0] as Int == distinct, (row.dataNoCopy(atIndex: 1) ?? Data()).elementsEqual(requested) {
                    try deleteBlocks(db, [block])
                    removed += distinct
                    continue
                }
            }
            guard try edit.load(db, block, pipeline: pipeline) != nil else { continue }
            removed += edit.remove(slots: Set(slots), from: block)
        }
        return (removed, asked)
    }

    /// Files `letters` on `pipeline`'s queue, first seen at `now`; one at a location that has a
    /// letter updates it (stage, reason, bytes, last seen; attempts added).
    static func file(_ db: Database, pipeline: String, letters: [DeadLetter], now: Double, edit: inout Edit) throws {
        guard !letters.isEmpty else { return }
        let date = Date(timeIntervalSince1970: now)
        // Every block a location's hash was filed in, newest first: two locations with one hash
        // are told apart by reading the blocks. Looked up for all letters at once.
        let hashes = letters.map { DeadLetterBlock.locationHash($0.location) }
        let filed = try blocks(db, pipeline: pipeline, hashes: Array(Set(hashes)))
        var fresh: [StoredDeadLetter] = []
        // Letters of this commit by location hash; equal locations compared by bytes, as SQLite
        // compares text (Swift's String equality folds Unicode forms).
        var freshIndex: [Int64: Int] = [:]
        var freshCollisions: [[UInt8]: Int] = [:]
        func update(_ old: inout StoredDeadLetter, with l: DeadLetter) {
            let attempts = old.letter.attempts + l.attempts
            old.letter = l
            old.letter.attempts = attempts
            old.lastSeen = date
        }
        for (l, hash) in zip(letters, hashes) {
            if let i = freshIndex[hash] {
                if fresh[i].letter.location.utf8.elementsEqual(l.location.utf8) {
                    update(&fresh[i], with: l)
                    continue
                }
                if let j = freshCollisions[Array(l.location.utf8)] {
                    update(&fresh[j], with: l)
                    continue
                }
            }
            var found = false
            for block in filed[hash] ?? [] {
                let key = Array(l.location.utf8)
                guard try edit.load(db, block, pipeline: pipeline) != nil, let i = edit.index(of: key, in: block) else { continue }
                update(&edit.blocks[block]!.letters[i], with: l)
                edit.dirty.insert(block)
                found = true
                break
            }
            if found { continue }
            if freshIndex[hash] == nil {
                freshIndex[hash] = fresh.count
            } else {
                freshCollisions[Array(l.location.utf8)] = fresh.count
            }
            fresh.append(StoredDeadLetter(id: 0, pipeline: pipeline, letter: l, firstSeen: date, lastSeen: date))
        }
        var start = 0
        while start < fresh.count {
            var end = start
            var bytes = 0
            while end < fresh.count && end - start < DeadLetterBlock.targetLetters && (bytes < DeadLetterBlock.targetBytes || end == start) {
                bytes += fresh[end].letter.raw.count + fresh[end].letter.message.utf8.count
                end += 1
            }
            try insert(db, pipeline: pipeline, DeadLetterBlock(letters: Array(fresh[start..<end])))
            start = end
        }
    }

    /// Removes index entries whose block is gone (of `pipeline`, or of every pipeline).
    static func sweepIndex(_ db: Database, pipeline: String?) throws {
        if try !Bool.fetchOne(db, sql: "SELECT EXISTS (SELECT 1 FROM dead_letter_blocks)")! {
            // No letter left anywhere: the whole table at once, not row by row.
            try db.execute(sql: "DELETE FROM dead_letter_locations")
        } else if let pipeline {
            try db.execute(
                sql: """
                    DELETE FROM dead_letter_locations WHERE pipeline = ? AND block NOT IN (SELECT id FROM dead_letter_blocks WHERE pipeline = ?)
                    """, arguments: [pipeline, pipeline])
        } else {
            try db.execute(sql: "DELETE FROM dead_letter_locations WHERE block NOT IN (SELECT id FROM dead_letter_blocks)")
        }
    }

    // MARK: Reading

    /// The blocks that may hold letters of `filter`, in id order (`descending` reverses it).
    static func blocks(_ db: Database, _ filter: DeadLetterFilter, columns: String, descending: Bool = false) throws -> RowCursor {
        var clauses = ["id >= ?"]
        var arguments: [(any DatabaseValueConvertible)?] = [DeadLetterBlock.split(filter.afterID).block]
        if let p = filter.pipeline {
            clauses.append("pipeline = ?")
            arguments.append(p)
        }
        if !filter.ids.isEmpty {
            let blocks = Set(filter.ids.map { DeadLetterBlock.split($0).block }).sorted()
            if blocks.count <= 500 {
                clauses.append("id IN (\(blocks.map { _ in "?" }.joined(separator: ", ")))")
                arguments += blocks.map { $0 as (any DatabaseValueConvertible)? }
            } else {
                // More than a statement may bind: their range (the letters are then filtered).
                clauses.append("id BETWEEN ? AND ?")
                arguments += [blocks.first!, blocks.last!]
            }
        }
        if let since = filter.since {
            clauses.append("first_seen_max >= ?")
            arguments.append(since.timeIntervalSince1970)
        }
        if let until = filter.until {
            clauses.append("first_seen_min < ?")
            arguments.append(until.timeIntervalSince1970)
        }
        return try Row.fetchCursor(
            db, sql: "SELECT \(columns) FROM dead_letter_blocks WHERE \(clauses.joined(separator: " AND ")) ORDER BY id\(descending ? " DESC" : "")",
            arguments: StatementArguments(arguments))
    }

    /// The letters of block row `row` (columns id, pipeline, payload first).
    static func decode(_ row: Row) throws -> DeadLetterBlock {
        let id: Int64 = row[0]
        let pipeline: String = row[1]
        guard let payload = row.dataNoCopy(atIndex: 2) else { return DeadLetterBlock() }
        return try payload.withUnsafeBytes { try DeadLetterBlock.decode($0, block: id, pipeline: pipeline) }
    }

    /// `filter.matches`, with its ids in a set (a recovery asks for a page of ids at once).
    static func matcher(_ filter: DeadLetterFilter) -> (StoredDeadLetter) -> Bool {
        guard filter.ids.count > 16 else { return filter.matches }
        let ids = Set(filter.ids)
        var rest = filter
        rest.ids = []
        return { ids.contains($0.id) && rest.matches($0) }
    }

    /// Letters matching `filter`, in id order, at most `limit`.
    static func letters(_ db: Database, matching filter: DeadLetterFilter, limit: Int) throws -> [StoredDeadLetter] {
        var out: [StoredDeadLetter] = []
        guard limit > 0 else { return out }
        let matches = matcher(filter)
        let rows = try blocks(db, filter, columns: "id, pipeline, payload")
        while let row = try rows.next() {
            for l in try decode(row).letters where matches(l) {
                out.append(l)
                if out.count == limit { return out }
            }
        }
        return out
    }

    /// How many bytes of blocks a replay page holds, about (its next one is read meanwhile).
    static let pageBytes = 64 << 20

    /// Letters matching `filter` in id order, at most `limit`: as many blocks as fit, or the
    /// first `limit` of a larger one. A block all of whose letters match (its groups and range
    /// say so) goes on the page as it is stored; others are read letter by letter.
    static func page(_ db: Database, matching filter: DeadLetterFilter, limit: Int) throws -> DeadLetterPage {
        var page = DeadLetterPage()
        var count = 0
        let matches = matcher(filter)
        var bytes = 0
        let rows = try blocks(db, filter, columns: "id, pipeline, payload, letters, groups, slots, first_seen_min, first_seen_max, length(payload)")
        while let row = try rows.next() {
            let id: Int64 = row[0]
            let letters: Int = row[3]
            // At most `limit` letters and about `pageBytes` of blocks (at least one block).
            if count > 0 && (count + letters > limit || bytes + (row[8] as Int) > pageBytes) { break }
            bytes += row[8] as Int
            let slots = row.dataNoCopy(atIndex: 5) ?? Data()
            let first = slots.firstIndex { $0 != 0 }.map { byte in
                DeadLetterBlock.id(block: id, slot: (byte - slots.startIndex) * 8 + slots[byte].trailingZeroBitCount)
            }
            let last = slots.lastIndex { $0 != 0 }.map { byte in
                DeadLetterBlock.id(block: id, slot: (byte - slots.startIndex) * 8 + 7 - slots[byte].leadingZeroBitCount)
            }
            let oldest: Double = row[6], newest: Double = row[7]
            let groups = try DeadLetterBlock.decodeGroups([UInt8](row[4] as Data))
            let whole =
                filter.ids.isEmpty && (first ?? 0) > filter.afterID && filter.since.map({ oldest >= $0.timeIntervalSince1970 }) ?? true
                && filter.until.map({ newest < $0.timeIntervalSince1970 }) ?? true
                && groups.allSatisfy { (filter.stages.isEmpty || filter.stages.contains($0.stage)) && (filter.kinds.isEmpty || filter.kinds.contains($0.kind)) }
            if whole, let last, count + letters <= limit {
                let bytes = row.dataNoCopy(atIndex: 2).map { data in data.withUnsafeBytes { [UInt8]($0) } } ?? []
                page.parts.append(.block(DeadLetterPage.Block(id: id, pipeline: row[1], bytes: bytes, count: letters, lastID: last)))
                count += letters
            } else {
                let matching = try decode(row).letters.filter(matches)
                guard !matching.isEmpty else { continue }
                page.parts.append(.letters(Array(matching.prefix(limit - count))))
                count += min(matching.count, limit - count)
            }
            if count >= limit { break }
        }
        return page
    }

    /// The letter `id`.
    static func letter(_ db: Database, id: Int64) throws -> StoredDeadLetter? {
        let rows = try Row.fetchCursor(
            db, sql: "SELECT id, pipeline, payload FROM dead_letter_blocks WHERE id = ?", arguments: [DeadLetterBlock.split(id).block])
        guard let row = try rows.next() else { return nil }
        return try decode(row).letters.first { $0.id == id }
    }

    /// True when `filter` narrows by nothing a block's row cannot answer: whole blocks match.
    static func wholeBlocks(_ filter: DeadLetterFilter) -> Bool {
        filter.stages.isEmpty && filter.kinds.isEmpty && filter.ids.isEmpty && filter.afterID == 0
    }

    /// Deletes the letters matching `filter`; returns how many.
    static func delete(_ db: Database, matching filter: DeadLetterFilter) throws -> Int {
        var edit = Edit()
        var whole: [Int64] = []
        var removed = 0
        let matches = matcher(filter)
        let rows = try blocks(db, filter, columns: "id, pipeline, payload, letters, first_seen_min, first_seen_max")
        while let row = try rows.next() {
            let id: Int64 = row[0]
            let oldest: Double = row[4], newest: Double = row[5]
            if wholeBlocks(filter), filter.since.map({ oldest >= $0.timeIntervalSince1970 }) ?? true,
                filter.until.map({ newest < $0.timeIntervalSince1970 }) ?? true
            {
                whole.append(id)
                removed += row[3] as Int
                continue
            }
            let block = try decode(row)
            edit.blocks[id] = block
            edit.pipelines[id] = row[1]
            let slots = Set(block.letters.filter(matches).map { DeadLetterBlock.split($0.id).slot })
            if !slots.isEmpty { removed += edit.remove(slots: slots, from: id) }
        }
        try deleteBlocks(db, whole)
        try edit.save(db)
        if removed > 0 { try sweepIndex(db, pipeline: filter.pipeline) }
        return removed
    }

    /// Retention: `pipeline`'s letters first seen before `before`, then all but the newest
    /// `keepNewest`; then the index entries of blocks that are gone.
    static func sweep(_ db: Database, pipeline: String, before: Date?, keepNewest: Int?) throws -> Int {
        var removed = 0
        if let before { removed += try delete(db, matching: DeadLetterFilter(pipeline: pipeline, until: before)) }
        if let keepNewest {
            var kept = 0
            var edit = Edit()
            var whole: [Int64] = []
            let rows = try blocks(db, DeadLetterFilter(pipeline: pipeline), columns: "id, pipeline, payload, letters", descending: true)
            while let row = try rows.next() {
                let id: Int64 = row[0]
                let count: Int = row[3]
                if kept >= keepNewest {
                    whole.append(id)
                    removed += count
                } else if kept + count <= keepNewest {
                    kept += count
                } else {
                    // Keeps the newest of this block: the highest slots.
                    let block = try decode(row)
                    edit.blocks[id] = block
                    edit.pipelines[id] = pipeline
                    let drop = block.letters.count - (keepNewest - kept)
                    removed += edit.remove(slots: Set(block.letters.prefix(drop).map { DeadLetterBlock.split($0.id).slot }), from: id)
                    kept = keepNewest
                }
            }
            try deleteBlocks(db, whole)
            try edit.save(db)
        }
        try sweepIndex(db, pipeline: pipeline)
        return removed
    }

    /// Counts by pipeline, stage and kind, with ages relative to `now`: from the groups kept
    /// beside each block, reading a block's letters only when a group straddles a boundary.
    static func stats(_ db: Database, matching filter: DeadLetterFilter, now: Date) throws -> [DeadLetterGroup] {
        let t = now.timeIntervalSince1970
        let windows = [t - 3600, t - 86_400, t - 7 * 86_400]
        let bounds = windows + [filter.since, filter.until].compactMap { $0?.timeIntervalSince1970 }
        var totals: [String: DeadLetterGroup] = [:]
        func add(pipeline: String, stage: String, kind: String, count: Int, oldest: Double, newest: Double, hour: Int, day: Int, week: Int) {
            let key = "\(pipeline)\u{0}\(stage)\u{0}\(kind)"
            if var g = totals[key] {
                g.count += count
                g.oldest = min(g.oldest, Date(timeIntervalSince1970: oldest))
                g.newest = max(g.newest, Date(timeIntervalSince1970: newest))
                g.lastHour += hour
                g.lastDay += day
                g.lastWeek += week
                totals[key] = g
            } else {
                totals[key] = DeadLetterGroup(
                    pipeline: pipeline, stage: stage, kind: kind, count: count, oldest: Date(timeIntervalSince1970: oldest),
                    newest: Date(timeIntervalSince1970: newest), lastHour: hour, lastDay: day, lastWeek: week)
            }
        }
        let matches = matcher(filter)
        let rows = try blocks(db, filter, columns: "id, pipeline, groups")
        while let row = try rows.next() {
            let id: Int64 = row[0]
            let pipeline: String = row[1]
            let groups = try DeadLetterBlock.decodeGroups([UInt8](row[2] as Data))
            let wanted = groups.filter {
                (filter.stages.isEmpty || filter.stages.contains($0.stage)) && (filter.kinds.isEmpty || filter.kinds.contains($0.kind))
            }
            let uniform = wanted.allSatisfy { g in bounds.allSatisfy { g.newest < $0 || g.oldest >= $0 } }
            if uniform && filter.ids.isEmpty && filter.afterID == 0 {
                for g in wanted {
                    guard filter.since.map({ g.oldest >= $0.timeIntervalSince1970 }) ?? true,
                        filter.until.map({ g.newest < $0.timeIntervalSince1970 }) ?? true
                    else { continue }
                    add(
                        pipeline: pipeline, stage: g.stage, kind: g.kind, count: g.count, oldest: g.oldest, newest: g.newest,
                        hour: g.oldest >= windows[0] ? g.count : 0, day: g.oldest >= windows[1] ? g.count : 0, week: g.oldest >= windows[2] ? g.count : 0)
                }
                continue
            }
            guard !wanted.isEmpty, let full = try Row.fetchOne(db, sql: "SELECT id, pipeline, payload FROM dead_letter_blocks WHERE id = ?", arguments: [id])
            else { continue }
            for l in try decode(full).letters where matches(l) {
                let seen = l.firstSeen.timeIntervalSince1970
                add(
                    pipeline: pipeline, stage: l.letter.stage, kind: l.letter.errorKind, count: 1, oldest: seen, newest: seen,
                    hour: seen >= windows[0] ? 1 : 0, day: seen >= windows[1] ? 1 : 0, week: seen >= windows[2] ? 1 : 0)
            }
        }
        return totals.values.sorted {
            ($0.pipeline, -$0.count, $0.stage, $0.kind) < ($1.pipeline, -$1.count, $1.stage, $1.kind)
        }
    }

    /// How many letters `pipeline` (or every pipeline) has, and when the oldest was first seen.
    static func summary(_ db: Database, pipeline: String?) throws -> (count: Int, oldest: Date?) {
        let row =
            if let pipeline {
                try Row.fetchOne(db, sql: "SELECT SUM(letters), MIN(first_seen_min) FROM dead_letter_blocks WHERE pipeline = ?", arguments: [pipeline])
            } else {
                try Row.fetchOne(db, sql: "SELECT SUM(letters), MIN(first_seen_min) FROM dead_letter_blocks")
            }
        let oldest: Double? = row?[1]
        return ((row?[0] as Int?) ?? 0, oldest.map { Date(timeIntervalSince1970: $0) })
    }
}
