import SluiceCore
import SluiceJetStream
import SluicePostgres

// The input is a configuration file: parsed, decoded and validated as `sluice run` loads it,
// with the components that need no network or files to build (PostgreSQL, JetStream, blackhole).
// Every failure must be a ConfigError. Mirrored by Tests/SluiceCoreTests/FuzzRegressionTests.swift.

let loader: ConfigLoader = {
    var registry = ComponentRegistry()
    registry.register(source: PostgresSource.factory)
    registry.register(source: PostgresCDCSource.factory)
    registry.register(source: JetStreamSource.factory)
    registry.register(sink: PostgresSink.factory)
    registry.register(sink: JetStreamSink.factory)
    registry.register(sink: BlackholeSink.factory)
    registry.register(state: PostgresStateStore.backend)
    return ConfigLoader(registry: registry, environment: ["PGURL": "postgres://fuzz@localhost/db", "EMPTY": ""], baseDirectory: "/fuzz")
}()

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzYAML(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let text = String(decoding: UnsafeBufferPointer(start: data, count: size), as: UTF8.self)
    do {
        _ = try loader.load(text: text, file: "fuzz.yaml")
    } catch is ConfigError {
    } catch {
        fatalError("ConfigLoader threw a \(type(of: error)): \(error)")
    }
    return 0
}
