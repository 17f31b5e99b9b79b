/// `serve:`: where and how `sluice serve` listens (DESIGN.md §5).
///
/// ```yaml
/// serve:
///   host: 127.0.0.1          # loopback by default; another address needs authentication on every stream
///   port: 8080
///   tls: { certificate: certs/server.pem, private_key: certs/server.key }
///   max_inflight_bytes: 64MB # request bodies held in memory at once (unverified senders: a quarter); beyond it, 503
///   registry_auth: api_key   # writes to the schema registry API need an API key (none: open, loopback only)
///   drain_timeout: 30s       # on SIGTERM, how long pipelines may take to commit what was accepted
/// ```
public struct ServeConfig: Decodable, Sendable {
    public var host: String?
    public var port: Int?
    public var tls: TLSFiles?
    public var maxInflightBytes: Int?
    /// `api_key` or `none` (default).
    public var registryAuth: String?
    /// On SIGTERM/SIGINT, how long the push pipelines may take to commit what was accepted (default 30s).
    public var drainTimeout: Duration?

    public struct TLSFiles: Decodable, Sendable {
        public var certificate: String
        public var privateKey: String

        enum CodingKeys: String, CodingKey {
            case certificate
            case privateKey = "private_key"
        }
    }

    enum CodingKeys: String, CodingKey {
        case host, port, tls
        case maxInflightBytes = "max_inflight_bytes"
        case registryAuth = "registry_auth"
        case drainTimeout = "drain_timeout"
    }

    public init() {}

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        host = try c.decodeIfPresent(String.self, forKey: .host)
        port = try c.decodeIfPresent(Int.self, forKey: .port, in: 0...65535)
        tls = try c.decodeIfPresent(TLSFiles.self, forKey: .tls)
        maxInflightBytes = try c.decodeIfPresent(ConfigByteSize.self, forKey: .maxInflightBytes)?.bytes
        registryAuth = try c.decodeIfPresent(String.self, forKey: .registryAuth)
        drainTimeout = try c.decodeIfPresent(ConfigDuration.self, forKey: .drainTimeout)?.duration
        if let r = registryAuth, r != "none", r != "api_key" {
            throw try c.superDecoder(forKey: .registryAuth).configError("unknown registry_auth '\(r)'; use none or api_key")
        }
    }
}
