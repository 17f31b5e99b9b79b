@testable import SluiceCore
@testable import SluiceJetStream
import Testing
import SluiceTesting

/// How the JetStream sink numbers records and cuts them into messages (``PositionalMessageIDs``).
@Suite(.offCooperativePool) struct MessageGroupingTests {
    func line(_ n: Int) -> ArraySlice<UInt8> { ArraySlice("{\"n\":\(n)}".utf8) }

    @Test func groupsCloseAtTheirSizeASubjectChangeAndAGap() {
        var g = RecordGrouper(maxRecords: 3, maxBytes: 1 << 20)
        var closed: [RecordGroup] = []
        for n in 0..<4 { if let c = g.add(line(n), subject: "a", ordinal: n) { closed.append(c) } }
        if let c = g.add(line(4), subject: "b", ordinal: 4) { closed.append(c) }  // subject change
        if let c = g.add(line(6), subject: "b", ordinal: 6) { closed.append(c) }  // 5 was not sent
        if let c = g.open { closed.append(c) }  // what a commit publishes
        #expect(closed.map { [$0.subject, "\($0.first)", "\($0.count)"] } == [["a", "0", "3"], ["a", "3", "1"], ["b", "4", "1"], ["b", "6", "1"]])
        #expect(String(decoding: closed[0].payload, as: UTF8.self) == "{\"n\":0}\n{\"n\":1}\n{\"n\":2}\n")
    }

    @Test func groupsCloseBeforeTheyPassTheirByteLimit() {
        var g = RecordGrouper(maxRecords: 100, maxBytes: 16)  // two 8-byte lines (with newlines) fit
        #expect(g.add(line(1), subject: "a", ordinal: 0) == nil)
        #expect(g.add(line(2), subject: "a", ordinal: 1) == nil)
        #expect(g.add(line(3), subject: "a", ordinal: 2)?.count == 2)
    }

    @Test func theIdsOfPackedChangeEventsCountAgainstTheByteLimit() {
        // Two 8-byte lines and their two 23-byte tokens fit in 62 bytes; a third does not.
        var g = SubjectGrouper(maxRecords: 100, maxBytes: 62, overheadPerRecord: 23)
        let id = { (n: Int) in (bytes: Array("p:0/1:\(n)".utf8), hash: RecordIDs.hash("p:0/1:\(n)")) }
        var closed: [RecordGroup] = []
        g.add(line(1), subject: "a", id: id(0), closed: &closed)
        g.add(line(2), subject: "a", id: id(1), closed: &closed)
        #expect(closed.isEmpty)
        g.add(line(3), subject: "a", id: id(2), closed: &closed)
        #expect(closed.count == 1 && closed[0].count == 2 && closed[0].firstID == "p:0/1:0" && closed[0].ids == [id(0).hash, id(1).hash])
        #expect(g.open["a"]?.firstID == "p:0/1:2")
    }

    @Test func changeEventsArePackedPerSubjectWhateverTheirInterleaving() {
        var g = SubjectGrouper(maxRecords: 3, maxBytes: 1 << 20, overheadPerRecord: 23)
        var closed: [RecordGroup] = []
        let id = { (n: Int) in (bytes: Array("p:0/1:\(n)".utf8), hash: RecordIDs.hash("p:0/1:\(n)")) }
        for n in 0..<8 { g.add(line(n), subject: n % 2 == 0 ? "cdc.t.0" : "cdc.t.1", id: id(n), closed: &closed) }
        // The fourth record of a subject closes its first group of three.
        #expect(closed.map(\.subject) == ["cdc.t.0", "cdc.t.1"])
        #expect(closed[0].ids == [0, 2, 4].map { id($0).hash } && closed[0].firstID == "p:0/1:0")
        #expect(String(decoding: closed[1].payload, as: UTF8.self) == "{\"n\":1}\n{\"n\":3}\n{\"n\":5}\n")
        let rest = g.takeAll()
        #expect(rest.map(\.subject) == ["cdc.t.0", "cdc.t.1"] && rest.map(\.firstID) == ["p:0/1:6", "p:0/1:7"])
        #expect(g.open.isEmpty)

        // Together the open groups stay under their bound: past it, all close.
        var small = SubjectGrouper(maxRecords: 100, maxBytes: 1 << 20, overheadPerRecord: 23)
        small.maxOpenBytes = 100  // three records of 8 + 1 + 23 bytes fit, a fourth does not
        closed = []
        for n in 0..<4 { small.add(line(n), subject: "s\(n)", id: id(n), closed: &closed) }
        #expect(closed.map(\.subject) == ["s0", "s1", "s2"] && small.open.keys.sorted() == ["s3"])
    }

