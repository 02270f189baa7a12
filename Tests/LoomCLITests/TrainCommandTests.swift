import Foundation
import LoomData
import LoomJobs
import LoomModels
import LoomTensor
import Testing

/// `loom train` as cron runs it: exit statuses, plain output, the lock, and runs killed or
/// stopped by a signal and resumed.
@Suite(.serialized) struct TrainCommandTests {
    /// A folder with a job that trains for a few seconds: 20,000 samples of 64 features,
    /// a 512-512 MLP with dropout, 6 epochs of batch 64, a checkpoint every 40 steps.
    struct Setup {
        let folder: URL
        var job: String { folder.appendingPathComponent("job.yaml").path }
        func path(_ name: String) -> String { folder.appendingPathComponent(name).path }

        init(epochs: Int = 6, samples: Int = 20_000) throws {
            folder = try LoomProcess.scratch()
            let g = RandomGenerator(seed: 8)
            var x = [Float](repeating: 0, count: samples * 64)
            x.withUnsafeMutableBufferPointer { g.fillUniform($0, stream: 0) }
            let y = (0..<samples).map { (i: Int) -> Float in
                let low: Float = x[i * 64] + x[i * 64 + 1] > 1 ? 1 : 0
                let high: Float = x[i * 64 + 2] > 0.5 ? 2 : 0
                return low + high
            }
            try NPY.write(Tensor(shape: [samples, 64], scalars: x), to: folder.appendingPathComponent("x.npy").path)
            try NPY.write(Tensor(y), to: folder.appendingPathComponent("y.npy").path)
            let text = """
            name: resumable
            seed: 5
            data:
              train: {npy: {x: x.npy, y: y.npy}}
              split: {validation: 0.1, test: 0.1, seed: 1}
            model:
              layers:
                - Input: {shape: [64]}
                - Dense: {units: 512, activation: relu}
                - Dropout: {rate: 0.2}
                - Dense: {units: 512, activation: relu}
                - Dropout: {rate: 0.2}
                - Dense: {units: 4, activation: softmax}
            compile: {optimizer: rmsprop, loss: sparse_categorical_crossentropy, metrics: [accuracy]}
            fit:
              epochs: \(epochs)
              batch_size: 64
              checkpoint_every_steps: 40
              callbacks: [{ReduceLROnPlateau: {monitor: val_loss, patience: 1, factor: 0.5}}]
            """
            try Data(text.utf8).write(to: URL(fileURLWithPath: job))
        }

        func remove() { try? FileManager.default.removeItem(at: folder) }
    }

    /// `loom` started in the background, its output going to files.
    final class Running {
        let process = Process()
        let out: URL, err: URL
        init(_ arguments: [String], in folder: URL, tag: String) throws {
            out = folder.appendingPathComponent("\(tag).out")
            err = folder.appendingPathComponent("\(tag).err")
            _ = FileManager.default.createFile(atPath: out.path, contents: nil)
            _ = FileManager.default.createFile(atPath: err.path, contents: nil)
            process.executableURL = LoomProcess.executable
            process.arguments = arguments
            process.standardOutput = try FileHandle(forWritingTo: out)
            process.standardError = try FileHandle(forWritingTo: err)
            try process.run()
        }
        /// The exit status; a process still running after `timeout` seconds is killed and
        /// recorded as a failure, so a hang fails the test instead of stalling the suite.
        func wait(timeout: TimeInterval = 300, sourceLocation: SourceLocation = #_sourceLocation) -> Int32 {
            let deadline = Date().addingTimeInterval(timeout)
            while process.isRunning && Date() < deadline { usleep(20_000) }
            if process.isRunning {
                kill(process.processIdentifier, SIGKILL)
                Issue.record("loom \(process.arguments?.joined(separator: " ") ?? "") was still running after \(Int(timeout)) s", sourceLocation: sourceLocation)
            }
            process.waitUntilExit()
            return process.terminationStatus
        }
        var stderr: String { (try? String(contentsOf: err, encoding: .utf8)) ?? "" }
        var stdout: String { (try? String(contentsOf: out, encoding: .utf8)) ?? "" }
    }

