import SluiceCore
import SluiceTesting
import Testing

@Suite struct ConfigDecodingTests {
    var registry: ComponentRegistry {
        var r = ComponentRegistry()
        r.register(source: MemorySource.factory)
        r.register(sink: SinkFactory(spec: ComponentSpec(type: "memory", summary: "", options: [], example: "")) { _, _ in MemorySink() })
        return r
    }

    func load(_ yaml: String, env: [String: String] = [:]) throws -> LoadedConfig {
        try ConfigLoader(registry: registry, environment: env, baseDirectory: "/base").load(text: yaml, file: "p.yaml")
    }

    func error(_ yaml: String, env: [String: String] = [:]) -> ConfigError? {
        do {
            _ = try load(yaml, env: env)
            return nil
        } catch let e as ConfigError {
            return e
        } catch {
            Issue.record("unexpected error \(error)")
            return nil
        }
    }

    @Test func validFileLoadsWithDefaults() throws {
        let c = try load(
            """
            pipelines:
              a:
                source: { memory: { rows: 5 } }
                sink: { memory: {} }
                dedupe: { key: [id], ttl: 2h }
                retry: { max_attempts: 3, base_delay: 250ms, max_delay: 10s }
                batch: { max_rows: 100, max_bytes: 1MB, max_latency: 2s }
            """)
        #expect(c.state == "/base/.sluice/state.db")
        let p = try #require(c.pipeline(named: "a"))
        #expect(p.settings.dedupe?.key == ["id"])
        #expect(p.settings.dedupe?.ttl == .seconds(7200))
        #expect(p.settings.retry.maxAttempts == 3)
        #expect(p.settings.retry.baseDelay == .milliseconds(250))
        #expect(p.settings.batch.maxBytes == 1 << 20)
    }

    @Test func schemaCheckingCanBeTurnedOff() throws {
        let c = try load(
            """
            pipelines:
              a: { source: { memory: { rows: 5 } }, sink: { memory: {} }, schema: { on_change: ignore } }
              b: { source: { memory: { rows: 5 } }, sink: { memory: {} } }
              c: { source: { memory: { rows: 5 } }, sink: { memory: {} }, schema: { on_change: freeze } }
            """)
        #expect(c.pipeline(named: "a")?.settings.schemaDetection == false && c.pipeline(named: "a")?.settings.schema == nil)
        #expect(c.pipeline(named: "b")?.settings.schemaDetection == true && c.pipeline(named: "b")?.settings.schema == nil)
        #expect(c.pipeline(named: "c")?.settings.schema?.policy == .freeze)
        #expect(error("pipelines: { a: { source: { memory: {} }, sink: { memory: {} }, schema: { on_change: nope } } }")?.message.contains("ignore") == true)
    }

