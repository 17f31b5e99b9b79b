import Foundation
import Logging
import SluiceCore
import SluiceFormats

/// Reads one pass with fan-out: the parent pages in order and, for each parent record, its child
/// pages, with the children of `fan_out.parallel` parents fetched at once. Each child page is one
/// batch, emitted in parent order. Its checkpoint names the parent page, the parent and the
/// next child page, so a crash resumes at that child page (the parent page is fetched again).
final class HTTPAPIFanOutReader: SourceReader {
    /// A child page fetched ahead.
    struct ChildPage: Sendable {
        var index: Int
        var url: URL
        var body: [UInt8]
        /// The parent's next child page, nil after its last.
        var next: PageRequest?
    }

    let options: HTTPAPISourceOptions
    let fan: HTTPAPIFanOut
    let plan: PagePlan
    let children: PageDecoder
    let logger: Logger
    var position: HTTPAPIPosition
    /// The records of the parent page `position.next`, once fetched.
    var parents: [ParentRecord]?
    var parentURL: URL?
    var nextParent: PageRequest?
    var ready: [ChildPage] = []
    let client: HTTPAPIClient

    init(source: HTTPAPISource, fan: HTTPAPIFanOut, checkpoint: Checkpoint, context: SourceContext) throws {
        options = source.options
        self.fan = fan
        plan = PagePlan(options: options)
        logger = context.logger
        children = PageDecoder(options: fan.childOptions(options, url: options.url))
        let saved = checkpoint[HTTPAPIPosition.partition].flatMap(HTTPAPIPosition.decode)
        if let saved, !saved.done {
            position = saved
        } else {
            position = try HTTPAPIPosition.newPass(after: saved, lookback: nil)
            position.fan = FanPosition(index: 0, child: .first)
        }
        // Last: once made, the client must be shut down (``close()``), so nothing may throw after it.
        client = HTTPAPIClient(options: options, logger: context.logger, requests: context.requests)
    }

    func next() async throws -> SourceBatch? {
        while true {
            guard let parentRequest = position.next else { return nil }
            if parents == nil { try await loadParents(parentRequest) }
            let at = position.fan ?? FanPosition(index: 0, child: .first)
            guard let parents, at.index < parents.count else {
                // This parent page is done: on to the next one.
                position.next = nextParent
                position.fan = FanPosition(index: 0, child: .first)
                self.parents = nil
                ready = []
                if position.done {
                    logger.info("pull finished", metadata: ["pages": "\(position.pages)"])
                    return SourceBatch(
                        records: RecordBatch.empty(children.schema ?? Schema([])),
                        position: SourcePosition(partition: HTTPAPIPosition.partition, value: position.encoded), inputBytes: 0)
                }
                continue
            }
            if ready.isEmpty { ready = try await fetchAhead(from: at, parents: parents) }
            guard !ready.isEmpty else { throw SluiceError(.internalError, "fan-out fetched no child page for parent \(at.index)") }
            let page = ready.removeFirst()
            let location = "\(client.masker.mask(page.url.absoluteString)) (parent \(at.index + 1) of parent page \(position.pages + 1))"
            var decoded: DecodedPage
            do {
                decoded = try children.decode(page.body, location: location, prefix: parents[page.index].prefix)
            } catch let error as SluiceError where error.code == .malformedInput {
                let letter = DeadLetter(stage: "decode", errorKind: "malformed_response", message: error.message, location: location, raw: page.body)
                decoded = DecodedPage(batch: RecordBatch.empty(children.schema ?? Schema([])), rejects: [letter], records: 0)
            }
            position.pages += 1
            position.fan = page.next.map { FanPosition(index: page.index, child: $0) } ?? FanPosition(index: page.index + 1, child: .first)
            return SourceBatch(
                records: decoded.batch, rejects: decoded.rejects,
                position: SourcePosition(partition: HTTPAPIPosition.partition, value: position.encoded), inputBytes: page.body.count)
        }
    }

    /// Fetches a parent page and works out the one after it.
    func loadParents(_ request: PageRequest) async throws {
        let url = try plan.url(for: request, since: nil)
        let response = try await client.fetch(url)
        let body = Array(response.body.readableBytesView)
        let location = client.masker.mask(url.absoluteString)
        let records = try PageOutline.parents(body, options: options, fan: fan, location: location)
        let outline = PageOutline.of(body, options: options)
        nextParent = try plan.next(
            after: request, at: url,
            outcome: PageOutcome(
                records: records.count, linkHeaders: response.headers["Link"],
                lookup: { path in body.withUnsafeBytes { try? JSONLookup.value(at: path, in: $0) } },
                lastRecordCursor: outline.lastRecordCursor))
        parents = records
        parentURL = url
    }

    /// Fetches every child page of the next `parallel` parents at once, returned in order.
    func fetchAhead(from at: FanPosition, parents: [ParentRecord]) async throws -> [ChildPage] {
        let indices = at.index..<min(at.index + fan.parallel, parents.count)
        let client = self.client, fan = self.fan, options = self.options
        guard let parentURL else { throw SluiceError(.internalError, "fan-out has no parent page loaded") }
        return try await withThrowingTaskGroup(of: (Int, [ChildPage]).self) { group in
            for index in indices {
                let first = index == at.index ? at.child : .first
                let values = parents[index].values
                group.addTask {
                    let childOptions = fan.childOptions(options, url: try fan.url(for: values, parent: parentURL))
                    let childPlan = PagePlan(options: childOptions)
                    var pages: [ChildPage] = []
                    var request = first
                    while true {
                        let url = try childPlan.url(for: request, since: nil)
                        let response = try await client.fetch(url)
                        let body = Array(response.body.readableBytesView)
                        let outline = PageOutline.of(body, options: childOptions)
                        var next = try childPlan.next(
                            after: request, at: url,
                            outcome: PageOutcome(
                                records: outline.records, linkHeaders: response.headers["Link"],
                                lookup: { path in body.withUnsafeBytes { try? JSONLookup.value(at: path, in: $0) } },
                                lastRecordCursor: outline.lastRecordCursor))
                        if let max = fan.maxPages, pages.count + 1 >= max { next = nil }
                        pages.append(ChildPage(index: index, url: url, body: body, next: next))
                        guard let n = next else { return (index, pages) }
                        request = n
                    }
                }
            }
            var byParent: [Int: [ChildPage]] = [:]
            for try await (index, pages) in group { byParent[index] = pages }
            return indices.flatMap { byParent[$0] ?? [] }
        }
    }

    func close() async {
        await client.shutdown()
    }
}
