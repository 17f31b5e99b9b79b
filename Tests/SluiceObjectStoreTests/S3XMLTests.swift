import SluiceObjectStore
import Testing
import SluiceTesting

/// S3's XML answers, as AWS documents them, read without a server.
@Suite(.offCooperativePool) struct S3XMLTests {
    @Test func aListingWithEscapedKeysAndQuotedETags() {
        let xml = S3XML(
            """
            <?xml version="1.0" encoding="UTF-8"?>
            <ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">
              <Name>lake</Name><Prefix>a/</Prefix><KeyCount>2</KeyCount><IsTruncated>true</IsTruncated>
              <NextContinuationToken>1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM=</NextContinuationToken>
              <Contents><Key>a/x&amp;y &lt;1&gt;.csv</Key><LastModified>2026-12-05T14:48:13.000Z</LastModified>
                <ETag>&quot;764efa883dda1e11db47671c4a3bbd9e&quot;</ETag><Size>3</Size><StorageClass>STANDARD</StorageClass></Contents>
              <Contents><Key>a/&#233;t&#xE9;.csv</Key><ETag>"abc-2"</ETag><Size>12</Size></Contents>
            </ListBucketResult>
            """)
        let contents = xml.elements("Contents")
        #expect(contents.count == 2)
        #expect(contents[0].value("Key") == "a/x&y <1>.csv")
        #expect(contents[0].value("ETag") == "\"764efa883dda1e11db47671c4a3bbd9e\"")
        #expect(contents[1].value("Key") == "a/été.csv")
        #expect(xml.value("IsTruncated") == "true")
        #expect(xml.value("NextContinuationToken") == "1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM=")
        #expect(xml.value("Missing") == nil)
    }

    @Test func anErrorAndEmptyElements() {
        let xml = S3XML(
            "<Error><Code>NoSuchBucket</Code><Message>The specified bucket does not exist</Message><BucketName>x</BucketName><Region/></Error>")
        #expect(xml.elements("Error").first?.value("Code") == "NoSuchBucket")
        #expect(xml.value("Region") == "")
        #expect(S3XML.escape("a&b<\"c\">") == "a&amp;b&lt;&quot;c&quot;&gt;")
    }
}
