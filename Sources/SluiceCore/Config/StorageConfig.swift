/// `storage:`: how `s3://` paths are reached. At the top level of a file it holds defaults; in a
/// pipeline it overrides them key by key. Secrets are never printed (``description`` masks them).
///
/// ```yaml
/// storage: { endpoint: "http://127.0.0.1:8333", region: us-east-1, path_style: true }
/// ```
public struct StorageConfig: Decodable, Sendable, Hashable, CustomStringConvertible {
    /// `http(s)://host:port` of an S3-compatible server; AWS S3 when unset.
    public var endpoint: String?
    public var region: String?
    /// `https://endpoint/bucket/key` instead of `https://bucket.endpoint/key`.
    public var pathStyle: Bool?
    public var accessKeyID: String?
    public var secretAccessKey: String?
    public var sessionToken: String?
    /// A profile of `~/.aws/credentials`.
    public var profile: String?
    /// Verify the server's TLS certificate (default true).
    public var verifyTLS: Bool?
    /// Size of each part of a multipart upload (default 16 MB, at least 5 MB).
    public var partSize: ConfigByteSize?
    /// Parts uploaded at once (default 4); each is streamed from disk, 1 MB at a time.
    public var parallelParts: Int?
    /// `s3://bucket/prefix` where the server delivers the lake bucket's access logs (S3 server
    /// access log format): `sluice cost` tells unread lakes by them.
    public var accessLogs: String?

    enum CodingKeys: String, CodingKey {
        case endpoint, region, profile
        case pathStyle = "path_style"
        case accessKeyID = "access_key_id"
        case secretAccessKey = "secret_access_key"
        case sessionToken = "session_token"
        case verifyTLS = "verify_tls"
        case partSize = "part_size"
        case parallelParts = "parallel_parts"
        case accessLogs = "access_logs"
    }

    public init(
        endpoint: String? = nil, region: String? = nil, pathStyle: Bool? = nil, accessKeyID: String? = nil,
        secretAccessKey: String? = nil, sessionToken: String? = nil, profile: String? = nil, verifyTLS: Bool? = nil,
        partSize: ConfigByteSize? = nil, parallelParts: Int? = nil, accessLogs: String? = nil
    ) {
        self.endpoint = endpoint
        self.region = region
        self.pathStyle = pathStyle
        self.accessKeyID = accessKeyID
        self.secretAccessKey = secretAccessKey
        self.sessionToken = sessionToken
        self.profile = profile
        self.verifyTLS = verifyTLS
        self.partSize = partSize
        self.parallelParts = parallelParts
        self.accessLogs = accessLogs
    }

    /// These settings with every key `other` sets taken from it.
    public func overridden(by other: StorageConfig?) -> StorageConfig {
        guard let o = other else { return self }
        return StorageConfig(
            endpoint: o.endpoint ?? endpoint, region: o.region ?? region, pathStyle: o.pathStyle ?? pathStyle,
            accessKeyID: o.accessKeyID ?? accessKeyID, secretAccessKey: o.secretAccessKey ?? secretAccessKey,
            sessionToken: o.sessionToken ?? sessionToken, profile: o.profile ?? profile, verifyTLS: o.verifyTLS ?? verifyTLS,
            partSize: o.partSize ?? partSize, parallelParts: o.parallelParts ?? parallelParts, accessLogs: o.accessLogs ?? accessLogs)
    }

    public var description: String {
        var parts: [String] = []
        if let endpoint { parts.append("endpoint: \(endpoint)") }
        if let region { parts.append("region: \(region)") }
        if let pathStyle { parts.append("path_style: \(pathStyle)") }
        if let accessKeyID { parts.append("access_key_id: \(accessKeyID)") }
        if secretAccessKey != nil { parts.append("secret_access_key: ***") }
        if sessionToken != nil { parts.append("session_token: ***") }
        if let profile { parts.append("profile: \(profile)") }
        if let verifyTLS { parts.append("verify_tls: \(verifyTLS)") }
        if let partSize { parts.append("part_size: \(partSize.bytes)") }
        if let parallelParts { parts.append("parallel_parts: \(parallelParts)") }
        return "{ " + parts.joined(separator: ", ") + " }"
    }

    /// The declaration of the block, for the reference and the JSON Schema.
    public static let spec = OptionSpec(
        "storage",
        .object([
            OptionSpec(
                "endpoint", .string, example: #""http://127.0.0.1:8333""#,
                "An S3-compatible server (MinIO, SeaweedFS, Ceph, R2, `https://storage.googleapis.com`). Default: `AWS_ENDPOINT_URL_S3`, `AWS_ENDPOINT_URL`, else AWS S3 of the region."
            ),
            OptionSpec("region", .string, example: "eu-central-1", "The signing region. Default: `AWS_REGION`, `AWS_DEFAULT_REGION`, else `us-east-1`."),
            OptionSpec(
                "path_style", .boolean, example: "true",
                "Address buckets as `endpoint/bucket/key` (most self-hosted servers) rather than `bucket.endpoint/key`. Default: true with an `endpoint`, false for AWS."
            ),
            OptionSpec("access_key_id", .string, example: #""${S3_KEY}""#, "Default: `AWS_ACCESS_KEY_ID`, else the profile's."),
            OptionSpec(
                "secret_access_key", .string, example: #""${S3_SECRET}""#, secret: true, "Default: `AWS_SECRET_ACCESS_KEY`, else the profile's."),
            OptionSpec(
                "session_token", .string, example: #""${AWS_SESSION_TOKEN}""#, secret: true, "Temporary credentials' token. Default: `AWS_SESSION_TOKEN`."),
            OptionSpec(
                "profile", .string, example: "lake",
                "A profile of `~/.aws/credentials` (or `AWS_SHARED_CREDENTIALS_FILE`). Default: `AWS_PROFILE`, else `default`."),
            OptionSpec(
                "verify_tls", .boolean, default: "true", example: "false", "Check the server's certificate; turn off only for a self-signed test server."),
            OptionSpec(
                "part_size", .byteSize, default: "16MB", example: "64MB",
                "Files are uploaded in parts of this size (at least 5MB, S3's minimum); fewer, larger parts for very large files."),
            OptionSpec(
                "parallel_parts", .integer(1...64), default: "4", example: "8",
                "Parts uploaded at once. Each part is read from the spool file 1MB at a time as it is sent, so memory does not grow with `part_size`."),
            OptionSpec(
                "access_logs", .string, example: #""s3://logs/lake/""#,
                "Where the server delivers the lake bucket's access logs (S3 server access log format). `sluice cost` reads them to tell whether anyone reads a lake (GETs by other clients than Sluice)."
            ),
        ]), example: #"{ endpoint: "http://127.0.0.1:8333", region: us-east-1 }"#,
        "How `s3://` paths are reached (at the top level: defaults for every pipeline; in a pipeline: overrides key by key).")
}
