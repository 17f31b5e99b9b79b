import Foundation
import Synchronization

/// Loopback TCP ports for test servers, none handed out twice in one test process.
///
/// A port is found by binding port 0 and releasing it, so nothing holds it between the call and
/// the server that uses it. The kernel picks those ports at random from the ephemeral range, and
/// over a full run (hundreds of servers, some stopped and restarted on their port) two tests got
/// the same one: a receiver "coming back" found another test's server answering 404 on its port.
/// Remembering every port given out removes collisions between the suite's own servers.
public enum FreePorts {
    /// Every port given out so far in this process (test-only bookkeeping; never cleared, as a
    /// port may be reused by its server until the process ends).
    private static let issued = Mutex<Set<Int>>([])

    /// `count` distinct ports nobody listens on now and no other caller in this process got.
    public static func take(_ count: Int) throws -> [Int] {
        var held: [Int32] = []
        defer { for fd in held { close(fd) } }
        var ports: [Int] = []
        var attempts = 0
        while ports.count < count {
            attempts += 1
            guard attempts <= count * 50 else { throw TestServerError("cannot find \(count) free ports") }
            let (fd, port) = try bindAnyPort()
            held.append(fd)  // held until all are found, so the kernel gives distinct ones
            let fresh = issued.withLock { $0.insert(port).inserted }
            if fresh { ports.append(port) }
        }
        return ports
    }

    /// A socket bound to 127.0.0.1 on a port the kernel chose, and that port.
    private static func bindAnyPort() throws -> (Int32, Int) {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw TestServerError("socket() failed: errno \(errno)") }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = 0
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        let ok = withUnsafeMutablePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, len) == 0 && getsockname(fd, $0, &len) == 0 }
        }
        guard ok else {
            close(fd)
            throw TestServerError("cannot bind a free port: errno \(errno)")
        }
        return (fd, Int(UInt16(bigEndian: addr.sin_port)))
    }
}