    /// Waits until the run has finished its first epoch (metrics.csv has a row) and written a
    /// step checkpoint after it; false if the process ended first.
    static func waitIntoSecondEpoch(_ running: Running, run: String) -> Bool {
        let deadline = Date().addingTimeInterval(120)
        while Date() < deadline && running.process.isRunning {
            if let csv = try? String(contentsOfFile: run + "/metrics.csv", encoding: .utf8), csv.split(separator: "\n").count >= 2 {
                usleep(400_000)
                return running.process.isRunning
            }
            usleep(20_000)
        }
        return false
    }

    /// The trained model's weights, as numbers.
    static func weights(_ run: String) throws -> [[Float]] { try KerasFile.load(run + "/model.keras").weights.map(\.value.scalars) }

    /// An uninterrupted run, to compare with.
    static func reference(_ setup: Setup) throws -> (weights: [[Float]], history: String) {
        let run = setup.path("reference")
        let result = try LoomProcess.run(["train", setup.job, "--run-dir", run, "--workers", "2"])
        #expect(result.status == 0, "\(result.stderr)")
        return (try weights(run), try String(contentsOfFile: run + "/history.json", encoding: .utf8))
    }

    @Test(arguments: [SIGKILL, SIGTERM])
    func aRunStoppedBySignalResumesToTheSameModel(signal: Int32) throws {
        let setup = try Setup()
        defer { setup.remove() }
        let expected = try Self.reference(setup)
        let run = setup.path("stopped")
        let first = try Running(["train", setup.job, "--run-dir", run, "--workers", "2"], in: setup.folder, tag: "first")
        let midway = Self.waitIntoSecondEpoch(first, run: run)
        kill(first.process.processIdentifier, signal)
        let status = first.wait()
        try #require(midway, "the run ended before it could be stopped: \(first.stderr)")
        if signal == SIGTERM {
            #expect(status == JobExit.interrupted.rawValue, "\(first.stderr)")
            // Mid-epoch the run stops after its current batch; a signal that lands in the epoch's
            // end (validation, metrics, the checkpoint) stops it after that epoch instead.
            let stopped = first.stderr.contains("SIGTERM: stopped in epoch") || first.stderr.contains("SIGTERM: stopped after epoch")
            #expect(stopped && first.stderr.contains("run the job again to resume"), "\(first.stderr)")
        } else {
            #expect(first.process.terminationReason == .uncaughtSignal)
        }
        #expect(!FileManager.default.fileExists(atPath: run + "/result.json"))
        let second = try Running(["train", setup.job, "--run-dir", run, "--workers", "2"], in: setup.folder, tag: "second")
        #expect(second.wait() == 0, "\(second.stderr)")
        #expect(second.stderr.contains("resuming from the checkpoint: epoch "))
        #expect(try Self.weights(run) == expected.weights, "the resumed run ends with the uninterrupted run's weights")
        #expect(try String(contentsOfFile: run + "/history.json", encoding: .utf8) == expected.history)
        // Nothing half-written is left behind.
        let names = try FileManager.default.contentsOfDirectory(atPath: run)
        #expect(!names.contains { $0.contains(".partial") }, "\(names)")
    }

    /// SIGTERM while the data loads (here: a named pipe nobody writes, so loading waits)
    /// stops the run with status 4 and a line saying where, not a silent 143.
    @Test func aSignalWhileLoadingStopsCleanly() throws {
        let setup = try Setup(samples: 200)
        defer { setup.remove() }
        try FileManager.default.removeItem(atPath: setup.path("x.npy"))
        #expect(mkfifo(setup.path("x.npy"), 0o600) == 0)
        let run = setup.path("run")
        let running = try Running(["train", setup.job, "--run-dir", run], in: setup.folder, tag: "loading")
        let deadline = Date().addingTimeInterval(60)
        while Date() < deadline && running.process.isRunning && !running.stderr.contains("loading data") { usleep(20_000) }
        usleep(200_000)
        kill(running.process.processIdentifier, SIGTERM)
        #expect(running.wait() == 4, "\(running.stderr)")
        #expect(running.stderr.contains("SIGTERM: stopped while loading the data"), "\(running.stderr)")
        #expect(!FileManager.default.fileExists(atPath: run + "/job.resolved.json"))
    }

