import Foundation

/// One page of a replay (``DeadLetterAdminStore/deadLetterPage(matching:limit:)``): dead
/// letters in id order, as read letter by letter or as the blocks a store keeps them in
/// (``DeadLetterBlock``), which a replay can decode as one text without making a value per
/// letter (``lines(stage:)``).
public struct DeadLetterPage: Sendable {
    /// A block as stored, every letter of which is on the page.
    public struct Block: Sendable {
        public var id: Int64
        public var pipeline: String
        public var bytes: [UInt8]
        /// How many letters it holds, and the id of its last.
        public var count: Int
        public var lastID: Int64

        public init(id: Int64, pipeline: String, bytes: [UInt8], count: Int, lastID: Int64) {
            self.id = id
            self.pipeline = pipeline
            self.bytes = bytes
            self.count = count
            self.lastID = lastID
        }
    }

    /// The page in order: letters read one by one, or whole blocks.
    public enum Part: Sendable {
        case letters([StoredDeadLetter])
        case block(Block)
    }

    public var parts: [Part]

    public init(parts: [Part] = []) {
        self.parts = parts
    }

    public init(letters: [StoredDeadLetter]) {
        self.parts = letters.isEmpty ? [] : [.letters(letters)]
    }

    /// How many letters the page holds.
    public var count: Int {
        parts.reduce(0) {
            switch $1 {
            case let .letters(l): $0 + l.count
            case let .block(b): $0 + b.count
            }
        }
    }

    public var isEmpty: Bool { count == 0 }

    /// The id of the page's last letter: the next page starts after it.
    public var lastID: Int64? {
        switch parts.last {
        case let .letters(l)?: l.last?.id
        case let .block(b)?: b.lastID
        case nil: nil
        }
    }

    /// Every letter of the page, in id order.
    public func letters() throws -> [StoredDeadLetter] {
        var out: [StoredDeadLetter] = []
        out.reserveCapacity(count)
        for part in parts {
            switch part {
            case let .letters(l): out += l
            case let .block(b): out += try DeadLetterBlock.decode(b.bytes, block: b.id, pipeline: b.pipeline).letters
            }
        }
        return out
    }

    /// The page's rows as one text, when every letter is in a block, of `stage`, and one line;
    /// nil otherwise.
    public func lines(stage: String) throws -> DeadLetterBlock.Lines? {
        var lines = DeadLetterBlock.Lines()
        for part in parts {
            guard case let .block(b) = part else { return nil }
            guard try DeadLetterBlock.lines(b.bytes, id: b.id, stage: stage, into: &lines) else { return nil }
        }
        return lines.ids.isEmpty ? nil : lines
    }
}
