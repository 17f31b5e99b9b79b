import Foundation
import SluiceTesting
import Testing

/// `sluice run` pulling from the test API (`scripts/test_api_server.py`), killed at random moments.
@Suite(.offCooperativePool) struct HTTPAPIPullTests {
    /// The integer `field` of every output record.
    func ids(_ dir: String, field: String = "id") throws -> [Int] {
        try outputLines("\(dir)/out").map { line in
            let object = try JSONSerialization.jsonObject(with: Data(line.utf8)) as! [String: Any]
            return object[field] as! Int
        }
    }

    /// Runs `p.yaml` in `dir` under `kill -9` until `kills` kills landed, then to the end;
    /// returns the values of `field` in the output.
    func pullUnderKills(_ dir: String, kills wanted: Int, field: String = "id") async throws -> [Int] {
        var finished = false
        let kills = try await killRepeatedly(in: dir, kills: wanted, delays: 400...2500, maxRuns: 80) {
            finished = true
            return false
        }
        if !finished {
            let final = try await SluiceProcess.runWithoutBlocking(["run", "p.yaml", "--no-progress"], in: dir)
            #expect(final.status == 0, "\(final.stderr)")
        }
        #expect(kills >= wanted, "the pull finished before \(wanted) kills could land")
        return try await offPool { try ids(dir, field: field) }
    }

    @Test func killNineDuringA300PagePullLosesAndRepeatsNothing() async throws {
        // 300 pages of 10, one after the other (each page's link names the next), 100 ms each: a
        // pass takes at least 30 s, and 10 runs killed after at most 2.5 s each make at most 25 s of
        // it. (At 50 ms a loaded CI run finished the pull after 9 kills.)
        let server = try TestAPIServer.start(["--items", "3000", "--latency-ms", "100"])
        defer { server.stop() }
        let dir = try makeWorkDirectory("httpapi-kill")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try write(
            """
            pipelines:
              api:
                source:
                  http_api:
                    url: "\(server.url)/link/items?per_page=10"
                    pagination: { link_header: next }
                sink: { ndjson: { path: out, max_file_age: 200ms } }    # a commit every 200 ms: kills land between commits
            """, to: "\(dir)/p.yaml")
        // No dedupe key: exactness rests on the page checkpoints and the commit protocol alone.
        let read = try await pullUnderKills(dir, kills: 10)
        #expect(read.count == 3000 && Set(read) == Set(1...3000), "\(read.count) records, \(Set(read).count) distinct")
    }