    /// A --run-dir that is a file is refused with status 2 and kept (it was a Foundation
    /// message about "a file with the same name").
    @Test func aRunFolderThatIsAFileIsRefused() throws {
        let setup = try Setup(epochs: 1, samples: 200)
        defer { setup.remove() }
        let file = setup.path("notes.txt")
        try Data("mine".utf8).write(to: URL(fileURLWithPath: file))
        let result = try LoomProcess.run(["train", setup.job, "--run-dir", file])
        #expect(result.status == JobExit.usage.rawValue)
        #expect(result.stderr == "loom train: \(file): is a file, not a run folder: choose another --run-dir\n", "\(result.stderr)")
        #expect(try String(contentsOfFile: file, encoding: .utf8) == "mine")
    }

    @Test func aSecondRunOnALockedFolderExitsAtOnce() throws {
        let setup = try Setup(epochs: 1, samples: 200)
        defer { setup.remove() }
        let run = setup.path("run")
        let holder = try RunFolder(run)
        try withExtendedLifetime(holder) {
            let started = Date()
            let result = try LoomProcess.run(["train", setup.job, "--run-dir", run])
            #expect(result.status == JobExit.locked.rawValue)
            #expect(result.stderr.contains("is in use by another run (process \(getpid()))"), "\(result.stderr)")
            #expect(Date().timeIntervalSince(started) < 30)
        }
        #expect(!FileManager.default.fileExists(atPath: run + "/checkpoint.keras"))
    }

    /// 0 finished (and finished already), 1 failed, 2 usage or job file error; 3 and 4 above.
    @Test func exitStatuses() throws {
        let setup = try Setup(epochs: 1, samples: 200)
        defer { setup.remove() }
        let done = try LoomProcess.run(["train", setup.job, "--run-dir", setup.path("ok")])
        #expect(done.status == JobExit.success.rawValue, "\(done.stderr)")
        #expect(done.stdout.contains("finished 1 epoch(s); test: loss"))
        let again = try LoomProcess.run(["train", setup.job, "--run-dir", setup.path("ok")])
        #expect(again.status == JobExit.success.rawValue && again.stdout.contains("already finished"))

        try Data("a,label\n1,0\nnot-a-number,1\n".utf8).write(to: URL(fileURLWithPath: setup.path("bad.csv")))
        let badData = try String(contentsOfFile: setup.job, encoding: .utf8)
            .replacingOccurrences(of: "{npy: {x: x.npy, y: y.npy}}", with: "{csv: {path: bad.csv, labels: [label]}}")
        try Data(badData.utf8).write(to: URL(fileURLWithPath: setup.path("bad-data.yaml")))
        let failed = try LoomProcess.run(["train", setup.path("bad-data.yaml"), "--run-dir", setup.path("failed")])
        #expect(failed.status == JobExit.failed.rawValue)
        #expect(failed.stderr.contains("bad.csv") && !failed.stderr.contains("Fatal error"), "\(failed.stderr)")

        let typo = try String(contentsOfFile: setup.job, encoding: .utf8).replacingOccurrences(of: "batch_size:", with: "batchsize:")
        try Data(typo.utf8).write(to: URL(fileURLWithPath: setup.path("typo.yaml")))
        let usage = try LoomProcess.run(["train", setup.path("typo.yaml"), "--run-dir", setup.path("typo")])
        #expect(usage.status == JobExit.usage.rawValue)
        #expect(usage.stderr.contains("typo.yaml:") && usage.stderr.contains("fit.batchsize: unknown key"), "\(usage.stderr)")
        #expect(!FileManager.default.fileExists(atPath: setup.path("typo")))
        let flag = try LoomProcess.run(["train", setup.job, "--workers", "0"])
        #expect(flag.status == JobExit.usage.rawValue && flag.stderr.contains("--workers must be at least 1"))
        let missing = try LoomProcess.run(["train", setup.path("nowhere.yaml")])
        #expect(missing.status == JobExit.usage.rawValue && missing.stderr.contains("nowhere.yaml: no such file"))
    }

