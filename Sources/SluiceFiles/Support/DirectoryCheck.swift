#if canImport(Glibc)
    import Glibc
#endif
import Foundation
import SluiceCore

/// Cheap reachability checks for file components.
enum DirectoryCheck {
    /// `directory` is, or can be created as, a writable directory: its nearest existing ancestor
    /// must be a directory we may write to.
    static func writable(_ directory: String, what: String) throws {
        var path = directory
        var isDirectory: ObjCBool = false
        while !FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) {
            let parent = (path as NSString).deletingLastPathComponent
            if parent == path || parent.isEmpty { break }
            path = parent
        }
        guard isDirectory.boolValue else {
            throw SluiceError(.io, "\(what) '\(directory)' cannot be created: '\(path)' is not a directory", location: directory)
        }
        // A probe, not access(2): root passes every permission check, yet cannot write to a
        // read-only mount or a pseudo file system such as /proc.
        var template = Array("\(path)/.sluice-probe-XXXXXX".utf8CString)
        guard let made = mkdtemp(&template) else {
            throw SluiceError(.io, "\(what) '\(directory)' is not writable (\(String(cString: strerror(errno))) at '\(path)')", location: directory)
        }
        rmdir(made)
    }
}
