import Foundation

/// Keras's progress display: on a terminal a live bar with the ETA and running metrics,
/// redrawn at most every 50 ms; otherwise one plain line per epoch.
public final class ProgressBar: Callback, @unchecked Sendable {
    public let verbosity: Verbosity
    private var target = 0
    /// Steps drawn so far: the total of a pass whose length was not known in advance.
    private var seen = 0
    private var start = Date()
    private var lastDraw = Date.distantPast
    private var previousWidth = 0
    private var epochs = 0
    private let width = 20
    private let output: @Sendable (String) -> Void

    /// A bar at `verbosity`, written to standard output (or to `output`).
    public init(verbosity: Verbosity, output: (@Sendable (String) -> Void)? = nil) {
        self.verbosity = verbosity.resolved
        self.output = output ?? { text in
            fflush(nil)  // after anything print() buffered
            FileHandle.standardOutput.write(Data(text.utf8))
        }
    }

    public override func onTrainBegin(logs: Logs) throws { epochs = params["epochs"] ?? 0 }

    public override func onEpochBegin(_ epoch: Int, logs: Logs) throws {
        target = params["steps"] ?? 0
        seen = 0
        start = Date()
        previousWidth = 0
        if epochs > 0 { write("Epoch \(epoch + 1)/\(epochs)\n") }
    }

    public override func onTrainBatchEnd(_ batch: Int, logs: Logs) throws { draw(batch + 1, logs, final: false) }

    public override func onEpochEnd(_ epoch: Int, logs: Logs) throws { draw(target > 0 ? target : seen, logs, final: true) }

    public override func onTestBegin(logs: Logs) throws {
        // Validation inside fit is reported with the epoch; a plain evaluate gets its own bar.
        guard params["epochs"] == nil else { return }
        target = params["test_steps"] ?? 0
        start = Date()
        previousWidth = 0
    }

    public override func onTestBatchEnd(_ batch: Int, logs: Logs) throws {
        guard params["epochs"] == nil else { return }
        draw(batch + 1, logs, final: false)
    }

    public override func onTestEnd(logs: Logs) throws {
        guard params["epochs"] == nil else { return }
        draw(target, logs, final: true)
    }

    public override func onPredictBegin(logs: Logs) throws {
        target = params["steps"] ?? 0
        start = Date()
        previousWidth = 0
    }

    public override func onPredictBatchEnd(_ batch: Int, logs: Logs) throws { draw(batch + 1, logs, final: false) }
    public override func onPredictEnd(logs: Logs) throws { draw(target, logs, final: true) }

    private func draw(_ current: Int, _ logs: Logs, final: Bool) {
        let now = Date()
        seen = max(seen, current)
        let elapsed = now.timeIntervalSince(start)
        let perStep = current > 0 ? elapsed / Double(current) : 0
        // A pass of unknown length (a dataset that cannot count itself) shows "n/Unknown", as
        // Keras does, until it ends.
        let total = target > 0 ? "\(target)" : final ? "\(current)" : "Unknown"
        let digits = max(total.count, String(current).count)
        let count = String(repeating: " ", count: max(0, digits - String(current).count)) + "\(current)/\(total)"
        let metrics = logs.map { " - \($0.key): \(Self.format($0.value))" }.joined()
        switch verbosity {
        case .progressBar:
            guard final || now.timeIntervalSince(lastDraw) >= 0.05 else { return }
            lastDraw = now
            let filled = target > 0 ? min(width, width * current / target) : 0
            let bar = String(repeating: "━", count: filled) + String(repeating: "━", count: width - filled)
            let colored = "\u{1B}[32m" + String(bar.prefix(filled)) + "\u{1B}[0m\u{1B}[37m" + String(bar.dropFirst(filled)) + "\u{1B}[0m"
            let time = final || target == 0 ? "\(Int(elapsed.rounded()))s" : Self.eta(perStep * Double(target - current))
            let line = "\(count) \(colored) \(time) \(Self.stepTime(perStep))\(metrics)"
            let visible = count.count + 1 + width + 1 + time.count + 1 + Self.stepTime(perStep).count + metrics.count
            let pad = String(repeating: " ", count: max(0, previousWidth - visible))
            previousWidth = visible
            write("\r" + line + pad + (final ? "\n" : ""))
        case .oneLinePerEpoch:
            guard final else { return }
            write("\(count) - \(Int(elapsed.rounded()))s - \(Self.stepTime(perStep))\(metrics)\n")
        case .silent, .auto:
            return
        }
    }

    static func format(_ v: Float) -> String {
        abs(v) > 1e-3 || v == 0 ? String(format: "%.4f", v) : String(format: "%.4e", v)
    }

    static func eta(_ seconds: Double) -> String {
        let s = Int(seconds)
        if s > 3600 { return String(format: "%d:%02d:%02d", s / 3600, (s % 3600) / 60, s % 60) }
        if s > 60 { return String(format: "%d:%02d", s / 60, s % 60) }
        return "\(s)s"
    }

    static func stepTime(_ seconds: Double) -> String {
        if seconds >= 1 || seconds == 0 { return String(format: "%.0fs/step", seconds) }
        if seconds >= 1e-3 { return String(format: "%.0fms/step", seconds * 1000) }
        return String(format: "%.0fus/step", seconds * 1e6)
    }

    private func write(_ text: String) { output(text) }
}