    /// A model larger than the machine (weights with Adam's slots and gradients, or one
    /// batch's activations) is refused before anything is allocated, in well under a second,
    /// naming the job's line, the layer and the figures; nothing is written.
    @Test func aModelTooLargeForMemoryIsRefusedAtOnce() throws {
        let setup = try Setup(epochs: 1, samples: 3000)
        defer { setup.remove() }
        let job = try String(contentsOfFile: setup.job, encoding: .utf8)
        func variant(_ name: String, _ replacements: [(String, String)]) throws -> String {
            var text = job
            for (a, b) in replacements { text = text.replacingOccurrences(of: a, with: b) }
            try Data(text.utf8).write(to: URL(fileURLWithPath: setup.path(name)))
            return setup.path(name)
        }
        // 64 x 30,000,000 floats: 7.2 GB of kernel, 4 copies with Adam: more than 24 GB.
        let huge = try variant("huge.yaml", [("- Dense: {units: 512, activation: relu}\n    - Dropout: {rate: 0.2}\n    - Dense: {units: 512",
                                              "- Dense: {units: 30000000, activation: relu}\n    - Dropout: {rate: 0.2}\n    - Dense: {units: 512"),
                                             ("optimizer: rmsprop", "optimizer: adam")])
        let started = Date()
        let refused = try LoomProcess.run(["train", huge, "--run-dir", setup.path("huge")])
        #expect(Date().timeIntervalSince(started) < 5)
        #expect(refused.status == JobExit.usage.rawValue, "\(refused.stderr)")
        for fragment in ["huge.yaml:7: model: dense: its weight kernel", "kernel of shape [64, 30000000]", "kept 4 times (the value, 2 Adam slots and a gradient)",
                         "this machine can give", "--max-memory"] {
            #expect(refused.stderr.contains(fragment), "\(refused.stderr)\nlacks: \(fragment)")
        }
        #expect(refused.stderr.contains("MemAvailable") || refused.stderr.contains("memory.max") || refused.stderr.contains("limit_in_bytes"))
        #expect(!FileManager.default.fileExists(atPath: setup.path("huge")))

        // Weights that fit, a batch whose activations do not: 2048 x 512 x 3 floats a layer.
        let wide = try variant("wide.yaml", [("batch_size: 64", "batch_size: 2048")])
        let batch = try LoomProcess.run(["train", wide, "--run-dir", setup.path("wide"), "--max-memory", "40M"])
        #expect(batch.status == JobExit.usage.rawValue, "\(batch.stderr)")
        for fragment in ["wide.yaml:7: model: resumable: ", "training at batch 2048 needs at least", "one batch's activations",
                         "the most for layer 'dense_1'", "output [2048, 512]", "40.00 MB (--max-memory 40M)", "use a smaller batch size"] {
            #expect(batch.stderr.contains(fragment), "\(batch.stderr)\nlacks: \(fragment)")
        }
        let fits = try LoomProcess.run(["train", wide, "--run-dir", setup.path("fits"), "--max-memory", "2G"])
        #expect(fits.status == JobExit.success.rawValue, "\(fits.stderr)")
        let malformed = try LoomProcess.run(["train", wide, "--max-memory", "lots"])
        #expect(malformed.status == JobExit.usage.rawValue && malformed.stderr.contains("--max-memory must be a size"), "\(malformed.stderr)")
    }

    /// Under cron stdout and stderr are files or pipes: one plain line per epoch, timestamped
    /// log lines, no terminal control codes, even when a progress bar is asked for.
    @Test func outputIsPlainWhenNotOnATerminal() throws {
        let setup = try Setup(epochs: 2, samples: 300)
        defer { setup.remove() }
        let result = try LoomProcess.run(["train", setup.job, "--run-dir", setup.path("run"), "--verbose", "1"])
        #expect(result.status == 0, "\(result.stderr)")
        for (name, text) in [("stdout", result.stdout), ("stderr", result.stderr)] {
            #expect(!text.contains("\u{1B}") && !text.contains("\r"), "\(name) has control codes: \(text.debugDescription)")
        }
        #expect(result.stdout.contains("Epoch 2/2\n"))
        let logLines = result.stderr.split(separator: "\n")
        #expect(!logLines.isEmpty)
        for line in logLines {
            #expect(line.range(of: #"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}"#, options: .regularExpression) != nil, "\(line)")
        }
    }
}
