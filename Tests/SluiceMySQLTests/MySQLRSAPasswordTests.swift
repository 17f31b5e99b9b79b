import Foundation
import SluiceCore
import SluiceMySQL
import SluiceMySQLProtocol
import SluiceTesting
import Testing

/// `caching_sha2_password`'s full login without TLS: the password, XORed with the scramble and
/// encrypted with the server's RSA public key (OAEP, SHA-1). The key pair is made by `openssl`,
/// and `openssl` decrypts what Sluice encrypted, as a MySQL server would. (MariaDB has no
/// `caching_sha2_password`, and no MySQL server could be installed here.)
@Suite(.offCooperativePool) struct MySQLRSAPasswordTests {
    /// Runs `openssl` with `arguments` in `directory`; its standard output.
    func openssl(_ arguments: [String], in directory: String, input: Data? = nil) throws -> Data {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = ["openssl"] + arguments
        p.currentDirectoryURL = URL(fileURLWithPath: directory)
        let out = Pipe(), errors = Pipe()
        p.standardOutput = out
        p.standardError = errors
        let stdin = Pipe()
        p.standardInput = stdin
        try p.run()
        if let input { stdin.fileHandleForWriting.write(input) }
        try stdin.fileHandleForWriting.close()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        let message = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        try #require(p.terminationStatus == 0, "openssl \(arguments.joined(separator: " ")): \(message)")
        return data
    }

    @Test func opensslDecryptsThePasswordXoredWithTheScramble() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("rsa-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        _ = try openssl(["genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", "private.pem"], in: dir)
        let pem = String(decoding: try openssl(["pkey", "-in", "private.pem", "-pubout"], in: dir), as: UTF8.self)
        #expect(pem.hasPrefix("-----BEGIN PUBLIC KEY-----"))
        let scramble: [UInt8] = (0..<20).map { UInt8(($0 * 37 + 11) & 0x7F) }
        // Longer than the scramble: it repeats.
        let password = "s3cret, with ünïcode and more than twenty bytes"
        let encrypted = try MySQLAuthentication.rsaEncryptedPassword(password, scramble: scramble, publicKeyPEM: pem)
        #expect(encrypted.count == 256)
        let decrypted = try openssl(
            ["pkeyutl", "-decrypt", "-inkey", "private.pem", "-pkeyopt", "rsa_padding_mode:oaep", "-pkeyopt", "rsa_oaep_md:sha1"], in: dir,
            input: Data(encrypted))
        let expected = Array(password.utf8) + [0]
        #expect(Array(decrypted).enumerated().map { $0.element ^ scramble[$0.offset % 20] } == expected)
        #expect(MySQLAuthentication.xorScramble(password, scramble: scramble) == Array(decrypted))
    }

    @Test func aKeyThatIsNotOneOrAPasswordTooLongIsRefused() throws {
        #expect(throws: MySQLProtocolError.self) {
            try MySQLAuthentication.rsaEncryptedPassword("pw", scramble: [], publicKeyPEM: "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n")
        }
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("rsa-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        _ = try openssl(["genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:1024", "-out", "small.pem"], in: dir)
        let pem = String(decoding: try openssl(["pkey", "-in", "small.pem", "-pubout"], in: dir), as: UTF8.self)
        // 1024 bits hold 128 - 42 = 86 bytes under OAEP with SHA-1.
        _ = try MySQLAuthentication.rsaEncryptedPassword(String(repeating: "p", count: 85), scramble: [1, 2, 3], publicKeyPEM: pem)
        #expect {
            try MySQLAuthentication.rsaEncryptedPassword(String(repeating: "p", count: 86), scramble: [1, 2, 3], publicKeyPEM: pem)
        } throws: { error in
            (error as? MySQLProtocolError)?.message.contains("does not fit the server's 1024-bit RSA key") == true
        }
    }

    /// The RSA exchange is opt-in: a key pinned in the URL, or asking the server for it; without
    /// either, a full login without TLS is refused (a key from whoever answers for the server
    /// would hand them the password).
    @Test func theURLSaysWhichKeyToTrust() throws {
        let plain = try MySQLURL("mysql://u:p@h/db")
        #expect(plain.serverPublicKeyFile == nil && !plain.getServerPublicKey)
        let pinned = try MySQLURL("mysql://u:p@h/db?server_public_key=/etc/mysql/public_key.pem")
        #expect(pinned.serverPublicKeyFile == "/etc/mysql/public_key.pem" && !pinned.getServerPublicKey)
        #expect(try MySQLURL("mysql://u:p@h/db?get_server_public_key=true").getServerPublicKey)
        #expect(try MySQLURL("mysql://u:p@h/db?get_server_public_key").getServerPublicKey)
        #expect(try !MySQLURL("mysql://u:p@h/db?get_server_public_key=false").getServerPublicKey)
        #expect {
            _ = try MySQLURL("mysql://u:p@h/db?get_server_public_key=maybe")
        } throws: { error in
            (error as? SluiceError)?.message.contains("true or false") == true
        }
    }
}
