import Foundation
import LoomData
import LoomLayers
import LoomModels
import LoomTensor
import Logging

/// `loom train JOB`: the options of one run.
public struct TrainOptions: Sendable {
    public var jobPath: String
    /// The run folder (default: the job's run_dir, else runs/<job name>).
    public var runDirectory: String?
    /// Start over, discarding the folder's checkpoint and results.
    public var restart = false
    /// Overrides fit.workers.
    public var workers: Int?
    /// Overrides fit.verbose.
    public var verbose: Int?
    /// The memory the run may take (default: what the machine can give when it is checked).
    public var maxMemory: MemoryLimit?

    public init(jobPath: String, runDirectory: String? = nil, restart: Bool = false, workers: Int? = nil, verbose: Int? = nil,
                maxMemory: MemoryLimit? = nil) {
        (self.jobPath, self.runDirectory, self.restart, self.workers, self.verbose) = (jobPath, runDirectory, restart, workers, verbose)
        self.maxMemory = maxMemory
    }
}

/// What a finished run reports.
public struct TrainResult: Sendable {
    public var runDirectory: String
    /// The test split's loss and metrics, when the job evaluates.
    public var test: [(String, Float)]
    public var epochs: Int
    /// Whether the folder already held the finished run (nothing was trained).
    public var alreadyFinished: Bool
    public var resumedFrom: (epoch: Int, step: Int)?
}

/// Runs training jobs into run folders: checks the job, takes the folder's lock, resumes from
/// the folder's checkpoint when there is one, trains, evaluates and writes the results.
public enum TrainJob {
    /// The files a run writes (all removed by --restart).
    static let outputs = [RunRecorder.checkpointName, "model.keras", "metrics.csv", "metrics.jsonl", "history.json", "summary.txt",
                          "job.resolved.json", "preprocessing.json", "result.json"]

