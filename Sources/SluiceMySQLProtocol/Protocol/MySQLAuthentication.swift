import Crypto
import CryptoExtras
import Foundation

/// The password scrambles of the authentication methods Sluice speaks. Each answers the server's
/// 20-byte challenge without sending the password; an empty password answers with no bytes.
public enum MySQLAuthentication {
    /// `mysql_native_password`: SHA1(password) XOR SHA1(scramble + SHA1(SHA1(password))).
    public static func nativePassword(_ password: String, scramble: [UInt8]) -> [UInt8] {
        guard !password.isEmpty else { return [] }
        let once = Array(Insecure.SHA1.hash(data: Array(password.utf8)))
        let twice = Array(Insecure.SHA1.hash(data: once))
        let mask = Array(Insecure.SHA1.hash(data: scramble.prefix(20) + twice))
        return zip(once, mask).map { $0 ^ $1 }
    }

    /// `caching_sha2_password`: SHA256(password) XOR SHA256(SHA256(SHA256(password)) + scramble).
    public static func cachingSHA2(_ password: String, scramble: [UInt8]) -> [UInt8] {
        guard !password.isEmpty else { return [] }
        let once = Array(SHA256.hash(data: Array(password.utf8)))
        let twice = Array(SHA256.hash(data: once))
        let mask = Array(SHA256.hash(data: twice + scramble.prefix(20)))
        return zip(once, mask).map { $0 ^ $1 }
    }

    /// The first answer for the method `plugin` names; nil for a method Sluice does not speak.
    public static func response(plugin: String, password: String, scramble: [UInt8]) -> [UInt8]? {
        switch plugin {
        case "mysql_native_password", "": nativePassword(password, scramble: scramble)
        case "caching_sha2_password": cachingSHA2(password, scramble: scramble)
        // Sent as is, so only over TLS (the connection refuses it otherwise).
        case "mysql_clear_password": Array(password.utf8) + [0]
        default: nil
        }
    }

    /// The password as `caching_sha2_password` sends it in full over a connection without TLS:
    /// its bytes and a NUL, XORed with the 20-byte scramble (repeated), encrypted with the
    /// server's RSA public key (PEM, as the server sends it when asked with byte 2) and
    /// RSA-OAEP padding with SHA-1, as MySQL 8.0.5 and later decrypt it.
    public static func rsaEncryptedPassword(_ password: String, scramble: [UInt8], publicKeyPEM: String) throws -> [UInt8] {
        let key: _RSA.Encryption.PublicKey
        do {
            // The server's key, whatever its size (the default is 2048 bits).
            key = try _RSA.Encryption.PublicKey(unsafePEMRepresentation: publicKeyPEM)
        } catch {
            throw MySQLProtocolError("the server's RSA public key cannot be read (\(error)): \(publicKeyPEM.prefix(40))…", at: 0)
        }
        let plain = xorScramble(password, scramble: scramble)
        guard plain.count <= key.maximumEncryptSize(with: .PKCS1_OAEP) else {
            throw MySQLProtocolError("a password of \(plain.count - 1) bytes does not fit the server's \(key.keySizeInBits)-bit RSA key", at: 0)
        }
        return Array(try key.encrypt(plain, padding: .PKCS1_OAEP))
    }

    /// The password's bytes and a NUL, XORed with the scramble (its first 20 bytes, repeated).
    public static func xorScramble(_ password: String, scramble: [UInt8]) -> [UInt8] {
        let seed = Array(scramble.prefix(20))
        let plain = Array(password.utf8) + [0]
        guard !seed.isEmpty else { return plain }
        return plain.enumerated().map { $0.element ^ seed[$0.offset % seed.count] }
    }
}
