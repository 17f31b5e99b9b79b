import Foundation
import Testing
import SluiceTesting

/// The schema registry of `sluice serve` driven by a real registry client: confluent-kafka's
/// Python `SchemaRegistryClient` and its JSON Schema serializers, against the real binary serving
/// a file with only a `serve:` section (the registry alone), with registry writes behind a key.
@Suite(.offCooperativePool, .serialized) struct RegistryClientTests {
    static let config = """
        state: state.db
        serve:
          registry_auth: api_key
        """

    /// Fails, never skips, without the client: scripts/setup.sh installs it.
    @Test func confluentClientRegistersServesModesAndRetiresSchemas() async throws {
        let hasClient = (try? Self.python(["-c", "from confluent_kafka.schema_registry import SchemaRegistryClient"], in: "/tmp").status) == 0
        try #require(hasClient, "python3 lacks confluent-kafka[schemaregistry]: run the tests through scripts/test.sh (scripts/setup.sh installs it)")
        let dir = try makeWorkDirectory("registry-client")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try write(Self.config, to: "\(dir)/r.yaml")
        try write(Self.script, to: "\(dir)/client.py")

        // Keys come from the `serve:`-only file's state; each has explicit scopes.
        let writer = try await SluiceProcess.runWithoutBlocking(["keys", "create", "--name", "schema-ci", "--registry", "write", "-c", "r.yaml"], in: dir)
        #expect(writer.status == 0, "\(writer.stderr)")
        #expect(writer.stderr.contains("registry write"), "\(writer.stderr)")
        let streams = try await SluiceProcess.runWithoutBlocking(["keys", "create", "--name", "ingest", "--all-streams", "-c", "r.yaml"], in: dir)
        #expect(streams.status == 0, "\(streams.stderr)")

        let port = try freePort()
        let server = try await ServedProcess.start("r.yaml", in: dir, port: port)
        let run = try await offPool {
            try Self.python(
                [
                    "client.py", "http://127.0.0.1:\(port)", writer.stdout.trimmingCharacters(in: .whitespacesAndNewlines),
                    streams.stdout.trimmingCharacters(in: .whitespacesAndNewlines),
                ], in: dir)
        }
        #expect(run.status == 0 && run.stdout.contains("all checks passed"), "stdout: \(run.stdout)\nstderr: \(run.stderr)")
        #expect(server.stop() == 0)
    }

    /// Runs python3 to completion (blocking: call it through ``offPool(_:)``).
    static func python(_ arguments: [String], in directory: String) throws -> SluiceProcess.Result {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = ["-C", directory, "python3"] + arguments
        return try SluiceProcess.collect(p)
    }

    static let script = #"""
        import json, sys, urllib.request, urllib.error
        from confluent_kafka.schema_registry import SchemaRegistryClient, Schema
        from confluent_kafka.schema_registry.error import SchemaRegistryError
        from confluent_kafka.schema_registry.json_schema import JSONSerializer, JSONDeserializer
        from confluent_kafka.serialization import SerializationContext, MessageField

        url, writer_key, stream_key = sys.argv[1], sys.argv[2], sys.argv[3]
        client = SchemaRegistryClient({"url": url, "basic.auth.user.info": "schema-ci:" + writer_key})

        def fresh():
            # No cache: every call reaches the server. Reads need no key.
            return SchemaRegistryClient({"url": url})

        def expect_error(code, status, fn, *args):
            try:
                fn(*args)
            except SchemaRegistryError as e:
                assert e.error_code == code and e.http_status_code == status, (code, status, e.error_code, e.http_status_code, e.error_message)
                return e
            raise AssertionError("expected error %d from %s%r" % (code, fn.__name__, args))

        # Item 8: the endpoints the client calls.
        types = client.get_schema_types()
        assert "JSON" in types and "AVRO" in types, types

        order = json.dumps({"$schema": "http://json-schema.org/draft-07/schema#", "title": "Order", "type": "object",
                            "properties": {"id": {"type": "integer"}, "note": {"type": "string"}}, "required": ["id"]})
        ctx = SerializationContext("orders", MessageField.VALUE)
        serialize = JSONSerializer(order, client)  # registers orders-value on first use
        data = serialize({"id": 7, "note": "hi"}, ctx)
        assert data[0] == 0, data
        schema_id = int.from_bytes(data[1:5], "big")
        deserialize = JSONDeserializer(None, schema_registry_client=fresh())  # the writer schema, fetched by id
        assert deserialize(data, ctx) == {"id": 7, "note": "hi"}

        avro = json.dumps({"type": "record", "name": "Click", "fields": [{"name": "url", "type": "string"}]})
        avro_id = client.register_schema("clicks-value", Schema(avro, "AVRO"))
        assert fresh().get_latest_version("clicks-value").schema_id == avro_id

        assert [(v.subject, v.version) for v in client.get_schema_versions(schema_id)] == [("orders-value", 1)]
        assert client.get_subjects_by_schema_id(schema_id) == ["orders-value"]
        expect_error(40403, 404, client.get_schema_versions, 999999)

        assert client.get_global_mode() == "READWRITE"
        expect_error(40409, 404, client.get_mode, "orders-value")
        assert client.update_mode("orders-value", "READONLY") == "READONLY"
        assert client.get_mode("orders-value") == "READONLY"
        wider = Schema(json.dumps({"type": "object", "properties": {"id": {"type": "integer"}}, "required": ["id"],
                                   "additionalProperties": False}), "JSON")
        expect_error(42205, 422, client.register_schema, "orders-value", wider)
        expect_error(42205, 422, client.delete_subject, "orders-value")
        # The schema already registered is still answered (a serializer keeps working; nothing changes).
        assert fresh().lookup_schema("orders-value", Schema(order, "JSON")).schema_id == schema_id
        assert client.delete_mode("orders-value") == "READONLY"
        assert client.update_global_mode("READONLY") == "READONLY"
        expect_error(42205, 422, client.register_schema, "new-subject", wider)
        assert client.update_global_mode("READWRITE") == "READWRITE"
        expect_error(42205, 422, client.update_global_mode, "IMPORT")
        expect_error(42204, 422, client.update_global_mode, "SIDEWAYS")

        # Item 10: writes need a key with the registry scope; a key for every stream is not one.
        expect_error(40101, 401, fresh().register_schema, "orders-value", wider)
        streams_only = SchemaRegistryClient({"url": url, "basic.auth.user.info": "ingest:" + stream_key})
        expect_error(40301, 403, streams_only.register_schema, "orders-value", wider)

        # Item 9: an id is served while a version (even soft-deleted) refers to it, then 40403.
        assert client.delete_subject("orders-value") == [1]
        assert fresh().get_schema(schema_id).schema_str == order
        assert client.get_schema_versions(schema_id) == []
        assert [(v.subject, v.version) for v in client.get_schema_versions(schema_id, deleted=True)] == [("orders-value", 1)]
        assert client.delete_subject("orders-value", permanent=True) == [1]
        expect_error(40403, 404, fresh().get_schema, schema_id)
        expect_error(40403, 404, client.get_schema_versions, schema_id)
        expect_error(40403, 404, client.get_subjects_by_schema_id, schema_id)
        assert fresh().get_schema(avro_id).schema_str == avro

        # Unknown routes answer a Confluent-style JSON error, not an empty body.
        try:
            urllib.request.urlopen(url + "/no/such/route")
            raise AssertionError("an unknown route answered 2xx")
        except urllib.error.HTTPError as e:
            body = json.loads(e.read())
            assert e.code == 404 and body["error_code"] == 404 and body["message"], (e.code, body)

        print("all checks passed")
        """#
}
