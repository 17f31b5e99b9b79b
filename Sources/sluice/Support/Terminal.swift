#if canImport(Glibc)
    import Glibc
#endif
import Synchronization

/// Standard error, shared by log lines and the progress bar so they never interleave:
/// a log line clears the bar, prints, and the bar is redrawn on its next tick.
final class Terminal: Sendable {
    private let barShown = Mutex(false)
    /// True when stderr is an interactive terminal.
    let isInteractive: Bool

    init() { isInteractive = isatty(2) == 1 }

    func writeLine(_ text: String) {
        barShown.withLock { shown in
            var line = shown ? "\r\u{1B}[2K" : ""
            line += text
            line += "\n"
            write(line)
            shown = false
        }
    }

    func drawBar(_ text: String) {
        barShown.withLock { shown in
            write("\r\u{1B}[2K" + text)
            shown = true
        }
    }

    func clearBar() {
        barShown.withLock { shown in
            if shown { write("\r\u{1B}[2K") }
            shown = false
        }
    }

    private func write(_ text: String) {
        var t = text
        t.withUTF8 { buf in
            var off = 0
            while off < buf.count {
                let n = Glibc.write(2, buf.baseAddress! + off, buf.count - off)
                if n <= 0 { if errno == EINTR { continue }; return }
                off += n
            }
        }
    }
}