    public static func run(_ options: TrainOptions, logger: Logger) throws -> TrainResult {
        // Every phase stops on SIGTERM with status 4 and a line saying where: those that write
        // nothing at once, training at its next batch with a checkpoint.
        let signals = InterruptSignals()
        signals.install()
        defer { signals.uninstall() }
        signals.stopAtOnce(while: "reading the job and building the model", then: "nothing was written")
        // Where a signal waits for a safe point (a file or a removal done whole): stop there.
        func stopIfSignalled(_ place: String, _ advice: String) throws {
            if let signal = signals.signal { throw JobEnded(.interrupted, "\(InterruptSignals.name(signal)): stopped \(place); \(advice)") }
        }
        var job: Job
        do {
            job = try Job.read(options.jobPath)
        } catch let error as JobFileError {
            throw JobEnded(.usage, error.description)
        }
        if let w = options.workers { job.fit.workers = w }
        if let v = options.verbose { job.fit.verbose = v }
        // A live bar is for terminals: under cron or into a file, one plain line per epoch.
        if job.fit.verbose == 1 && isatty(STDOUT_FILENO) == 0 { job.fit.verbose = 2 }
        // A model whose layers say their input shape is built now, so a layer that does not fit
        // (in its arguments, or in memory) is refused before anything is loaded or written.
        let memory = MemoryCheck(job: job, options: options)
        let early = try memory.building { try buildModel(job, inputShapes: nil) }
        // The run folder's lock and --restart's removals are done whole before a signal stops it.
        signals.stopAtOnce(while: nil)

        let runDirectory = options.runDirectory ?? job.runDirectory ?? "runs/\(job.name)"
        let folder = try RunFolder(runDirectory)
        if options.restart {
            for name in outputs { try folder.remove(name) }
            logger.info("restart: removed the earlier run's files from \(folder.url.path)")
        }
        // The job as the folder records it; workers and verbosity change nothing in the
        // results, so a resumed run may set them differently.
        var identity = job
        (identity.fit.workers, identity.fit.verbose) = (nil, nil)
        let jobJSON = identity.resolved
        let checkpoint = try RunRecorder.readCheckpoint(folder)
        if let checkpoint, !checkpoint.job.isEquivalent(to: jobJSON, relativeTolerance: 0) {
            throw JobEnded(.usage, "\(folder.url.path) holds a run of a different job (\(differences(checkpoint.job, jobJSON))); "
                + "give another --run-dir, or --restart to discard it")
        }
        if checkpoint != nil, folder.exists("result.json"),
           case let .object(o)? = try? JSONValue.parse(String(contentsOfFile: folder.path("result.json"), encoding: .utf8)) {
            logger.info("\(folder.url.path): this job has already finished; nothing to do (--restart runs it again)")
            var test: [(String, Float)] = []
            if case let .object(t)? = o["test"] { test = t.keys.sorted().compactMap { k in t[k]?.numberValue.map { (k, Float($0)) } } }
            return TrainResult(runDirectory: folder.url.path, test: test, epochs: job.fit.epochs, alreadyFinished: true, resumedFrom: nil)
        }

        let workers = job.fit.workers ?? defaultWorkerCount()
        try stopIfSignalled("before loading the data", "run the job again to go on")
        signals.stopAtOnce(while: "loading the data", then: "nothing new was written; run the job again to go on")
        logger.info("job \(job.name): loading data")
        let data: JobData
        do {
            data = try JobData.load(job.data, workers: job.data.workers ?? workers)
        } catch {
            throw JobEnded(.failed, "data: \(error)")
        }
        if !data.skipped.isEmpty {
            logger.warning("data: \(data.skipped.count) sample(s) skipped: \(data.skipped.prefix(5).joined(separator: "; "))\(data.skipped.count > 5 ? "; ..." : "")")
        }
        logger.info("data: \(data.train.count) training, \(data.validation?.count ?? 0) validation, \(data.test?.count ?? 0) test samples")

        let samples = (train: data.train.count, test: data.test?.count ?? 0)
        let net: Model
        if let checkpoint {
            do {
                net = try KerasFile.load(folder.path(RunRecorder.checkpointName))
            } catch {
                throw JobEnded(.failed, "\(error); start over with --restart")
            }
            logger.info("resuming from the checkpoint: epoch \(checkpoint.state.epoch + 1), batch \(checkpoint.state.step)")
        } else {
            // The model built before the data serves, unless it waited for the data's shapes.
            let waited = (early as? Sequential).map { !$0.isGraphBuilt } ?? false
            net = waited ? try memory.building(samples: samples) { try buildModel(job, inputShapes: data.train.x.map { Array($0.shape.dropFirst()) }) } : early
            do {
                try net.compile(fromKerasConfig: job.compile)
            } catch {
                throw JobEnded(.usage, "\(job.places["compile"] ?? options.jobPath): compile: \(error)")
            }
        }
        net.seed = job.seed
        try checkShapes(data, net, job: options.jobPath)
        // Again with the data in memory, which the machine's figure now leaves out.
        try memory.check(net, samples: samples)
        for split in [data.train, data.validation, data.test].compactMap({ $0 }) {
            if let bad = net.labelOutOfRange(split.y) {
                throw JobEnded(.failed, "data: label \(bad.value) at \(split.origin(bad.sample)) is out of range for \(bad.reason)")
            }
        }
        // The run's files are written whole (a signal waits for them), then training polls it.
        signals.stopAtOnce(while: nil)
        try folder.write(prettyJSON(jobJSON), to: "job.resolved.json")
        try folder.write(prettyJSON(data.preprocessing.json), to: "preprocessing.json")
        try folder.write(net.summary(), to: "summary.txt")
        if let checkpoint { try RunRecorder.writeMetrics(checkpoint.state.history, to: folder) }

        try stopIfSignalled("before training", "run the job again to start")
        let recorder = RunRecorder(folder: folder, everySteps: job.fit.checkpointEverySteps, signals: signals, job: jobJSON, logger: logger)
        let callbacks = try job.fit.callbacks.map { try $0.make() } + [recorder]
        let validation = job.fit.validateOnTest ? data.test : data.validation
        logger.info("training: \(job.fit.epochs) epochs, batch \(job.fit.batchSize), \(workers) workers")
        let history: History
        do {
            history = try net.fit(x: data.train.x, y: data.train.y, batchSize: job.fit.batchSize, epochs: job.fit.epochs,
                                  verbose: job.fit.verbose.map(Verbosity.init) ?? .auto, callbacks: callbacks,
                                  validationData: validation.map { ValidationData(x: $0.x, y: $0.y) }, shuffle: job.fit.shuffle,
                                  workers: workers, resume: checkpoint?.state)
        } catch let error as JobEnded {
            throw error
        } catch {
            throw JobEnded(.failed, "fit: \(error)")
        }
        // Training is over (the last epoch's checkpoint says so): the results, result.json last.
        // A signal from here on waits for the file being written, then stops before the next.
        let rest = "training is complete: run the job again to write the rest of its results"
        try net.save(folder.path("model.keras"))
        try stopIfSignalled("after writing model.keras", rest)
        var test: [(String, Float)] = []
        if job.evaluate, let t = data.test {
            let logs = try net.evaluate(x: t.x, y: t.y, batchSize: Swift.max(job.fit.batchSize, 256), verbose: .silent, workers: workers)
            test = logs.map { ($0.key, $0.value) }
            let values = test.map { "\($0.0) \(String(format: "%.4f", $0.1))" }.joined(separator: ", ")
            logger.info("test: \(values)")
        }
        // A forecast is worth what it adds to repeating the last value seen: that baseline's
        // mean absolute error on the same test windows.
        if job.evaluate, let feature = data.naiveForecastFeature, let t = data.test {
            let x = t.x[0], y = t.y[0].scalars
            let (steps, width) = (x.shape[1], x.shape[2])
            let xs = x.scalars
            let errors = y.indices.map { abs(y[$0] - xs[($0 * steps + steps - 1) * width + feature]) }
            let naive = errors.reduce(0, +) / Float(Swift.max(errors.count, 1))
            test.append(("naive_last_value_mae", naive))
            logger.info("test: the naive last-value forecast's mean absolute error is \(String(format: "%.4f", naive))")
        }
        if !data.filled.isEmpty {
            logger.info("data: \(data.filled.count) missing value(s) interpolated linearly (first: \(data.filled[0]))")
        }
        try stopIfSignalled("after evaluating", rest)
        var testJSON: [String: JSONValue] = [:]
        for (k, v) in test { testJSON[k] = jsonNumber(v) }
        let result: JSONValue = ["job": .string(job.name), "epochs_run": .int(history.epochs.count), "test": .object(testJSON),
                                 "finished": .string(ISO8601DateFormatter().string(from: Date()))]
        try folder.write(prettyJSON(result), to: "result.json")
        return TrainResult(runDirectory: folder.url.path, test: test, epochs: history.epochs.count, alreadyFinished: false,
                           resumedFrom: checkpoint.map { ($0.state.epoch, $0.state.step) })
    }

