/// A path in object storage: `s3://bucket/prefix/…`.
public struct ObjectLocation: Sendable, Hashable, CustomStringConvertible {
    public var bucket: String
    /// The key or key prefix, without a leading `/` (may be empty: the whole bucket).
    public var key: String

    public init(bucket: String, key: String) {
        self.bucket = bucket
        self.key = key
    }

    /// Parses `s3://bucket/key`; nil for anything else (a local path). Throws for an `s3://`
    /// path that cannot name a bucket.
    public init?(parsing path: String) throws {
        guard path.hasPrefix("s3://") else { return nil }
        let rest = path.dropFirst(5)
        let bucket = String(rest.prefix { $0 != "/" })
        guard Self.isValidBucket(bucket) else {
            throw ObjectLocationError(path: path, message: "'\(bucket)' is not a bucket name (3–63 lowercase letters, digits, '.' and '-')")
        }
        self.bucket = bucket
        key = String(rest.dropFirst(bucket.count).drop { $0 == "/" })
    }

    /// Whether `path` is an object-store URL (`s3://`).
    public static func isObjectPath(_ path: String) -> Bool { path.hasPrefix("s3://") }

    /// Bucket naming rules shared by S3, GCS and MinIO (underscores and capitals refused).
    static func isValidBucket(_ name: String) -> Bool {
        guard (3...63).contains(name.count), let first = name.first, let last = name.last else { return false }
        guard first.isLetter || first.isNumber, last.isLetter || last.isNumber else { return false }
        return name.allSatisfy { ("a"..."z").contains($0) || ("0"..."9").contains($0) || $0 == "." || $0 == "-" }
    }

    /// `key` joined to a relative part with exactly one `/`.
    public func appending(_ relative: String) -> ObjectLocation {
        guard !relative.isEmpty else { return self }
        if key.isEmpty { return ObjectLocation(bucket: bucket, key: relative) }
        return ObjectLocation(bucket: bucket, key: key.hasSuffix("/") ? key + relative : key + "/" + relative)
    }

    public var description: String { "s3://\(bucket)/\(key)" }
}

/// An `s3://` path that is not usable.
public struct ObjectLocationError: Error, Sendable, CustomStringConvertible {
    public var path: String
    public var message: String
    public var description: String { "\(path): \(message)" }
}
