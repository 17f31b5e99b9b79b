import SluiceFormats

/// Feeds a prepared decoder the way the file source does: chunks of `chunk` bytes, passing the
/// unconsumed bytes again with the next chunk. Returns the rows decoded and the reject kinds.
/// (Shared by FuzzCSV and FuzzNDJSON; mirrored by Tests/SluiceFormatsTests/FuzzRegressionTests.swift.)
public enum FuzzDrive {
    public static func decodeAll(_ decoder: some RecordDecoder, _ data: [UInt8], chunk: Int) -> (rows: Int, rejects: [String]) {
        var rows = 0
        var rejects: [String] = []
        var pending: [UInt8] = []
        var pos = 0
        while true {
            let take = min(chunk, data.count - pos)
            pending.append(contentsOf: data[pos..<(pos + take)])
            pos += take
            let isFinal = pos == data.count
            while true {
                let out = pending.withUnsafeBytes { decoder.decode($0, isFinal: isFinal) }
                precondition(out.consumed >= 0 && out.consumed <= pending.count, "consumed \(out.consumed) of \(pending.count) bytes")
                rows += out.batch.count
                rejects += out.rejects.map(\.kind)
                pending.removeFirst(out.consumed)
                if out.consumed == 0 || pending.isEmpty { break }
            }
            if isFinal { break }
        }
        precondition(pending.isEmpty, "\(pending.count) bytes left undecoded after the final call")
        return (rows, rejects)
    }
}