    /// The memory a job's model may take, checked as its weights are created (the weights
    /// with the optimizer's slots and a gradient) and once it is built (with one batch's
    /// activations), against --max-memory or what the machine can give at that moment.
    struct MemoryCheck {
        let job: Job
        let options: TrainOptions
        /// Training with the job's optimizer (with no slots when compile names none it can
        /// make: compile reports that later, with the job's line).
        let work: MemoryEstimate.Work

        init(job: Job, options: TrainOptions) {
            (self.job, self.options) = (job, options)
            var optimizer: Optimizer? = nil
            if case let .object(c) = job.compile, let value = c["optimizer"] {
                optimizer = try? optimizers.make(value, owner: "compile", argument: "optimizer")
            }
            work = optimizer.map(MemoryEstimate.Work.training) ?? .training(slots: 0, optimizer: "")
        }

        var limit: MemoryLimit? { options.maxMemory ?? MemoryLimit.machine() }

        /// The model `build` makes, measured first: built once with uninitialized weights,
        /// each checked as it is made, then estimated whole with one batch's activations, and
        /// only then built for real.
        func building(samples: (train: Int, test: Int)? = nil, _ build: () throws -> Model) throws -> Model {
            guard let limit else { return try build() }
            let budget = MemoryEstimate.budget(limit: limit, for: work)
            // A .keras file's weights are read from it, so it is loaded once, each weight checked.
            if case .file = job.model { return try MemoryBudget.$current.withValue(budget, operation: build) }
            try check(try budget.sizing(build), samples: samples)
            return try build()
        }

