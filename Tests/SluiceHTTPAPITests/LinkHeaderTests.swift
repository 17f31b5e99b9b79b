import Testing
import SluiceTesting

@testable import SluiceHTTPAPI

@Suite(.offCooperativePool) struct LinkHeaderTests {
    @Test func findsTheNextLinkAmongSeveralAsGitHubSendsThem() {
        let value =
            #"<https://api.github.com/repositories/1/issues?page=2>; rel="next", <https://api.github.com/repositories/1/issues?page=5>; rel="last""#
        #expect(LinkHeader.target(relation: "next", in: [value]) == "https://api.github.com/repositories/1/issues?page=2")
        #expect(LinkHeader.target(relation: "last", in: [value]) == "https://api.github.com/repositories/1/issues?page=5")
        #expect(LinkHeader.target(relation: "prev", in: [value]) == nil)
    }

    @Test func relationsAreCaseInsensitiveSpaceSeparatedAndMayBeUnquoted() {
        #expect(LinkHeader.target(relation: "next", in: [#"<a?x=1,2>; title="a, b"; rel="prefetch NEXT""#]) == "a?x=1,2")
        #expect(LinkHeader.target(relation: "next", in: ["</p/3>;rel=next"]) == "/p/3")
        #expect(LinkHeader.target(relation: "next", in: ["</p/1>; rel=first", "</p/2>; rel=next"]) == "/p/2")
    }
}
