import Foundation
import SluiceCore
import SluiceFormats

/// Decoding on several threads at once, in rounds.
///
/// A round takes the buffered input of the current file and cuts it at record boundaries
/// (``RecordDecoder/completeRecordsEnd(_:)``) into up to ``FileSourceReader/lanes`` pieces; when
/// the file ends inside the round, the next files are opened and cut too (many small files are
/// read at once). The pieces are decoded in parallel, each by its own decoder prepared from the
/// file's first bytes exactly as the file's own decoder was, then handed on in order: a piece's
/// batches get the positions and line numbers reading the file from start to end would give them.
///
/// A piece counts only if reading in order would have decoded it the same way: the piece before
/// it ended on a record boundary, and its decoder started from the same schema that reading in
/// order had reached there (an NDJSON schema grows when a new key appears). At the first piece that
/// does not, the file goes on in order from there, with the decoder of the piece before, and the
/// files after it in the round are read again later. So output never depends on the number of
/// threads.
extension FileSourceReader {
    /// One stretch of a file's buffer, decoded by one lane.
    final class Piece {
        let file: OpenFile
        /// Index of the piece within its file's pieces of this round (0 uses the file's decoder).
        let index: Int
        /// Bounds in `file.buffer`, and the decompressed offset and 1-based line of `start`.
        let start: Int, end: Int, offset: Int, line: Int
        /// The last piece of the file (decoded with `isFinal`).
        let isFinal: Bool
        let decoder: any RecordDecoder

        // Filled by the lane.
        var outputs: [(output: DecodeOutput, lines: Int)] = []
        var schemaBefore = Schema([])
        var consumed = 0

        init(file: OpenFile, index: Int, start: Int, end: Int, offset: Int, line: Int, isFinal: Bool, decoder: any RecordDecoder) {
            self.file = file
            self.index = index
            self.start = start
            self.end = end
            self.offset = offset
            self.line = line
            self.isFinal = isFinal
            self.decoder = decoder
        }

        /// Decodes the piece to its end. Touches only the piece, its decoder and (reading) the buffer.
        func decode() {
            schemaBefore = decoder.schema
            decoder.seek(offset: offset, line: line)
            var pos = start
            while pos < end || outputs.isEmpty {
                let input = UnsafeRawBufferPointer(rebasing: file.buffer[pos..<end])
                let output = decoder.decode(input, isFinal: isFinal)
                if output.consumed == 0 && output.batch.count == 0 && output.rejects.isEmpty { break }
                let lines = FileSourceReader.countLines(UnsafeRawBufferPointer(rebasing: file.buffer[pos..<(pos + output.consumed)]))
                outputs.append((output, lines))
                pos += output.consumed
                if output.consumed == 0 { break }
            }
            consumed = pos - start
        }
    }

    /// Smallest piece worth a lane of its own.
    static let minimumPieceBytes = 64 << 10

    /// Decodes the next round into ``ready``; false when the current file must be read in order
    /// instead (no record ends in its buffer, or its first piece cannot be taken).
    func readRound() throws -> Bool {
        guard let first = current else { return false }
        var files: [OpenFile] = [first]
        var pieces: [Piece] = []
        var buffered = 0
        while pieces.count < lanes {
            let f = files[files.count - 1]
            let before = pieces.count
            let framedWhole: Bool
            do {
                framedWhole = try cut(f, into: &pieces, upTo: lanes - pieces.count)
            } catch  where f !== first {
                // A later file that cannot be read yet: it fails (or is dead-lettered) on its own turn.
                pieces.removeAll { $0.file === f }
                files.removeLast()
                queue.insert(f.file, at: 0)
                break
            }
            if pieces.count == before {
                if f === first {
                    goInOrder(first, with: first.decoder)
                    return false
                }
                // A later file with no record end in its buffer: it is read on its own turn.
                files.removeLast()
                queue.insert(f.file, at: 0)
                break
            }
            buffered += f.buffer.count
            guard framedWhole, pieces.count < lanes, buffered < Self.chunkSize * lanes, let next = try openNextInRound() else { break }
            files.append(next)
        }
        try ParallelLanes.run(Array(pieces.indices), lanes: lanes) { i, _ in pieces[i].decode() }
        assemble(pieces, files: files)
        return readyIndex < ready.count
    }

