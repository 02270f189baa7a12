import Foundation
import LoomData
import LoomLayers
import LoomTensor
import Testing

/// The `loom` binary built beside the tests, run as other tools run it.
enum LoomProcess {
    struct Result {
        let status: Int32
        let stdout: String
        let stderr: String
    }

    /// The built `loom` executable: SwiftPM puts it in the folder that holds the test bundle.
    static var executable: URL {
        var folder = Bundle.module.bundleURL.deletingLastPathComponent()
        for _ in 0..<3 {
            let candidate = folder.appendingPathComponent("loom")
            if FileManager.default.isExecutableFile(atPath: candidate.path) { return candidate }
            folder = folder.deletingLastPathComponent()
        }
        return Bundle.module.bundleURL.deletingLastPathComponent().appendingPathComponent("loom")
    }

    /// Runs `loom arguments...` to the end; one still running after `timeout` seconds is killed
    /// and recorded as a failure, so a hang fails its test instead of stalling the suite.
    /// `launcher` runs loom through another program (`setpriv ...` to drop root); `binary` is
    /// a copy of loom to run instead of the built one.
    static func run(_ arguments: [String], environment: [String: String] = [:], timeout: TimeInterval = 300,
                    launcher: [String] = [], binary: URL? = nil, sourceLocation: SourceLocation = #_sourceLocation) throws -> Result {
        let process = Process()
        let loom = binary ?? executable
        process.executableURL = launcher.first.map { URL(fileURLWithPath: $0) } ?? loom
        process.arguments = launcher.isEmpty ? arguments : Array(launcher.dropFirst()) + [loom.path] + arguments
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        let watchdog = DispatchWorkItem { if process.isRunning { kill(process.processIdentifier, SIGKILL) } }
        DispatchQueue.global().asyncAfter(deadline: .now() + timeout, execute: watchdog)
        // Read both pipes while the process runs, so a full pipe never blocks it.
        nonisolated(unsafe) var errData = Data()
        let reader = Thread { errData = err.fileHandleForReading.readDataToEndOfFile() }
        reader.start()
        let outData = out.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        watchdog.cancel()
        while !reader.isFinished { usleep(1000) }
        if process.terminationReason == .uncaughtSignal && process.terminationStatus == SIGKILL {
            Issue.record("loom \(arguments.joined(separator: " ")) was still running after \(Int(timeout)) s", sourceLocation: sourceLocation)
        }
        return Result(status: process.terminationStatus, stdout: String(decoding: outData, as: UTF8.self),
                      stderr: String(decoding: errData, as: UTF8.self))
    }

    /// A fixture's path.
    static func fixture(_ relative: String) -> String {
        Bundle.module.bundleURL.appendingPathComponent("Fixtures").appendingPathComponent(relative).path
    }

    /// A fresh scratch folder, removed by the caller.
    static func scratch() throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("loom-cli-\(getpid())-\(UInt64.random(in: 0...UInt64.max))")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }
}

/// `a` and `b` agree elementwise within `absolute + relative·|b|`.
func expectAllClose(_ a: Tensor, _ b: Tensor, relative: Float, absolute: Float, _ what: String,
                    sourceLocation: SourceLocation = #_sourceLocation) {
    #expect(a.shape == b.shape, "\(what): shape \(a.shape) vs \(b.shape)", sourceLocation: sourceLocation)
    guard a.shape == b.shape else { return }
    let (x, y) = (a.scalars, b.scalars)
    var worst = 0, worstExcess: Float = 0
    for i in x.indices {
        let excess = abs(x[i] - y[i]) - (absolute + relative * abs(y[i]))
        if excess > worstExcess || x[i].isNaN != y[i].isNaN { worst = i; worstExcess = max(excess, .ulpOfOne) }
    }
    #expect(worstExcess == 0, "\(what) [\(worst)]: \(x[worst]) vs expected \(y[worst])", sourceLocation: sourceLocation)
}
