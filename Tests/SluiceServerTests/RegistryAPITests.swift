import AsyncHTTPClient
import Foundation
import NIOHTTP1
import SluiceCore
@testable import SluiceServer
import Testing

/// The Confluent Schema Registry API of `sluice serve`, over real HTTP: every endpoint and error code.
@Suite struct RegistryAPITests {
    static let v1 = #"{"type":"record","name":"Order","fields":[{"name":"id","type":"long"}]}"#
    static let v2 = #"{"type":"record","name":"Order","fields":[{"name":"id","type":"long"},{"name":"note","type":["null","string"],"default":null}]}"#
    static let incompatible = #"{"type":"record","name":"Order","fields":[{"name":"id","type":"string"}]}"#

    func errorCode(_ r: PushHarness.Reply) -> Int? { r.json["error_code"] as? Int }

    @Test func registerReadAndLookUpVersions() async throws {
        try await PushHarness.run([], registry: true) { h in
            let first = try await h.call(.POST, "/subjects/orders-value/versions", ["schema": Self.v1])
            #expect(first.status == 200, "\(first.body)")
            #expect(first.headers.first(name: "Content-Type") == "application/vnd.schemaregistry.v1+json")
            let id1 = first.json["id"] as? Int
            #expect(id1 != nil)
            let again = try await h.call(.POST, "/subjects/orders-value/versions", ["schema": Self.v1.replacingOccurrences(of: ",", with: ", ")])
            #expect(again.json["id"] as? Int == id1, "the same schema (whitespace aside) is not a new version")
            let second = try await h.call(.POST, "/subjects/orders-value/versions", ["schema": Self.v2, "schemaType": "AVRO"])
            let id2 = second.json["id"] as? Int
            #expect(id2 != nil && id2 != id1)
            // The same schema under another subject keeps its global id.
            #expect(try await h.call(.POST, "/subjects/other/versions", ["schema": Self.v1]).json["id"] as? Int == id1)

            let subjects = try JSONSerialization.jsonObject(with: Data(try await h.get("/subjects").body.utf8)) as? [String]
            #expect(subjects == ["orders-value", "other"])
            #expect(try await h.get("/subjects/orders-value/versions").body == "[1,2]")
            let latest = try await h.get("/subjects/orders-value/versions/latest")
            #expect(latest.json["version"] as? Int == 2 && latest.json["id"] as? Int == id2 && latest.json["subject"] as? String == "orders-value")
            #expect(latest.json["schema"] as? String == Self.v2 && latest.json["schemaType"] == nil, "AVRO is implied")
            #expect(try await h.get("/subjects/orders-value/versions/1").json["schema"] as? String == Self.v1)
            #expect(try await h.get("/subjects/orders-value/versions/-1").json["version"] as? Int == 2)
            #expect(try await h.get("/subjects/orders-value/versions/1/schema").body == Self.v1)
            #expect(try await h.get("/schemas/ids/\(id2!)").json["schema"] as? String == Self.v2)

            let found = try await h.call(.POST, "/subjects/orders-value", ["schema": Self.v1])
            #expect(found.status == 200 && found.json["version"] as? Int == 1 && found.json["id"] as? Int == id1)

            // Other formats.
            let js = try await h.call(
                .POST, "/subjects/js/versions", ["schema": #"{"type":"object","properties":{"a":{"type":"integer"}}}"#, "schemaType": "JSON"])
            #expect(js.status == 200)
            #expect(try await h.get("/subjects/js/versions/1").json["schemaType"] as? String == "JSON")
            let own = try await h.call(
                .POST, "/subjects/own/versions", ["schema": #"{"type":"sluice","fields":[{"name":"a","type":"int64"}]}"#, "schemaType": "SLUICE"])
            #expect(own.status == 200)
        }
    }

    @Test func compatibilityIsEnforcedAndCheckable() async throws {
        try await PushHarness.run([], registry: true) { h in
            _ = try await h.call(.POST, "/subjects/s/versions", ["schema": Self.v1])
            let refused = try await h.call(.POST, "/subjects/s/versions", ["schema": Self.incompatible])
            #expect(refused.status == 409 && errorCode(refused) == 409, "\(refused.body)")
            #expect((refused.json["message"] as? String)?.contains("incompatible") == true)
            let check = try await h.call(.POST, "/compatibility/subjects/s/versions/latest?verbose=true", ["schema": Self.incompatible])
            #expect(check.status == 200 && check.json["is_compatible"] as? Bool == false)
            #expect((check.json["messages"] as? [String])?.first?.contains("id") == true)
            #expect(try await h.call(.POST, "/compatibility/subjects/s/versions/1", ["schema": Self.v2]).json["is_compatible"] as? Bool == true)

            #expect(try await h.get("/config").json["compatibilityLevel"] as? String == "BACKWARD")
            let none = try await h.call(.PUT, "/config/s", ["compatibility": "NONE"])
            #expect(none.status == 200 && none.json["compatibility"] as? String == "NONE")
            #expect(try await h.get("/config/s").json["compatibilityLevel"] as? String == "NONE")
            #expect(try await h.call(.POST, "/subjects/s/versions", ["schema": Self.incompatible]).status == 200, "NONE allows it")
            #expect(try await h.call(.DELETE, "/config/s").json["compatibilityLevel"] as? String == "NONE")
            #expect(errorCode(try await h.get("/config/s")) == 40408)
            #expect(try await h.get("/config/s?defaultToGlobal=true").json["compatibilityLevel"] as? String == "BACKWARD")
            #expect(try await h.call(.PUT, "/config", ["compatibility": "FULL_TRANSITIVE"]).json["compatibility"] as? String == "FULL_TRANSITIVE")
            let bad = try await h.call(.PUT, "/config", ["compatibility": "SIDEWAYS"])
            #expect(bad.status == 422 && errorCode(bad) == 42203)
        }
    }

    @Test func everyErrorCode() async throws {
        try await PushHarness.run([], registry: true) { h in
            _ = try await h.call(.POST, "/subjects/s/versions", ["schema": Self.v1])
            var r = try await h.get("/subjects/nope/versions")
            #expect(r.status == 404 && errorCode(r) == 40401)
            r = try await h.get("/subjects/nope/versions/1")
            #expect(r.status == 404 && errorCode(r) == 40401)
            r = try await h.get("/subjects/s/versions/7")
            #expect(r.status == 404 && errorCode(r) == 40402)
            r = try await h.get("/subjects/s/versions/zero")
            #expect(r.status == 422 && errorCode(r) == 42202)
            r = try await h.get("/schemas/ids/999")
            #expect(r.status == 404 && errorCode(r) == 40403)
            r = try await h.call(.POST, "/subjects/s", ["schema": Self.v2])
            #expect(r.status == 404 && errorCode(r) == 40403, "lookup of a schema not registered under the subject")
            r = try await h.call(.POST, "/subjects/nope", ["schema": Self.v1])
            #expect(r.status == 404 && errorCode(r) == 40401)
            for body in [["schema": "{not json"], ["schema": #"{"type":"record","name":"X"}"#], ["schema": Self.v1, "schemaType": "PROTOBUF"], ["nothing": 1]]
                as [[String: Any]]
            {
                r = try await h.call(.POST, "/subjects/s/versions", body)
                #expect(r.status == 422 && errorCode(r) == 42201, "\(body): \(r.body)")
            }
            r = try await h.call(.POST, "/subjects/s/versions", ["schema": Self.incompatible])
            #expect(r.status == 409 && errorCode(r) == 409)
        }
    }

    @Test func softAndPermanentDeletes() async throws {
        try await PushHarness.run([], registry: true) { h in
            let id1 = try await h.call(.POST, "/subjects/s/versions", ["schema": Self.v1]).json["id"] as? Int
            _ = try await h.call(.POST, "/subjects/s/versions", ["schema": Self.v2])
            var r = try await h.call(.DELETE, "/subjects/s/versions/2?permanent=true")
            #expect(r.status == 404 && errorCode(r) == 40407, "a version is soft-deleted before it is deleted for good")
            #expect(try await h.call(.DELETE, "/subjects/s/versions/2").body == "2")
            #expect(errorCode(try await h.get("/subjects/s/versions/2")) == 40402)
            #expect(errorCode(try await h.call(.DELETE, "/subjects/s/versions/2")) == 40406)
            #expect(try await h.call(.DELETE, "/subjects/s/versions/2?permanent=true").body == "2")
            r = try await h.call(.DELETE, "/subjects/s?permanent=true")
            #expect(r.status == 404 && errorCode(r) == 40405)
            #expect(try await h.call(.DELETE, "/subjects/s").body == "[1]")
            #expect(errorCode(try await h.get("/subjects/s/versions")) == 40401)
            #expect(try await h.get("/subjects").body == "[]")
            #expect(try await h.get("/subjects?deleted=true").body == "[\"s\"]")
            #expect(errorCode(try await h.call(.DELETE, "/subjects/s")) == 40404)
            #expect(try await h.get("/schemas/ids/\(id1!)").status == 200, "ids stay readable after a soft delete")
            #expect(try await h.call(.DELETE, "/subjects/s?permanent=true").body == "[1]")
            #expect(errorCode(try await h.call(.DELETE, "/subjects/s")) == 40401)
        }
    }

    @Test func clientBehavioursConfluentDocuments() async throws {
        try await PushHarness.run([], registry: true) { h in
            // Subjects are percent-decoded: `a/b:c` encoded by a client is the subject `a/b:c`.
            #expect(try await h.call(.POST, "/subjects/a%2Fb%3Ac/versions", ["schema": Self.v1]).status == 200)
            #expect(try await h.get("/subjects").body == #"["a/b:c"]"#)
            #expect(try await h.get("/subjects/a%2Fb%3Ac/versions/1").json["subject"] as? String == "a/b:c")
            // Anything is compatible with a subject that has no versions yet.
            let fresh = try await h.call(.POST, "/compatibility/subjects/new-subject/versions/latest", ["schema": Self.v1])
            #expect(fresh.status == 200 && fresh.json["is_compatible"] as? Bool == true)
            // Re-registering a soft-deleted schema makes a new version with the same id.
            let id = try await h.call(.POST, "/subjects/s/versions", ["schema": Self.v1]).json["id"] as? Int
            _ = try await h.call(.DELETE, "/subjects/s/versions/1")
            let again = try await h.call(.POST, "/subjects/s/versions", ["schema": Self.v1])
            #expect(again.json["id"] as? Int == id)
            #expect(try await h.get("/subjects/s/versions").body == "[2]")
            // Two schemas that differ only outside the compared subset are still two schemas.
            let decimal2 = #"{"type":"record","name":"P","fields":[{"name":"x","type":{"type":"bytes","logicalType":"decimal","precision":9,"scale":2}}]}"#
            let decimal4 = decimal2.replacingOccurrences(of: #""scale":2"#, with: #""scale":4"#)
            _ = try await h.call(.PUT, "/config/p", ["compatibility": "NONE"])
            let i2 = try await h.call(.POST, "/subjects/p/versions", ["schema": decimal2]).json["id"] as? Int
            let i4 = try await h.call(.POST, "/subjects/p/versions", ["schema": decimal4]).json["id"] as? Int
            #expect(i2 != nil && i4 != nil && i2 != i4)
        }
    }

    @Test func writesNeedAKeyWhenConfigured() async throws {
        var settings = PushServer.Settings()
        settings.registryRequiresKey = true
        try await PushHarness.run([], settings: settings, registry: true) { h in
            let r = try await h.call(.POST, "/subjects/s/versions", ["schema": Self.v1])
            #expect(r.status == 401 && errorCode(r) == 40101)
            let (key, stored) = APIKeyFormat.generate(name: "ci", streams: ["registry:write"])
            try await h.store.createAPIKey(stored)
            // Stream scopes never reach the registry: not a stream's key, not every stream's, not a stream named "registry".
            for streams in [["clicks"], ["*"], ["registry"]] {
                let (other, otherStored) = APIKeyFormat.generate(name: "streams", streams: streams)
                try await h.store.createAPIKey(otherStored)
                let refused = try await h.call(.POST, "/subjects/s/versions", ["schema": Self.v1], headers: [("Authorization", "Bearer \(other)")])
                #expect(refused.status == 403 && errorCode(refused) == 40301, "\(streams): \(refused.body)")
            }
            #expect(try await h.call(.POST, "/subjects/s/versions", ["schema": Self.v1], headers: [("Authorization", "Bearer \(key)")]).status == 200)
            #expect(try await h.get("/subjects").status == 200, "reads stay open")
            let basic = "Basic " + Data("ci:\(key)".utf8).base64EncodedString()
            #expect(
                try await h.call(.POST, "/subjects/t/versions", ["schema": Self.v1], headers: [("Authorization", basic)]).status == 200,
                "registry clients send the key as the Basic password")
            #expect(try await h.call(.POST, "/subjects/s", ["schema": Self.v1]).status == 200, "a lookup is a read")
            #expect(try await h.call(.POST, "/compatibility/subjects/s/versions/latest", ["schema": Self.v1]).status == 200)
            #expect(try await h.call(.PUT, "/config", ["compatibility": "NONE"]).status == 401)
            #expect(try await h.call(.DELETE, "/subjects/s").status == 401)
            #expect(try await h.call(.PUT, "/mode", ["mode": "READONLY"]).status == 401)
            #expect(try await h.call(.PUT, "/mode/s", ["mode": "READONLY"]).status == 401)
            #expect(try await h.get("/mode").status == 200, "reads stay open")
        }
    }

    @Test func schemaTypesAndModes() async throws {
        try await PushHarness.run([], registry: true) { h in
            #expect(try await h.get("/schemas/types").body == #"["AVRO","JSON","SLUICE"]"#)
            #expect(try await h.get("/mode").json["mode"] as? String == "READWRITE")
            let id = try await h.call(.POST, "/subjects/s/versions", ["schema": Self.v1]).json["id"] as? Int
            var r = try await h.get("/mode/s")
            #expect(r.status == 404 && errorCode(r) == 40409, "\(r.body)")
            #expect(try await h.get("/mode/s?defaultToGlobal=true").json["mode"] as? String == "READWRITE")

            r = try await h.call(.PUT, "/mode/s", ["mode": "READONLY"])
            #expect(r.status == 200 && r.json["mode"] as? String == "READONLY", "\(r.body)")
            #expect(try await h.get("/mode/s").json["mode"] as? String == "READONLY")
            r = try await h.call(.POST, "/subjects/s/versions", ["schema": Self.v2])
            #expect(r.status == 422 && errorCode(r) == 42205, "\(r.body)")
            #expect((r.json["message"] as? String)?.contains("read-only") == true)
            #expect(try await h.call(.POST, "/subjects/s/versions", ["schema": Self.v1]).json["id"] as? Int == id, "an existing schema is answered")
            #expect(errorCode(try await h.call(.DELETE, "/subjects/s/versions/1")) == 42205)
            #expect(errorCode(try await h.call(.DELETE, "/subjects/s")) == 42205)
            #expect(try await h.call(.POST, "/subjects/other/versions", ["schema": Self.v2]).status == 200, "other subjects stay writable")
            #expect(try await h.call(.DELETE, "/mode/s").json["mode"] as? String == "READONLY")
            #expect(errorCode(try await h.call(.DELETE, "/mode/s")) == 40409)
            #expect(try await h.call(.POST, "/subjects/s/versions", ["schema": Self.v2]).status == 200)

            #expect(try await h.call(.PUT, "/mode", ["mode": "readonly"]).json["mode"] as? String == "READONLY")
            #expect(errorCode(try await h.call(.POST, "/subjects/fresh/versions", ["schema": Self.v1])) == 42205)
            _ = try await h.call(.PUT, "/mode/fresh", ["mode": "READWRITE"])
            #expect(try await h.call(.POST, "/subjects/fresh/versions", ["schema": Self.v1]).status == 200, "a subject's mode overrides the global one")
            #expect(try await h.call(.PUT, "/mode", ["mode": "READWRITE"]).json["mode"] as? String == "READWRITE")

            r = try await h.call(.PUT, "/mode", ["mode": "IMPORT"])
            #expect(r.status == 422 && errorCode(r) == 42205 && (r.json["message"] as? String)?.contains("IMPORT") == true, "\(r.body)")
            r = try await h.call(.PUT, "/mode/s", ["mode": "SIDEWAYS"])
            #expect(r.status == 422 && errorCode(r) == 42204, "\(r.body)")
            #expect(errorCode(try await h.call(.PUT, "/mode", ["nothing": 1])) == 42204)
        }
    }

    @Test func schemaIDsListTheirVersionsAndRetireWhenNoVersionRefersToThem() async throws {
        try await PushHarness.run([], registry: true) { h in
            let id = try await h.call(.POST, "/subjects/a/versions", ["schema": Self.v1]).json["id"] as? Int ?? 0
            _ = try await h.call(.POST, "/subjects/b/versions", ["schema": Self.v1])
            _ = try await h.call(.POST, "/subjects/b/versions", ["schema": Self.v2])
            let pairs = try JSONSerialization.jsonObject(with: Data(try await h.get("/schemas/ids/\(id)/versions").body.utf8)) as? [[String: Any]] ?? []
            #expect(pairs.map { "\($0["subject"] ?? "")@\($0["version"] ?? "")" } == ["a@1", "b@1"])
            #expect(try await h.get("/schemas/ids/\(id)/subjects").body == #"["a","b"]"#)
            #expect(try await h.get("/schemas/ids/\(id)/subjects?subject=b").body == #"["b"]"#)
            #expect(try await h.get("/schemas/ids/\(id)/subjects?offset=1&limit=1").body == #"["b"]"#)
            #expect(try await h.get("/schemas/ids/\(id)/schema").body == Self.v1)
            #expect(errorCode(try await h.get("/schemas/ids/4242/versions")) == 40403)
            #expect(errorCode(try await h.get("/schemas/ids/x/subjects")) == 40403)

            // Soft-deleted versions still refer to the id; permanently deleted ones do not.
            _ = try await h.call(.DELETE, "/subjects/a")
            #expect(try await h.get("/schemas/ids/\(id)/subjects").body == #"["b"]"#)
            #expect(try await h.get("/schemas/ids/\(id)/subjects?deleted=true").body == #"["a","b"]"#)
            _ = try await h.call(.DELETE, "/subjects/a?permanent=true")
            _ = try await h.call(.DELETE, "/subjects/b/versions/1")
            #expect(try await h.get("/schemas/ids/\(id)").status == 200)
            _ = try await h.call(.DELETE, "/subjects/b/versions/1?permanent=true")
            var r = try await h.get("/schemas/ids/\(id)")
            #expect(r.status == 404 && errorCode(r) == 40403, "\(r.body)")
            r = try await h.get("/schemas/ids/\(id)/versions")
            #expect(r.status == 404 && errorCode(r) == 40403)
            #expect(errorCode(try await h.get("/schemas/ids/\(id)/schema")) == 40403)
            // Registered again, the schema is served again.
            #expect(try await h.call(.POST, "/subjects/c/versions", ["schema": Self.v1]).json["id"] as? Int == id)
            #expect(try await h.get("/schemas/ids/\(id)").status == 200)
        }
    }

    @Test func unknownRoutesAnswerAConfluentError() async throws {
        try await PushHarness.run([], registry: true) { h in
            for (method, path) in [(HTTPMethod.GET, "/contexts"), (.GET, "/subjects/s/versions/1/referencedby/x"), (.POST, "/schemas/types"), (.GET, "/")] {
                let r = try await h.call(method, path)
                #expect(r.status == 404 && errorCode(r) == 404, "\(method) \(path): \(r.status) \(r.body)")
                #expect(r.headers.first(name: "Content-Type") == "application/vnd.schemaregistry.v1+json")
                #expect((r.json["message"] as? String)?.contains(path) == true)
            }
            #expect(try await h.get("/healthz").status == 200, "real routes are untouched")
        }
    }
}
