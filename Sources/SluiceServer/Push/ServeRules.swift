import Foundation
import SluiceCore

/// The rules `sluice serve` applies to a file's pipelines, in one place so that `sluice
/// validate` refuses what `serve` would.
public enum ServeRules {
    /// The push streams of `plans`: one per pipeline with an `http` source.
    public static func streams(in plans: [PipelinePlan]) -> [PushStream] {
        plans.compactMap { plan in (plan.source as? HTTPSource).map { PushStream(pipeline: plan.name, options: $0.options) } }
    }

    /// One stream feeds one pipeline (``ComponentFactory/validatePlans`` of the `http` source).
    @Sendable public static func uniqueStreams(_ plans: [PipelinePlan]) -> [PlanProblem] {
        var owners: [String: String] = [:]
        var problems: [PlanProblem] = []
        for stream in streams(in: plans) {
            if let other = owners[stream.options.stream] {
                problems.append(
                    PlanProblem(
                        pipeline: stream.pipeline, keyPath: "source.http.stream",
                        message: "stream '\(stream.options.stream)' is already consumed by pipeline '\(other)'; one stream feeds one pipeline"))
            } else {
                owners[stream.options.stream] = stream.pipeline
            }
        }
        return problems
    }

    /// What would be open without authentication on a non-loopback `host` (nil: nothing is):
    /// streams with `auth: none`, and the schema registry API without `registry_auth: api_key`.
    public static func exposure(of streams: [PushStream], host: String, registryRequiresKey: Bool) -> String? {
        guard !isLoopback(host) else { return nil }
        var open = streams.filter { $0.options.auth == .none }.map { "stream \($0.options.stream)" }
        if !registryRequiresKey { open.append("the schema registry API (set serve.registry_auth: api_key)") }
        guard !open.isEmpty else { return nil }
        return "refusing to listen on \(host): \(open.joined(separator: "; ")) need(s) authentication. Set `auth: api_key` or `auth: hmac` "
            + "on the streams and `serve.registry_auth: api_key`, listen on 127.0.0.1, or pass --allow-unauthenticated"
    }

    /// True for `localhost` and loopback addresses (127.0.0.0/8, ::1); a host name is not trusted to be one.
    public static func isLoopback(_ host: String) -> Bool {
        if host == "localhost" { return true }
        var v4 = in_addr()
        if inet_pton(AF_INET, host, &v4) == 1 { return UInt32(bigEndian: v4.s_addr) >> 24 == 127 }
        var v6 = in6_addr()
        if inet_pton(AF_INET6, host, &v6) == 1 {
            return withUnsafeBytes(of: &v6) { $0.prefix(15).allSatisfy { $0 == 0 } && $0[15] == 1 }
        }
        return false
    }
}