    @Test func droppingStoredRecordsKeepsTheRest() {
        var group = RecordGroup(subject: "a", first: 10)
        for n in 0..<4 { group.append(line(n)) }
        group.dropFirst(3)
        #expect(group.first == 13 && group.count == 1 && String(decoding: group.payload, as: UTF8.self) == "{\"n\":3}\n")
        group.dropFirst(-2)
        #expect(group.count == 1)
        group.dropFirst(5)
        #expect(group.count == 0 && group.payload.isEmpty && group.first == 14)
    }

    @Test func theNumberingIsStoredWithTheCheckpointAndOtherwiseNamedAfterIt() {
        let partition = PositionalMessageIDs.partition(stream: "EVENTS")
        #expect(partition.hasPrefix(Checkpoint.sinkPartitionPrefix))
        let fresh = PositionalMessageIDs(checkpoint: Checkpoint(["data/in.ndjson": "{\"offset\":10}"]), stream: "EVENTS")
        #expect(fresh.next == 0 && fresh.skipThrough == 0)
        // The checkpoint's own partitions name a new lineage; the sink's are left out of the hash.
        let same = PositionalMessageIDs(checkpoint: Checkpoint(["data/in.ndjson": "{\"offset\":10}", "sink:other": "x"]), stream: "EVENTS")
        #expect(same.lineage == fresh.lineage)
        let stored = PositionalMessageIDs(checkpoint: Checkpoint(["data/in.ndjson": "{\"offset\":99}", partition: "abc:1200:1250"]), stream: "EVENTS")
        #expect(stored == PositionalMessageIDs(lineage: "abc", next: 1200, skipThrough: 1250))
        #expect(PositionalMessageIDs(stored.checkpointValue) == stored)
        #expect(PositionalMessageIDs("abc:x:1") == nil && PositionalMessageIDs("abc:1") == nil)
        #expect(Checkpoint(["a": "1", partition: "abc:1:1"]).sourcePartitions == ["a": "1"])
    }

    /// A snapshot read of log-based CDC is named by its snapshot's epoch, table and key, which a
    /// read after a crash repeats whatever chunk and LSN it lands in; other rows keep theirs.
    @Test func snapshotReadsAreNamedByEpochTableAndKey() throws {
        let schema = Schema([Field("op", .string), Field("table", .string), Field("key", .json), Field("source", .json)])
        var b = schema.fields.map { ColumnBuilder(type: $0.type, capacity: 3) }
        for (op, key, source) in [
            ("r", #"{"id":1}"#, #"{"table":"t","snapshot_epoch":"0/10","lsn":"0/40"}"#),
            ("c", #"{"id":2}"#, #"{"table":"t","lsn":"0/40"}"#),
            ("r", #"{"id":3}"#, #"{"table":"t","lsn":"0/40"}"#),
        ] {
            b[0].append(string: op)
            b[1].append(string: "s.t")
            b[2].appendBytes(Array(key.utf8))
            b[3].appendBytes(Array(source.utf8))
        }
        let batch = RecordBatch(schema: schema, columns: b.indices.map { b[$0].finish() })
        let ids = try #require(ChangeEventIDs.snapshotReads(batch, pipeline: "p"))
        // SHA-256 of "s.t", NUL, {"id":1}, as `printf 's.t\0{"id":1}' | sha256sum` prints it.
        #expect(ids(0) == "p:r:0/10:522b3c0929075ea3b12d87ccf49e3bbcedc062c5e2288b808fcca31e6c6bd28d")
        #expect(ids(1) == nil && ids(2) == nil, "a change, and a snapshot read without an epoch, keep their LSN and index")
        var empty = ColumnBuilder(type: .int64, capacity: 0)
        let plain = RecordBatch(schema: Schema([Field("n", .int64)]), columns: [empty.finish()])
        #expect(ChangeEventIDs.snapshotReads(plain, pipeline: "p") == nil)
    }
}