    @Test func killNineDuringAFanOutLosesAndRepeatsNoChild() async throws {
        // 600 parents with id % 4 orders each, one a page, 100 ms a page, 4 parents at a time: 1,050
        // child pages take at least 26 s, more than 8 runs killed after at most 2.5 s each. Commits
        // mostly land between batches of parents (their pages come at once); resuming mid-parent
        // is checked by fanOutReadsEveryParentsChildrenOnceInParentOrderAndResumesMidParent.
        let server = try TestAPIServer.start(["--items", "600", "--latency-ms", "100"])
        defer { server.stop() }
        let dir = try makeWorkDirectory("httpapi-fan-kill")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try write(
            """
            pipelines:
              api:
                source:
                  http_api:
                    url: "\(server.url)/page/items"
                    records: items
                    pagination: { page: { size_param: size, size: 50 } }
                    fan_out: { url: "/children/{id}/orders?size=1", records: data, pagination: { link_header: next }, parallel: 4 }
                sink: { ndjson: { path: out, max_file_age: 200ms } }
            """, to: "\(dir)/p.yaml")
        let orders = try await pullUnderKills(dir, kills: 8, field: "order_id")
        let expected = (1...600).flatMap { i in (0..<(i % 4)).map { i * 100 + $0 } }
        #expect(
            orders.count == expected.count && Set(orders) == Set(expected), "\(orders.count) orders, \(Set(orders).count) distinct, \(expected.count) expected")
    }

    @Test func adaptivePollingPicksUpNewRecordsOnceUntilStopped() async throws {
        let server = try TestAPIServer.start()
        defer { server.stop() }
        let dir = try makeWorkDirectory("httpapi-poll")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try write(
            """
            pipelines:
              api:
                source:
                  http_api:
                    url: "\(server.url)/feed"
                    records: data
                    pagination: { offset: { limit_param: limit, limit: 2 } }
                    incremental: { field: seq, param: after }
                    poll: { min: 100ms, max: 1s }
                sink: { ndjson: { path: out, max_file_age: 200ms } }
            """, to: "\(dir)/p.yaml")
        try await offPool { try server.control("/_control/append", ["ids": [1, 2, 3, 4, 5]]) }
        let p = try SluiceProcess.start(["run", "p.yaml", "--no-progress"], in: dir, log: "\(dir)/log")
        defer { if p.isRunning { kill(p.processIdentifier, SIGKILL) } }
        // Conditions, not sleeps: the first records land, then the ones added while it polls.
        #expect(try await waitUntil(seconds: 60) { try ids(dir).sorted() == [1, 2, 3, 4, 5] }, "the first records did not arrive")
        try await offPool { try server.control("/_control/append", ["ids": [6, 7, 8]]) }
        #expect(try await waitUntil(seconds: 60) { try ids(dir).count >= 8 }, "the new records were not picked up")
        #expect(p.isRunning, "a polling pull keeps running")
        kill(p.processIdentifier, SIGTERM)
        await waitForExit(p)
        #expect(p.terminationStatus == 0)
        #expect(try await offPool { try ids(dir) }.sorted() == Array(1...8), "each record once")
    }

    @Test func lateUpdatesWithinTheLookbackArriveOnce() async throws {
        let server = try TestAPIServer.start(["--items", "50"])
        defer { server.stop() }
        let dir = try makeWorkDirectory("httpapi-late")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try write(
            """
            pipelines:
              api:
                source:
                  http_api:
                    url: "\(server.url)/stripe/items?limit=7"
                    records: data
                    pagination: { cursor: { param: starting_after, from_record: id, has_more: has_more } }
                    incremental: { field: updated_at, param: since, key: [id], lookback: 10s }
                sink: { ndjson: { path: out } }
            """, to: "\(dir)/p.yaml")
        var r = try await SluiceProcess.runWithoutBlocking(["run", "p.yaml", "--no-progress"], in: dir)
        #expect(r.status == 0, "\(r.stderr)")
        #expect(try await offPool { try ids(dir) }.sorted() == Array(1...50))
        // Item 3 changes late (its new timestamp is older than the newest seen), item 4 changes now.
        try await offPool {
            try server.control("/_control/update", ["ids": [3], "updated_at": "2023-11-14T22:14:05.000000Z", "name": "late"])
            try server.control("/_control/update", ["ids": [4], "updated_at": "2030-01-01T00:00:00.000000Z", "name": "new"])
        }
        r = try await SluiceProcess.runWithoutBlocking(["run", "p.yaml", "--no-progress"], in: dir)
        #expect(r.status == 0, "\(r.stderr)")
        let second = try await offPool { try ids(dir) }
        // Files of two runs within one second sort in either order: compare as multisets.
        #expect(second.sorted() == (Array(1...50) + [3, 4]).sorted(), "each new version once; the re-read ones dropped: \(second)")
        r = try await SluiceProcess.runWithoutBlocking(["run", "p.yaml", "--no-progress"], in: dir)
        #expect(try await offPool { try ids(dir) }.count == 52)
    }

    @Test func sluiceBackfillReadsARangeOnceUnderItsOwnCheckpoint() async throws {
        let server = try TestAPIServer.start(["--items", "40"])
        defer { server.stop() }
        let dir = try makeWorkDirectory("httpapi-backfill")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try write(
            """
            pipelines:
              api:
                source:
                  http_api:
                    url: "\(server.url)/link/items?per_page=3"
                    pagination: { link_header: next }
                    incremental: { field: updated_at, param: since, until_param: until }
                sink: { ndjson: { path: out } }
            """, to: "\(dir)/p.yaml")
        let arguments = ["backfill", "api", "--from", "2023-11-14T22:13:30.000000Z", "--to", "2023-11-14T22:13:40.000000Z", "-c", "p.yaml", "--no-progress"]
        var r = try await SluiceProcess.runWithoutBlocking(arguments, in: dir)
        #expect(r.status == 0, "\(r.stderr)")
        #expect(try await offPool { try ids(dir) }.sorted() == Array(10...19))
        r = try await SluiceProcess.runWithoutBlocking(arguments, in: dir)
        #expect(r.status == 0 && r.stderr.contains("already finished"), "\(r.stderr)")
        #expect(try await offPool { try ids(dir) }.count == 10)
    }
}
