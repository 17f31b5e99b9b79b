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
            reader = try ParquetReader(path: file.path)
        } catch let error as ParquetError {
            throw FileReadError(path: file.path, message: error.message)
        }
        nextRowGroup = rowGroup
    }

    var isFinished: Bool { nextRowGroup >= reader.rowGroupCount }

    /// The next row group as a batch, with the position after it.
    func next() throws -> (RecordBatch, FilePosition, bytes: Int) {
        let index = nextRowGroup
        let batch: RecordBatch
        do {
            batch = index < reader.rowGroupCount ? try reader.readRowGroup(index) : RecordBatch.empty(reader.schema)
        } catch let error as ParquetError {
            throw FileReadError(path: file.path, message: "row group \(index): \(error.message)")
        }
        nextRowGroup = index + 1
        let done = nextRowGroup >= reader.rowGroupCount
        let bytes = index < reader.metadata.rowGroups.count ? reader.metadata.rowGroups[index].totalByteSize : 0
        // `offset` holds the next row group; `line` the rows read so far.
        return (batch, FilePosition(offset: nextRowGroup, line: 0, done: done, size: file.size, modified: file.modified), bytes)
    }
}
