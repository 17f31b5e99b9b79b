import SluiceCore
import SluiceFormats

/// Reads one Parquet file row group by row group, for the `file` source with `format: parquet`.
///
/// The checkpoint position of the file is the index of the next row group, so a crash resumes
/// at the first row group not yet committed.
final class ParquetFileCursor {
    let file: ListedFile
    let reader: ParquetReader
    var nextRowGroup: Int

    init(file: ListedFile, resumeAt rowGroup: Int) throws {
        self.file = file
        do {
            reader = try ParquetReader(path: file.readPath)
        } catch let error as ParquetError {
            throw Self.readError(error, path: file.path, what: "")
        }
        nextRowGroup = rowGroup
    }

    var isFinished: Bool { nextRowGroup >= reader.rowGroupCount }

    /// A corrupt file is one bad input (dead-lettered, and the run goes on). Valid Parquet that
    /// Sluice cannot read exactly (a nanosecond timestamp finer than a microsecond, an encoding
    /// it does not know) stops the pipeline with the reason: a file that was not read is never
    /// reported as a success.
    static func readError(_ error: ParquetError, path: String, what: String) -> any Error {
        guard error.kind == .unsupported else { return FileReadError(path: path, message: what + error.message) }
        return SluiceError(
            .unsupported,
            "\(path): \(what)\(error.message); Sluice cannot read this file exactly and stops rather than skip it "
                + "(convert the file, or move it out of the source's path)",
            location: path)
    }

    /// The next row group as a batch, with the position after it.
    func next() throws -> (RecordBatch, FilePosition, bytes: Int) {
        let index = nextRowGroup
        let batch: RecordBatch
        do {
            batch = index < reader.rowGroupCount ? try reader.readRowGroup(index) : RecordBatch.empty(reader.schema)
        } catch let error as ParquetError {
            throw Self.readError(error, path: file.path, what: "row group \(index): ")
        }
        nextRowGroup = index + 1
        let done = nextRowGroup >= reader.rowGroupCount
        let bytes = index < reader.metadata.rowGroups.count ? reader.metadata.rowGroups[index].totalByteSize : 0
        // `offset` holds the next row group; `line` the rows read so far.
        return (batch, FilePosition(offset: nextRowGroup, line: 0, done: done, size: file.size, modified: file.modified, etag: file.etag), bytes)
    }
}
