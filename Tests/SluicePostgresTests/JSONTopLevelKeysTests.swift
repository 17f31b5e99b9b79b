import Foundation
import Testing

@testable import SluicePostgres

/// The client-side reader of a row image's columns, against Foundation's JSON parser.
@Suite struct JSONTopLevelKeysTests {
    func keys(_ text: String) -> Set<String>? {
        var found = Set<String>()
        let ok = Array(text.utf8).withUnsafeBufferPointer { JSONTopLevelKeys.keys($0, into: &found) }
        return ok ? found : nil
    }

    @Test func readsTheKeysOfTheTopLevelOnly() throws {
        let texts = [
            #"{}"#, #"{"a":1}"#, #" { "a" : 1 , "b" : "x,}" } "#,
            #"{"id":1,"v":"say \"hi\" {not a key}","n":12.50,"at":"2026-12-06 10:00:00+00","j":{"x":{"y":[1,{"z":"]"}]}},"arr":[[],{},"}"],"t":true,"f":false,"nul":null}"#,
            #"{"é":1,"emoji 🙂":2,"backslash value":"\\\\"}"#,
            "{\"a\":\n[1,\n2],\r\n\t\"b\":-1e-5}",
        ]
        for text in texts {
            let expected = Set((try JSONSerialization.jsonObject(with: Data(text.utf8), options: [.fragmentsAllowed]) as! [String: Any]).keys)
            #expect(keys(text) == expected, "\(text)")
        }
    }

    @Test func refusesWhatItDoesNotReadPlainly() {
        for text in [#"[1,2]"#, #""a""#, #"{"a":1"#, #"{"a" 1}"#, #"{"a\"b":1}"#, #"{"back\\slash":1}"#, #"{"a":{"b":1}"#, #"{"a":"x}"#, ""] {
            #expect(keys(text) == nil, "\(text)")
        }
    }
}
