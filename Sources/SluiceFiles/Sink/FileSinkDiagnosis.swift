import Foundation
import SluiceCore
import SluiceObjectStore

/// `sluice doctor` for the file sinks: the output is writable now, and a local one has room.
enum FileSinkDiagnosis {
    static func diagnose(directory: String, storage: StorageConfig, limits: DiagnosisLimits) async -> [Diagnosis] {
        do {
            try await ObjectPublisher.checkWritable(directory, storage: storage)
        } catch {
            return [
                .failed(
                    "sink.writable", "cannot write to \(directory)", error,
                    fix: directory.contains("://")
                        ? "check the bucket, the credentials and their permission to put and delete objects under this prefix"
                        : "create the directory or give this user write permission on it")
            ]
        }
        var found = [Diagnosis("sink.writable", .ok, "\(directory) is writable")]
        if !directory.contains("://") {
            found.append(FreeSpace.diagnose("sink.disk_space", path: directory, what: "the output", limits: limits))
        }
        return found
    }
}

extension ParquetFileSink: Diagnosable {
    public func diagnose(_ context: DiagnosisContext) async -> [Diagnosis] {
        await FileSinkDiagnosis.diagnose(directory: directory, storage: storage, limits: context.limits)
    }
}

extension NDJSONFileSink: Diagnosable {
    public func diagnose(_ context: DiagnosisContext) async -> [Diagnosis] {
        await FileSinkDiagnosis.diagnose(directory: directory, storage: storage, limits: context.limits)
    }
}