        /// Refuses a built model whose training needs more than the limit; `samples` (once the
        /// data is loaded) bounds the batches.
        func check(_ net: Model, samples: (train: Int, test: Int)? = nil) throws {
            guard let limit, (net as? Sequential)?.isGraphBuilt ?? true else { return }
            // Training, then the test split's evaluation (in batches of at least 256).
            let batch = Swift.min(job.fit.batchSize, Swift.max(samples?.train ?? .max, 1))
            let testBatch = Swift.min(Swift.max(job.fit.batchSize, 256), Swift.max(samples?.test ?? .max, 1))
            let estimates = [MemoryEstimate(net, batchSize: batch, work: net.compiled.map { .training($0.optimizer) } ?? work),
                             MemoryEstimate(net, batchSize: testBatch, work: .inference(outputSamples: 0))]
            do {
                for estimate in estimates { try estimate.check(against: limit, model: net.name) }
            } catch {
                throw JobEnded(.usage, "\(job.places["model"] ?? options.jobPath): model: \(error)")
            }
        }
    }

    /// The job's model, built for `inputShapes` (per sample) when its config gives none; nil
    /// when it cannot be built yet. Mistakes are usage errors naming the job file.
    static func buildModel(_ job: Job, inputShapes: [[Int]]?) throws -> Model {
        // The job's seed alone decides the initial weights, whatever else the process builds.
        // Its layers are named as a fresh Keras session names them.
        try RandomSeeds.withSeed(job.seed) { try LayerNames.withFreshCounters { try buildModelSeeded(job, inputShapes: inputShapes) } }
    }

    private static func buildModelSeeded(_ job: Job, inputShapes: [[Int]]?) throws -> Model {
        do {
            switch job.model {
            case let .config(config, _):
                let net = try Model.fromKerasConfig(config)
                if let sequential = net as? Sequential, sequential.inputShapes.isEmpty || sequential.inputShapes[0].isEmpty {
                    guard let shape = inputShapes?.first else { return net }
                    try sequential.build(inputShape: [nil] + shape.map { Optional($0) })
                }
                return net
            case let .file(path):
                return try KerasFile.load(path)
            }
        } catch {
            throw JobEnded(.usage, "\(job.places["model"] ?? job.name): model: \(error)")
        }
    }

    /// The data's arrays against the model's inputs and outputs.
    static func checkShapes(_ data: JobData, _ net: Model, job: String) throws {
        guard data.train.x.count == net.inputShapes.count else {
            throw JobEnded(.usage, "\(job): model: the model has \(net.inputShapes.count) input(s) but the data gives \(data.train.x.count)")
        }
        for (x, expected) in zip(data.train.x, net.inputShapes) {
            guard expected.acceptsSamples(of: x) else {
                throw JobEnded(.usage, "\(job): model: the data's samples have shape \(Array(x.shape.dropFirst())) but the model's input is "
                    + "\(expected.text) (set data.reshape, or the Input layer's shape)")
            }
        }
    }

    static func differences(_ a: JSONValue, _ b: JSONValue, path: String = "") -> String {
        if case let .object(x) = a, case let .object(y) = b {
            for key in Set(x.keys).union(y.keys).sorted() where !(x[key] ?? .null).isEquivalent(to: y[key] ?? .null, relativeTolerance: 0) {
                return differences(x[key] ?? .null, y[key] ?? .null, path: path.isEmpty ? key : "\(path).\(key)")
            }
        }
        return "\(path.isEmpty ? "the job" : path) was \(a), is now \(b)"
    }
}

/// JSON with one key per line, for files people read.
func prettyJSON(_ value: JSONValue) -> String {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
    return (try? encoder.encode(value)).map { String(decoding: $0, as: UTF8.self) + "\n" } ?? value.description + "\n"
}
