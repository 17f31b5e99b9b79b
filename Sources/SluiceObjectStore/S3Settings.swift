import Foundation
import SluiceCore

/// Where and as whom to reach S3: the `storage:` block resolved against the environment and
/// `~/.aws/credentials`, as the AWS CLI resolves them.
public struct S3Settings: Sendable, CustomStringConvertible {
    /// `scheme://host[:port]`, no trailing slash.
    public var endpoint: String
    public var region: String
    public var pathStyle: Bool
    public var verifyTLS: Bool
    public var accessKeyID: String
    var secretAccessKey: String
    var sessionToken: String?

    public init(
        endpoint: String, region: String, pathStyle: Bool, verifyTLS: Bool = true, accessKeyID: String, secretAccessKey: String,
        sessionToken: String? = nil
    ) {
        self.endpoint = endpoint
        self.region = region
        self.pathStyle = pathStyle
        self.verifyTLS = verifyTLS
        self.accessKeyID = accessKeyID
        self.secretAccessKey = secretAccessKey
        self.sessionToken = sessionToken
    }

    /// Resolves `config` with the environment (`AWS_*`) and the shared credentials file.
    /// Throws a configuration error naming what is missing.
    public static func resolve(_ config: StorageConfig, environment: [String: String] = ProcessInfo.processInfo.environment) throws
        -> S3Settings
    {
        let region = config.region ?? environment["AWS_REGION"] ?? environment["AWS_DEFAULT_REGION"] ?? "us-east-1"
        let custom = config.endpoint ?? environment["AWS_ENDPOINT_URL_S3"] ?? environment["AWS_ENDPOINT_URL"]
        var endpoint = custom ?? "https://s3.\(region).amazonaws.com"
        while endpoint.hasSuffix("/") { endpoint.removeLast() }
        guard endpoint.hasPrefix("http://") || endpoint.hasPrefix("https://"), URL(string: endpoint)?.host != nil else {
            throw SluiceError(.configuration, "storage.endpoint must be an http:// or https:// URL; found '\(endpoint)'", location: "storage.endpoint")
        }
        var key = config.accessKeyID ?? environment["AWS_ACCESS_KEY_ID"]
        var secret = config.secretAccessKey ?? environment["AWS_SECRET_ACCESS_KEY"]
        var token = config.sessionToken ?? (config.accessKeyID == nil ? environment["AWS_SESSION_TOKEN"] : nil)
        let profileName = config.profile ?? environment["AWS_PROFILE"] ?? "default"
        if key == nil || secret == nil || config.profile != nil {
            let file =
                environment["AWS_SHARED_CREDENTIALS_FILE"]
                ?? ((environment["HOME"] ?? NSHomeDirectory()) as NSString).appendingPathComponent(".aws/credentials")
            if let text = try? String(contentsOfFile: file, encoding: .utf8), let profile = Self.profile(profileName, in: text) {
                key = profile["aws_access_key_id"] ?? key
                secret = profile["aws_secret_access_key"] ?? secret
                token = profile["aws_session_token"] ?? token
            } else if config.profile != nil {
                throw SluiceError(
                    .configuration, "no profile '\(profileName)' in \(file); add it or set storage.access_key_id and storage.secret_access_key",
                    location: "storage.profile")
            }
        }
        guard let key, let secret, !key.isEmpty, !secret.isEmpty else {
            throw SluiceError(
                .configuration,
                "no S3 credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, a profile in ~/.aws/credentials, or storage.access_key_id and storage.secret_access_key (with ${ENV} references)",
                location: "storage")
        }
        return S3Settings(
            endpoint: endpoint, region: region, pathStyle: config.pathStyle ?? (custom != nil), verifyTLS: config.verifyTLS ?? true,
            accessKeyID: key, secretAccessKey: secret, sessionToken: token)
    }

    /// The keys of `[name]` in an INI-style credentials file.
    static func profile(_ name: String, in text: String) -> [String: String]? {
        var current: String?
        var found: [String: String]?
        for raw in text.split(whereSeparator: \.isNewline) {
            let line = raw.trimmingCharacters(in: .whitespaces)
            if line.isEmpty || line.hasPrefix("#") || line.hasPrefix(";") { continue }
            if line.hasPrefix("[") && line.hasSuffix("]") {
                current = String(line.dropFirst().dropLast()).trimmingCharacters(in: .whitespaces)
                if current == name && found == nil { found = [:] }
                continue
            }
            guard current == name, let eq = line.firstIndex(of: "=") else { continue }
            let k = line[..<eq].trimmingCharacters(in: .whitespaces).lowercased()
            found?[k] = line[line.index(after: eq)...].trimmingCharacters(in: .whitespaces)
        }
        return found
    }

    /// Never shows the secret or the token.
    public var description: String {
        "S3Settings(endpoint: \(endpoint), region: \(region), path_style: \(pathStyle), access_key_id: \(accessKeyID), secret: ***)"
    }
}
