import Foundation
import SluiceCore
@testable import SluiceJetStream
@testable import SluiceNATS
import SluiceTesting
import Testing

/// The `Sluice-Record-Ids` header of packed change events (``RecordIDs``) and how it is sent.
@Suite(.offCooperativePool) struct RecordIDsTests {
    /// Base64url of the hash's 16 bytes (high word first, big-endian), without padding, as
    /// Foundation writes it.
    func reference(_ h: DedupeHash) -> String {
        var bytes: [UInt8] = []
        for shift in stride(from: 56, through: 0, by: -8) { bytes.append(UInt8(truncatingIfNeeded: h.high >> UInt64(shift))) }
        for shift in stride(from: 56, through: 0, by: -8) { bytes.append(UInt8(truncatingIfNeeded: h.low >> UInt64(shift))) }
        return Data(bytes).base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }

    @Test func tokensAreBase64urlOfTheHashAndParseBack() throws {
        var generator = SystemRandomNumberGenerator()
        let hashes =
            [DedupeHash(high: 0, low: 0), DedupeHash(high: .max, low: .max), DedupeHash(high: 1, low: 1 << 63)]
            + (0..<200).map { _ in DedupeHash(high: generator.next(), low: generator.next()) }
        let value = RecordIDs.encode(hashes)
        #expect(value == hashes.map(reference).joined(separator: " "))
        #expect(value.split(separator: " ").allSatisfy { $0.count == 22 })
        #expect(RecordIDs.parse(value) == hashes)
        #expect(RecordIDs.parse("") == [])
        #expect(RecordIDs.parse("abc") == nil, "a token of the wrong length")
        #expect(RecordIDs.parse(String(repeating: "A", count: 21) + "=") == nil, "a character outside base64url")
        #expect(RecordIDs.parse(String(repeating: "A", count: 21) + "B") == nil, "bits past the 128th set")
    }

    @Test func aRecordIDHashesTheSameOnEveryRunAndMachine() {
        // The seed is fixed: a replay after a crash must find the tokens the first run wrote.
        // (SipHash-2-4-128 under the seed, the first output word high: computed again in Python.)
        #expect(RecordIDs.hash("capture:0/16B3748:12") != RecordIDs.hash("capture:0/16B3748:13"))
        #expect(RecordIDs.encode([RecordIDs.hash("capture:0/16B3748:12")]) == "QV1GFqc37OiZ5H8o9iUQrA")
    }

    @Test func aPackedMessageIsNamedByItsFirstChangeAndAllItsTokens() {
        let a = Array(RecordIDs.encode([RecordIDs.hash("p:0/1:0"), RecordIDs.hash("p:0/1:1")]).utf8)
        let b = Array(RecordIDs.encode([RecordIDs.hash("p:0/1:0"), RecordIDs.hash("p:0/1:1"), RecordIDs.hash("p:0/1:2")]).utf8)
        let id = RecordIDs.messageID(first: "p:0/1:0", tokens: a)
        #expect(id.hasPrefix("p:0/1:0#") && id == RecordIDs.messageID(first: "p:0/1:0", tokens: a), "the same message is named the same on a resend")
        #expect(id != RecordIDs.messageID(first: "p:0/1:0", tokens: b), "a replay packing more behind the same first change is another message")
    }

    @Test func headersAreFoundByNameWhateverTheirCase() {
        let headers = Data("NATS/1.0\r\nNats-Msg-Id: p:0/1:0\r\nsluice-record-ids: AAAAAAAAAAAAAAAAAAAAAA\r\n\r\n".utf8)
        #expect(RecordIDs.field("Nats-Msg-Id", in: headers) == "p:0/1:0")
        #expect(RecordIDs.field(RecordIDs.header, in: headers) == "AAAAAAAAAAAAAAAAAAAAAA")
        #expect(RecordIDs.field("Sluice-Records", in: headers) == nil)
    }

    @Test func aPackedMessageCarriesItsIdsInAHeaderOfTheRightLength() throws {
        var out: [UInt8] = []
        let ids = Array(RecordIDs.encode([DedupeHash(high: 1, low: 2), DedupeHash(high: 3, low: 4)]).utf8)
        JetStreamPublisher.encode(
            subject: "cdc.t", reply: "_INBOX.x", n: 7, messageID: "p:0/1:0", records: 2, recordIDs: ids, payload: Array("{}\n{}\n".utf8),
            into: &out)
        let text = String(decoding: out, as: UTF8.self)
        let lines = text.split(separator: "\r\n", omittingEmptySubsequences: false)
        let control = lines[0].split(separator: " ")
        #expect(control.prefix(3) == ["HPUB", "cdc.t", "_INBOX.x.7"])
        let headerLength = try #require(Int(control[3])), total = try #require(Int(control[4]))
        let body = Array(out[(lines[0].utf8.count + 2)...])
        #expect(body.count == total + 2, "the payload ends in CRLF")
        let headers = String(decoding: body[..<headerLength], as: UTF8.self)
        #expect(headers == "NATS/1.0\r\nNats-Msg-Id: p:0/1:0\r\nSluice-Records: 2\r\nSluice-Record-Ids: \(String(decoding: ids, as: UTF8.self))\r\n\r\n")
        #expect(String(decoding: body[headerLength..<total], as: UTF8.self) == "{}\n{}\n")
    }
}