    @Test func misspelledKeyNamesLineAndSuggests() throws {
        let e = try #require(
            error(
                """
                pipelines:
                  a:
                    source: { memory: {} }
                    sink: { memory: {} }
                    retry:
                      max_atempts: 3
                """))
        #expect(e.file == "p.yaml")
        #expect(e.line == 6)
        #expect(e.keyPath == "pipelines.a.retry.max_atempts")
        #expect(e.message.contains("did you mean 'max_attempts'"))
    }

    @Test func wrongTypeNamesLineAndKey() throws {
        let e = try #require(
            error(
                """
                pipelines:
                  a:
                    source: { memory: {} }
                    sink: { memory: {} }
                    batch: { max_rows: lots }
                """))
        #expect(e.line == 5)
        #expect(e.keyPath == "pipelines.a.batch.max_rows")
        #expect(e.message.contains("expected an integer"))
    }

    @Test func unknownKeyInsideComponentOptions() throws {
        let e = try #require(
            error(
                """
                pipelines:
                  a:
                    source:
                      memory:
                        rows: 3
                        rowz: 4
                    sink: { memory: {} }
                """))
        #expect(e.line == 6)
        #expect(e.keyPath == "pipelines.a.source.memory.rowz")
    }

    @Test func unknownComponentTypeSuggests() throws {
        let e = try #require(
            error(
                """
                pipelines:
                  a:
                    source: { memroy: {} }
                    sink: { memory: {} }
                """))
        #expect(e.line == 3)
        #expect(e.message.contains("did you mean 'memory'"))
    }

    @Test func missingRequiredKey() throws {
        let e = try #require(
            error(
                """
                pipelines:
                  a:
                    source: { memory: {} }
                """))
        #expect(e.message.contains("missing required key 'sink'"))
        #expect(e.line == 3)
    }

    @Test func badDurationAndRange() throws {
        let d = try #require(
            error(
                """
                pipelines:
                  a:
                    source: { memory: {} }
                    sink: { memory: {} }
                    retry: { base_delay: soon }
                """))
        #expect(d.line == 5)
        #expect(d.message.contains("duration"))
        let r = try #require(
            error(
                """
                pipelines:
                  a:
                    source: { memory: {} }
                    sink: { memory: {} }
                    retry: { max_attempts: 0 }
                """))
        #expect(r.keyPath == "pipelines.a.retry.max_attempts")
        #expect(r.message.contains("between 1 and"))
    }

    @Test func environmentSubstitution() throws {
        let c = try load(
            """
            state: ${STATE_DIR}/s.db
            pipelines:
              a:
                source: { memory: { rows: "${ROWS:-7}" } }
                sink: { memory: {} }
            """, env: ["STATE_DIR": "/var/x"])
        #expect(c.state == "/var/x/s.db")
        let e = try #require(
            error(
                """
                state: ${MISSING_SECRET}
                pipelines:
                  a: { source: { memory: {} }, sink: { memory: {} } }
                """))
        #expect(e.message.contains("MISSING_SECRET"))
        #expect(e.line == 1)
    }

    @Test func substitutedSecretsAreNeverShownInErrors() throws {
        let e = try #require(
            error(
                """
                pipelines:
                  a:
                    source: { memory: { rows: "${TOKEN}" } }
                    sink: { memory: {} }
                """, env: ["TOKEN": "s3cr3t-value"]))
        #expect(!e.description.contains("s3cr3t-value"), "\(e)")
        #expect(e.description.contains("${TOKEN}"))
    }

    @Test func emptyVariablesTakeTheDefaultAndDollarEscapes() throws {
        let c = try load(
            """
            state: "${EMPTY:-/d}/$${literal}"
            pipelines:
              a: { source: { memory: {} }, sink: { memory: {} } }
            """, env: ["EMPTY": ""])
        #expect(c.state == "/d/${literal}")
    }

    @Test func syntaxErrorHasLine() throws {
        let e = try #require(
            error(
                """
                pipelines:
                  a:
                    source: { memory: { rows: [1, 2 }
                """))
        #expect(e.line != nil)
        #expect(e.message.contains("YAML syntax"))
    }

    @Test func durationsAndSizes() {
        #expect(ConfigDuration.parse("250ms") == .milliseconds(250))
        #expect(ConfigDuration.parse("1h30m") == .seconds(5400))
        #expect(ConfigDuration.parse("7d") == .seconds(604_800))
        #expect(ConfigDuration.parse("5 parsecs") == nil)
        #expect(ConfigByteSize.parse("64MB") == 64 << 20)
        #expect(ConfigByteSize.parse("1.5KB") == 1536)
        #expect(ConfigByteSize.parse("12XB") == nil)
        // Exact or refused: nothing rounded, nothing that overflows (a fuzzer found the trap).
        #expect(ConfigDuration.parse("1.1s") == .milliseconds(1100))
        #expect(ConfigDuration.parse("0.5ms") == nil)
        #expect(ConfigDuration.parse("44444444444444444444444444416w") == nil)
        #expect(ConfigDuration.parse("1.2.3s") == nil)
        #expect(ConfigByteSize.parse("0.1KB") == nil)
        #expect(ConfigByteSize.parse("1.5B") == nil)
        #expect(ConfigByteSize.parse("44444444444444444444444444416MB") == nil)
        #expect(ConfigByteSize.parse("8GB") == 8 << 30)
        #expect(ConfigByteSize.parse(".") == nil)
    }

    @Test func pipelinesKeepFileOrder() throws {
        let c = try load(
            """
            pipelines:
              zeta: { source: { memory: {} }, sink: { memory: {} } }
              alpha: { source: { memory: {} }, sink: { memory: {} } }
            """)
        #expect(c.pipelines.map(\.name) == ["zeta", "alpha"])
    }
}
