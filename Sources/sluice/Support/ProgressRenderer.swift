import Foundation
import SluiceCore

/// A live progress line for finite inputs: records, throughput and ETA, redrawn a few times a second.
struct ProgressRenderer {
    let terminal: Terminal
    let statuses: [PipelineStatus]

    func run() async {
        let start = ContinuousClock.now
        while !Task.isCancelled {
            try? await Task.sleep(for: .milliseconds(250))
            if Task.isCancelled { break }
            terminal.drawBar(line(elapsed: ContinuousClock.now - start))
        }
        terminal.clearBar()
    }

    func line(elapsed: Duration) -> String {
        var records = 0, done = 0, knownTotal = true, dead = 0
        var fractionDone = 0.0, fractionTotal = 0.0
        for s in statuses {
            let snap = s.snapshot
            records += snap.recordsIn
            dead += snap.deadLettered
            done += snap.bytesDone
            if let t = snap.bytesTotal {
                fractionDone += Double(snap.bytesDone)
                fractionTotal += Double(t)
            } else if let r = snap.recordsTotal {
                // Database extracts: progress by records, weighted like bytes (~100 B a record).
                fractionDone += Double(min(snap.recordsIn, r)) * 100
                fractionTotal += Double(r) * 100
            } else {
                knownTotal = false
            }
        }
        let seconds = max(0.001, Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18)
        let mbps = Double(done) / 1_048_576 / seconds
        var text = ""
        if knownTotal && fractionTotal > 0 {
            let fraction = min(1, fractionDone / fractionTotal)
            let width = 24
            let filled = Int(fraction * Double(width))
            text += "[" + String(repeating: "#", count: filled) + String(repeating: ".", count: width - filled) + "] "
            text += String(format: "%3.0f%% ", fraction * 100)
            if fraction > 0.01 && fraction < 1 {
                let eta = seconds / fraction - seconds
                text += "ETA \(Self.clock(eta)) "
            }
        }
        text += "\(records) records"
        if dead > 0 { text += " (\(dead) to DLQ)" }
        text += String(format: "  %.1f MB/s  %@", mbps, Self.clock(seconds))
        return text
    }

    static func clock(_ s: Double) -> String {
        let t = Int(s.rounded())
        return t >= 3600 ? String(format: "%d:%02d:%02d", t / 3600, t / 60 % 60, t % 60) : String(format: "%d:%02d", t / 60, t % 60)
    }
}
