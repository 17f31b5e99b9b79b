import Crypto

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
}