    /// Cuts the buffered input of `f` into at most `count` pieces at record ends; true when the
    /// file's last piece is among them.
    private func cut(_ f: OpenFile, into pieces: inout [Piece], upTo count: Int) throws -> Bool {
        // After a held-back read failure, the records before it are cut first (as in order).
        if f.deferredError == nil && !f.eof && (f.end - f.start) < f.buffer.count / 2 { try f.fill() }
        guard f.parallel, f.decoder.isBetweenRecords else { return false }
        let available = f.end - f.start
        let wanted = max(1, min(count, available / Self.minimumPieceBytes))
        var pos = f.start
        var line = f.line
        var index = 0
        for k in 1...wanted where pos < f.end {
            let target = k == wanted ? f.end : f.start + available * k / wanted
            if target == f.end && f.eof && f.deferredError == nil {
                pieces.append(try piece(f, index: index, start: pos, end: f.end, line: line, isFinal: true))
                return true
            }
            let end = pos + f.decoder.completeRecordsEnd(UnsafeRawBufferPointer(rebasing: f.buffer[pos..<target]))
            guard end > pos else { continue }
            pieces.append(try piece(f, index: index, start: pos, end: end, line: line, isFinal: false))
            // Each piece starts at its real line, so rejects and schema notes name the file's lines.
            line += Self.countLines(UnsafeRawBufferPointer(rebasing: f.buffer[pos..<end]))
            index += 1
            pos = end
        }
        return false
    }

    private func piece(_ f: OpenFile, index: Int, start: Int, end: Int, line: Int, isFinal: Bool) throws -> Piece {
        let decoder: any RecordDecoder
        if index == 0 {
            decoder = f.decoder
        } else {
            while f.pieceDecoders.count < index {
                let made = try makeDecoder(f.file.path)
                _ = try f.sample.withUnsafeBytes { try made.prepare(sample: $0, isWholeInput: f.sampleIsWholeInput) }
                f.pieceDecoders.append(made)
            }
            decoder = f.pieceDecoders[index - 1]
        }
        return Piece(
            file: f, index: index, start: start, end: end, offset: f.offset + (start - f.start), line: line, isFinal: isFinal,
            decoder: decoder)
    }

    /// Opens the next listed file when it can join the round (local CSV or NDJSON); nil otherwise.
    private func openNextInRound() throws -> OpenFile? {
        guard objects == nil, let file = queue.first, !source.isParquet(file.path) else { return nil }
        queue.removeFirst()
        do {
            guard let opened = try open(file) else { return nil }
            return opened
        } catch {
            // A file that cannot be opened fails (or is dead-lettered) on its own turn, after the
            // rows of the files before it.
            queue.insert(file, at: 0)
            return nil
        }
    }

    /// Hands the pieces' batches on in order, up to the first piece that reading in order would
    /// not have decoded the same way.
    private func assemble(_ pieces: [Piece], files: [OpenFile]) {
        /// Per file: the decoder of the last piece taken.
        var chain: [ObjectIdentifier: any RecordDecoder] = [:]
        for (n, p) in pieces.enumerated() {
            let f = p.file
            let id = ObjectIdentifier(f)
            if p.index > 0, let before = chain[id], before.schema != p.schemaBefore {
                // The schema grew in the piece before: from here on the file is read in order.
                stopRound(at: f, with: before, files: files, later: pieces[n...])
                return
            }
            take(p)
            chain[id] = p.decoder
            if p.consumed != p.end - p.start || !p.decoder.isBetweenRecords {
                // The piece did not end on a record end (a record longer than the limit): the
                // rest of the file is read in order, by the decoder that knows where it is.
                stopRound(at: f, with: p.decoder, files: files, later: pieces[(n + 1)...])
                return
            }
        }
        for f in files {
            guard let last = chain[ObjectIdentifier(f)], last !== f.decoder,
                let slot = f.pieceDecoders.firstIndex(where: { $0 === last })
            else { continue }
            // The next round starts with the decoder that read the last piece (an NDJSON schema
            // may have grown in it); the file's former decoder takes its slot.
            f.pieceDecoders[slot] = f.decoder
            f.decoder = last
        }
        // The last file goes on in the next round, unless the round read it to its end.
        if let last = files.last, chain[ObjectIdentifier(last)] == nil || !(last.eof && last.start == last.end) { current = last }
    }

    /// Ends a round early at file `f`, which goes on in order with `decoder`; the files after it
    /// whose pieces were not taken are opened again on their turn.
    private func stopRound(at f: OpenFile, with decoder: any RecordDecoder, files: [OpenFile], later: ArraySlice<Piece>) {
        goInOrder(f, with: decoder)
        current = f
        queue.insert(contentsOf: files.filter { g in g !== f && later.contains { $0.file === g } }.map(\.file), at: 0)
    }

    /// The file is read in order from its current position on, by `decoder`.
    func goInOrder(_ f: OpenFile, with decoder: any RecordDecoder) {
        f.decoder = decoder
        f.parallel = false
        f.decoder.seek(offset: f.offset, line: f.line)
    }

    /// Turns a piece's outputs into batches, advancing its file as reading in order does.
    private func take(_ p: Piece) {
        for (output, lines) in p.outputs { ready.append(advance(p.file, by: output, lines: lines)) }
    }
}
