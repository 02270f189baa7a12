import Foundation
import LoomLayers
import LoomTensor

/// How much fit, evaluate and predict print (Keras's verbose).
public enum Verbosity: Sendable, Equatable {
    /// A live bar on a terminal, one line per epoch otherwise.
    case auto
    /// Nothing.
    case silent
    /// The live progress bar (Keras's verbose=1).
    case progressBar
    /// One line per epoch (Keras's verbose=2).
    case oneLinePerEpoch

    /// Keras's integer levels: 0 silent, 1 bar, 2 one line per epoch.
    public init(_ level: Int) {
        self = level <= 0 ? .silent : level == 1 ? .progressBar : .oneLinePerEpoch
    }

    var resolved: Verbosity {
        guard self == .auto else { return self }
        return isatty(STDOUT_FILENO) != 0 ? .progressBar : .oneLinePerEpoch
    }
}

/// One batch from a pipeline: inputs, targets and optional sample weights.
public struct TrainingBatch: Sendable {
    public var x: [Tensor], y: [Tensor], sampleWeight: Tensor?
    public init(x: [Tensor], y: [Tensor], sampleWeight: Tensor? = nil) {
        self.x = x
        self.y = y
        self.sampleWeight = sampleWeight
    }
}

/// Batches for fit, epoch by epoch (LoomData's datasets provide them): `epoch(e)` returns a
/// function giving epoch e's batches in order, nil at the end.
public struct BatchStream: Sendable {
    /// Batches per epoch, when known.
    public let count: Int?
    public let epoch: @Sendable (Int) throws -> () throws -> TrainingBatch?

    public init(count: Int?, epoch: @escaping @Sendable (Int) throws -> () throws -> TrainingBatch?) {
        self.count = count
        self.epoch = epoch
    }
}

/// Validation data for fit: inputs, labels and optional sample weights.
public struct ValidationData: Sendable {
    public let x: [Tensor], y: [Tensor], sampleWeight: Tensor?
    public init(x: [Tensor], y: [Tensor], sampleWeight: Tensor? = nil) {
        self.x = x
        self.y = y
        self.sampleWeight = sampleWeight
    }
    public init(x: Tensor, y: Tensor, sampleWeight: Tensor? = nil) { self.init(x: [x], y: [y], sampleWeight: sampleWeight) }
}

/// Arrays with one sample per row along axis 0, checked to agree in length.
struct ArrayData {
    let y: [Tensor], sampleWeight: Tensor?
    let count: Int
    /// The input arrays, and for a batch picked by index (`rows(_: [Int])`) the rows of them it
    /// holds: those are gathered when read, and a shard (`rows(_: Range<Int>)`) gathers only its
    /// own, so the workers that train on a shuffled batch gather it between them.
    private let inputs: [Tensor]
    private let inputRows: [Int]?

    /// The inputs (gathered here for a batch picked by index).
    var x: [Tensor] {
        guard let inputRows else { return inputs }
        let picks = Tensor(inputRows.map(Float.init))
        return inputs.map { $0.gather(picks) }
    }

    /// Arrays with the inputs' shapes after the batch axis, not gathered: enough to build a model.
    var inputsForShapes: [Tensor] { inputs }

    init(x: [Tensor], y: [Tensor], sampleWeight: Tensor?, method: String) throws {
        guard !x.isEmpty else { throw LoomTrainingError("\(method): no input arrays given") }
        for (i, t) in x.enumerated() where t.rank == 0 {
            throw LoomTrainingError("\(method): input \(i) is a scalar; inputs need a batch axis")
        }
        let n = x[0].shape[0]
        var lengths = x.enumerated().map { ("x[\($0.offset)]", $0.element.shape.first ?? 0) }
        lengths += y.enumerated().map { ("y[\($0.offset)]", $0.element.shape.first ?? 0) }
        if let w = sampleWeight { lengths.append(("sample_weight", w.shape.first ?? 0)) }
        if lengths.contains(where: { $0.1 != n }) {
            let described = lengths.map { "\($0.0): \($0.1)" }.joined(separator: ", ")
            throw LoomTrainingError("\(method): data cardinality is ambiguous: make sure all arrays contain the same number of samples (\(described))")
        }
        inputs = x
        inputRows = nil
        self.y = y
        self.sampleWeight = sampleWeight
        count = n
    }

    /// A pipeline's batch, checked as fit checks its arrays.
    init(_ batch: TrainingBatch, method: String) throws {
        try self.init(x: batch.x, y: batch.y, sampleWeight: batch.sampleWeight, method: method)
    }

    init(_ x: [Tensor], _ y: [Tensor], _ w: Tensor?, count: Int, inputRows: [Int]? = nil) {
        inputs = x
        self.inputRows = inputRows
        self.y = y
        sampleWeight = w
        self.count = count
    }

    /// Rows `range` (contiguous) of every array, the inputs gathered.
    func rows(_ range: Range<Int>) -> ArrayData {
        func cut(_ t: Tensor) -> Tensor {
            if range == 0..<count { return t }
            return t.slice(lower: [range.lowerBound] + Array(repeating: 0, count: t.rank - 1),
                           upper: [range.upperBound] + t.shape.dropFirst())
        }
        let x: [Tensor]
        if let inputRows {
            let picks = Tensor(inputRows[range].map(Float.init))
            x = inputs.map { $0.gather(picks) }
        } else {
            x = inputs.map(cut)
        }
        return ArrayData(x, y.map(cut), sampleWeight.map(cut), count: range.count)
    }

    /// The rows at `indices` of every array; the inputs' rows are gathered when read.
    func rows(_ indices: [Int]) -> ArrayData {
        let picks = Tensor(indices.map(Float.init))
        return ArrayData(inputs, y.map { $0.gather(picks) }, sampleWeight.map { $0.gather(picks) }, count: indices.count,
                         inputRows: inputRows.map { r in indices.map { r[$0] } } ?? indices)
    }
}

/// Throws when a batch's inputs hold NaN or infinity, naming the batch and the sample.
func checkFinite(_ inputs: [Tensor], batch: Int, firstSample: Int, method: String) throws(LoomTrainingError) {
    for (i, t) in inputs.enumerated() {
        let bad = t.withUnsafeBufferPointer(firstNonFinite)
        if let bad {
            let perSample = t.count / Swift.max(t.shape.first ?? 1, 1)
            let value = t.withUnsafeBufferPointer { $0[bad] }
            throw LoomTrainingError("\(method): batch \(batch) has \(value) in input \(i) at sample \(firstSample + bad / Swift.max(perSample, 1)); "
                + "inputs must be finite")
        }
    }
}

extension Model {
    // MARK: - fit

    /// Trains on arrays (Keras's fit) and returns the per-epoch logs.
    @discardableResult
    public func fit(x: Tensor, y: Tensor, batchSize: Int = 32, epochs: Int = 1, verbose: Verbosity = .auto,
                    callbacks: [Callback] = [], validationSplit: Float = 0, validationData: ValidationData? = nil,
                    shuffle: Bool = true, classWeight: [Int: Float]? = nil, sampleWeight: Tensor? = nil,
                    initialEpoch: Int = 0, stepsPerEpoch: Int? = nil, validationFreq: Int = 1, workers: Int? = nil,
                    resume: TrainingState? = nil) throws -> History {
        try fit(x: [x], y: [y], batchSize: batchSize, epochs: epochs, verbose: verbose, callbacks: callbacks,
                validationSplit: validationSplit, validationData: validationData, shuffle: shuffle, classWeight: classWeight,
                sampleWeight: sampleWeight, initialEpoch: initialEpoch, stepsPerEpoch: stepsPerEpoch, validationFreq: validationFreq,
                workers: workers, resume: resume)
    }

    /// fit for models with several inputs or outputs: one array per input and per output.
    /// `workers` threads share each batch (default: the model's `workers`, else $LOOM_WORKERS,
    /// else the number of cores); the result does not depend on how many. With `resume` (a
    /// `trainingState()` taken by a callback of an earlier fit of this model, with the same
    /// data, arguments and callbacks, the weights and optimizer restored), fit carries on from
    /// that batch and ends as the uninterrupted fit would have.
    @discardableResult
    public func fit(x: [Tensor], y: [Tensor], batchSize: Int = 32, epochs: Int = 1, verbose: Verbosity = .auto,
                    callbacks: [Callback] = [], validationSplit: Float = 0, validationData: ValidationData? = nil,
                    shuffle: Bool = true, classWeight: [Int: Float]? = nil, sampleWeight: Tensor? = nil,
                    initialEpoch: Int = 0, stepsPerEpoch: Int? = nil, validationFreq: Int = 1, workers: Int? = nil,
                    resume: TrainingState? = nil) throws -> History {
        let compiled = try requireCompiled("fit")
        let workers = try resolveWorkers(workers)
        guard batchSize > 0 else { throw ConfigError(name, argument: "batch_size", "must be positive, got \(batchSize)") }
        guard epochs >= 0, initialEpoch >= 0 else { throw ConfigError(name, argument: "epochs", "must not be negative") }
        guard validationSplit >= 0 && validationSplit < 1 else {
            throw ConfigError(name, argument: "validation_split", "must be in [0, 1), got \(validationSplit)")
        }
        guard validationFreq > 0 else { throw ConfigError(name, argument: "validation_freq", "must be positive, got \(validationFreq)") }
        if let s = stepsPerEpoch, s <= 0 { throw ConfigError(name, argument: "steps_per_epoch", "must be positive, got \(s)") }
        try checkOutputCount(y, "fit")
        var all = try ArrayData(x: x, y: y, sampleWeight: sampleWeight, method: "fit")
        if let classWeight {
            all = ArrayData(all.x, all.y, try weighByClass(all.y[0], classWeight, sampleWeight: all.sampleWeight), count: all.count)
        }
        var validation: ArrayData? = nil
        if let v = validationData {
            validation = try ArrayData(x: v.x, y: v.y, sampleWeight: v.sampleWeight, method: "fit (validation_data)")
            try checkOutputCount(v.y, "fit (validation_data)")
        } else if validationSplit > 0 {
            // Keras takes the last fraction of the samples, before any shuffling.
            let split = Int(Float(all.count) * (1 - validationSplit))
            guard split > 0 && split < all.count else {
                throw ConfigError(name, argument: "validation_split", "leaves no samples for training or validation (\(all.count) samples)")
            }
            validation = all.rows(split..<all.count)
            all = all.rows(0..<split)
        }
        guard all.count > 0 else { throw LoomTrainingError("fit: no training samples") }
        try checkSparseLabels(all.y, compiled: compiled, method: "fit")
        if let validation { try checkSparseLabels(validation.y, compiled: compiled, method: "fit (validation)") }

        let batches = (all.count + batchSize - 1) / batchSize
        let generator = RandomGenerator(seed: seed)
        var cursor = 0
        var order: [Int]? = nil
        if resume != nil && stepsPerEpoch != nil {
            throw ConfigError(name, argument: "steps_per_epoch", "a fit with steps_per_epoch over arrays cannot be resumed mid-way")
        }
        return try runEpochs(compiled: compiled, workers: workers, epochs: epochs, initialEpoch: initialEpoch,
                             steps: stepsPerEpoch ?? batches, verbose: verbose, callbacks: callbacks,
                             validationFreq: validationFreq, hasValidation: validation != nil, resume: resume,
                             beginEpoch: { epoch, startStep in
                                 if stepsPerEpoch == nil { cursor = Swift.min(startStep * batchSize, all.count) }
                                 if stepsPerEpoch == nil || order == nil {
                                     order = shuffle ? permutation(all.count, generator: generator, stream: UInt64(epoch)) : nil
                                 }
                             },
                             nextBatch: { epoch, _ in
                                 if cursor >= all.count {
                                     cursor = 0
                                     if shuffle { order = permutation(all.count, generator: generator, stream: UInt64(epoch) &+ (1 << 32)) }
                                 }
                                 let end = Swift.min(cursor + batchSize, all.count)
                                 // Rows by index either way, so the workers gather the inputs, each its shard.
                                 let batch = all.rows(order.map { Array($0[cursor..<end]) } ?? Array(cursor..<end))
                                 defer { cursor = end }
                                 return (batch, cursor)
                             },
                             validate: { list in
                                 try self.evaluateLogs(validation!, batchSize: batchSize, callbacks: list, method: "fit (validation)",
                                                       workers: workers)
                             })
    }

    /// fit on batches from a pipeline (LoomData's datasets): each epoch reads the stream's
    /// batches for that epoch, or `stepsPerEpoch` batches carrying on across epochs. The time
    /// spent waiting for each batch is kept in the History's `dataWait`.
    @discardableResult
    public func fit(_ batches: BatchStream, epochs: Int = 1, verbose: Verbosity = .auto, callbacks: [Callback] = [],
                    validation: BatchStream? = nil, initialEpoch: Int = 0, stepsPerEpoch: Int? = nil, validationFreq: Int = 1,
                    workers: Int? = nil, resume: TrainingState? = nil) throws -> History {
        let compiled = try requireCompiled("fit")
        let workers = try resolveWorkers(workers)
        guard epochs >= 0, initialEpoch >= 0 else { throw ConfigError(name, argument: "epochs", "must not be negative") }
        guard validationFreq > 0 else { throw ConfigError(name, argument: "validation_freq", "must be positive, got \(validationFreq)") }
        if let s = stepsPerEpoch, s <= 0 { throw ConfigError(name, argument: "steps_per_epoch", "must be positive, got \(s)") }
        var next: (() throws -> TrainingBatch?)? = nil
        var pass = 0
        var seen = 0
        return try runEpochs(compiled: compiled, workers: workers, epochs: epochs, initialEpoch: initialEpoch,
                             steps: stepsPerEpoch ?? batches.count, verbose: verbose, callbacks: callbacks,
                             validationFreq: validationFreq, hasValidation: validation != nil, resume: resume,
                             beginEpoch: { epoch, startStep in
                                 if stepsPerEpoch == nil || next == nil {
                                     next = try batches.epoch(epoch)
                                     pass = epoch
                                     seen = 0
                                 }
                                 // A resumed epoch reads past the batches already trained: the
                                 // pipeline is deterministic, so the next one is the one due.
                                 for _ in 0..<startStep {
                                     guard let b = try next!() else { break }
                                     seen += b.x.first?.shape.first ?? 0
                                 }
                             },
                             nextBatch: { epoch, step in
                                 var batch = try next!()
                                 if batch == nil, stepsPerEpoch != nil {
                                     // A finite stream read by steps: the next pass starts over.
                                     pass += 1
                                     next = try batches.epoch(pass)
                                     seen = 0
                                     batch = try next!()
                                 }
                                 guard let batch else { return nil }
                                 let data = try ArrayData(batch, method: "fit (epoch \(epoch + 1), batch \(step))")
                                 try self.checkOutputCount(data.y, "fit")
                                 try self.checkSparseLabels(data.y, compiled: compiled, method: "fit (epoch \(epoch + 1), batch \(step))")
                                 defer { seen += data.count }
                                 return (data, seen)
                             },
                             validate: { list in
                                 let stream = try validation!.epoch(0)
                                 var first = 0
                                 return try self.evaluateBatches(steps: validation!.count, callbacks: list, method: "fit (validation)",
                                                                 workers: workers) { _ in
                                     guard let b = try stream() else { return nil }
                                     let data = try ArrayData(b, method: "fit (validation)")
                                     defer { first += data.count }
                                     return (data, first)
                                 }
                             })
    }

    /// The epoch loop fit shares between arrays and pipelines: callbacks, the steps (until
    /// `nextBatch` gives nil when `steps` is unknown), validation every `validationFreq`
    /// epochs, early stops, and the time spent waiting for batches.
    private func runEpochs(compiled: CompiledModel, workers: Int, epochs: Int, initialEpoch: Int, steps: Int?,
                           verbose: Verbosity, callbacks: [Callback], validationFreq: Int, hasValidation: Bool,
                           resume: TrainingState?, beginEpoch: (_ epoch: Int, _ startStep: Int) throws -> Void,
                           nextBatch: (_ epoch: Int, _ step: Int) throws -> (ArrayData, Int)?,
                           validate: ([Callback]) throws -> Logs) throws -> History {
        let history = History()
        let verbosity = verbose.resolved
        let list = attached(callbacks, verbosity) + [history]
        for c in list {
            c.model = self
            c.params = ["epochs": epochs, "verbose": verbosity == .silent ? 0 : verbosity == .progressBar ? 1 : 2]
            if let steps { c.params["steps"] = steps }
        }
        stopTraining = false
        let progress = FitProgress(callbacks: callbacks, history: history)
        fitProgress = progress
        defer { fitProgress = nil }
        for c in list { try c.onTrainBegin(logs: Logs()) }
        var firstEpoch = initialEpoch
        if let resume {
            try restore(resume, callbacks: callbacks, history: history, compiled: compiled)
            firstEpoch = resume.epoch
            stopTraining = resume.stopped
        }
        var lastLogs = Logs()
        for epoch in firstEpoch..<Swift.max(epochs, firstEpoch) where !stopTraining {
            compiled.resetMetrics()
            let startStep = epoch == resume?.epoch ? resume!.step : 0
            if startStep > 0 {
                compiled.pendingStates = resume!.metrics
                compiled.applyPendingStates()
            }
            (progress.epoch, progress.step) = (epoch, startStep)
            for c in list { try c.onEpochBegin(epoch, logs: Logs()) }
            try beginEpoch(epoch, startStep)
            var waited = Duration.zero
            var step = startStep
            while steps.map({ step < $0 }) ?? true {
                let asked = ContinuousClock.now
                guard let (batch, firstSample) = try nextBatch(epoch, step) else { break }
                waited += ContinuousClock.now - asked
                for c in list { try c.onTrainBatchBegin(step, logs: Logs()) }
                do {
                    // Each worker checks its shard's inputs as it gathers them.
                    try trainStep(batch, compiled: compiled, workers: workers,
                                  inputCheck: InputCheck(batch: step, firstSample: firstSample, method: "fit (epoch \(epoch + 1))"))
                } catch let error as BadShardInput {
                    throw error.error
                } catch {
                    throw LoomTrainingError("fit: epoch \(epoch + 1), batch \(step): \(error)")
                }
                let logs = Logs(compiled.logs())
                progress.step = step + 1
                for c in list { try c.onTrainBatchEnd(step, logs: logs) }
                step += 1
                if stopTraining { break }
            }
            history.recordDataWait(waited)
            var epochLogs = Logs(compiled.logs())
            if hasValidation && (epoch + 1) % validationFreq == 0 {
                for (k, v) in try validate(list) { epochLogs["val_" + k] = v }
            }
            for c in list {
                for (k, v) in c.epochLogEntries(epoch) { epochLogs[k] = v }
                try c.onEpochEnd(epoch, logs: epochLogs)
            }
            lastLogs = epochLogs
            (progress.epoch, progress.step) = (epoch + 1, 0)
            for c in list { try c.onEpochRecorded(epoch) }
        }
        for c in list { try c.onTrainEnd(logs: lastLogs) }
        return history
    }

    /// Integer labels for sparse losses must be classes of the output: checked once over all
    /// the data, so the error names the sample.
    func checkSparseLabels(_ y: [Tensor], compiled: CompiledModel, method: String) throws {
        if let bad = labelOutOfRange(y, compiled: compiled) {
            throw LoomTrainingError("\(method): label \(bad.value) of sample \(bad.sample) is out of range for \(bad.reason)")
        }
    }

    /// The first label (output `output`, sample `sample`) that a sparse loss of the compiled
    /// model cannot take, and why; nil when all are classes of their output.
    public func labelOutOfRange(_ y: [Tensor]) -> (output: Int, sample: Int, value: Float, reason: String)? {
        compiled.flatMap { labelOutOfRange(y, compiled: $0) }
    }

    func labelOutOfRange(_ y: [Tensor], compiled: CompiledModel) -> (output: Int, sample: Int, value: Float, reason: String)? {
        for (o, loss) in compiled.losses.enumerated() where loss?.takesSparseLabels == true {
            guard o < outputShapes.count, o < y.count, let classes = outputShapes[o].last ?? nil else { continue }
            let labels = y[o].scalars
            if let bad = labels.firstIndex(where: { $0 != $0.rounded() || $0 < 0 || $0 >= Float(classes) }) {
                let perSample = Swift.max(1, labels.count / Swift.max(y[o].shape.first ?? 1, 1))
                return (o, bad / perSample, labels[bad], "\(loss!.name): the output '\(outputNames[o])' has \(classes) classes, "
                    + "so labels must be integers in [0, \(classes))")
            }
        }
        return nil
    }

    /// The user's callbacks and, unless silent, a progress bar, all pointed at this model.
    private func attached(_ callbacks: [Callback], _ verbosity: Verbosity) -> [Callback] {
        let list = verbosity == .silent ? callbacks : callbacks + [ProgressBar(verbosity: verbosity)]
        for c in list { c.model = self }
        return list
    }

    /// The worker count to use: the argument, the model's, $LOOM_WORKERS, the cores.
    public func resolveWorkers(_ requested: Int?) throws -> Int {
        let n = requested ?? workers ?? defaultWorkerCount()
        guard n >= 1 else { throw ConfigError(name, argument: "workers", "must be at least 1, got \(n)") }
        return n
    }

    func checkOutputCount(_ y: [Tensor], _ method: String) throws {
        guard y.count == modelOutputCount else {
            throw LoomTrainingError("\(method): the model has \(modelOutputCount) output\(modelOutputCount == 1 ? "" : "s") but \(y.count) label array\(y.count == 1 ? " was" : "s were") given")
        }
    }

    /// Sample weights from class weights: each sample weighs what its class does (the label,
    /// the argmax of a one-hot row, or the rounded value of a binary label).
    private func weighByClass(_ y: Tensor, _ classWeight: [Int: Float], sampleWeight: Tensor?) throws -> Tensor {
        let n = y.shape.first ?? 0
        let classes: [Int]
        if y.rank >= 2 && y.shape.last! > 1 {
            classes = y.reshaped([n, y.count / Swift.max(n, 1)]).argmax(axis: 1).scalars.map { Int($0) }
        } else {
            classes = y.scalars.map { Int($0.rounded()) }
        }
        var w = [Float](repeating: 1, count: n)
        for (i, c) in classes.enumerated() {
            guard let cw = classWeight[c] else {
                throw ConfigError(name, argument: "class_weight", "has no weight for class \(c) (sample \(i))")
            }
            w[i] = cw
        }
        var weights = Tensor(w)
        if let sampleWeight { weights = weights * sampleWeight.reshaped([n]) }
        return weights
    }

    /// One optimizer step on a batch, split across `workers`: forward in training mode, loss
    /// plus every regularization penalty, gradients of the trainable weights, the update (then
    /// the constraints), then the layers' state updates.
    func trainStep(_ batch: ArrayData, compiled: CompiledModel, workers: Int, inputCheck: InputCheck? = nil) throws {
        let result = try shardedStep(batch, compiled: compiled, workers: workers, training: true, inputCheck: inputCheck)
        try compiled.resolveMetrics(yTrue: batch.y, yPred: result.yPred, outputNames: outputNames)
        compiled.optimizer.apply(result.gradients, deferred: result.deferred, to: trainableWeights, pool: workerPool(Model.effectiveWorkers(workers, samples: batch.count)))
        result.stateUpdates.applyStateUpdates()
        trainStepsRun += 1
        try compiled.record(total: result.total, parts: result.parts, batchSize: batch.count, yTrue: batch.y,
                            yPred: result.yPred, sampleWeight: batch.sampleWeight)
    }

    // MARK: - evaluate

    /// The loss and metrics on arrays (Keras's evaluate), as logs: "loss" first, then metrics.
    @discardableResult
    public func evaluate(x: Tensor, y: Tensor, batchSize: Int = 32, verbose: Verbosity = .auto, sampleWeight: Tensor? = nil,
                         callbacks: [Callback] = [], workers: Int? = nil) throws -> Logs {
        try evaluate(x: [x], y: [y], batchSize: batchSize, verbose: verbose, sampleWeight: sampleWeight, callbacks: callbacks,
                     workers: workers)
    }

    /// evaluate for models with several inputs or outputs.
    @discardableResult
    public func evaluate(x: [Tensor], y: [Tensor], batchSize: Int = 32, verbose: Verbosity = .auto, sampleWeight: Tensor? = nil,
                         callbacks: [Callback] = [], workers: Int? = nil) throws -> Logs {
        _ = try requireCompiled("evaluate")
        guard batchSize > 0 else { throw ConfigError(name, argument: "batch_size", "must be positive, got \(batchSize)") }
        try checkOutputCount(y, "evaluate")
        let data = try ArrayData(x: x, y: y, sampleWeight: sampleWeight, method: "evaluate")
        try checkSparseLabels(data.y, compiled: try requireCompiled("evaluate"), method: "evaluate")
        return try evaluateLogs(data, batchSize: batchSize, callbacks: attached(callbacks, verbose.resolved), method: "evaluate",
                                workers: try resolveWorkers(workers))
    }

    func evaluateLogs(_ data: ArrayData, batchSize: Int, callbacks: [Callback], method: String, workers: Int) throws -> Logs {
        let steps = (data.count + batchSize - 1) / batchSize
        return try evaluateBatches(steps: steps, callbacks: callbacks, method: method, workers: workers) { step in
            guard step < steps else { return nil }
            let range = (step * batchSize)..<Swift.min((step + 1) * batchSize, data.count)
            return (data.rows(range), range.lowerBound)
        }
    }

    /// The evaluation loop over batches `next(step)` gives (with the first sample's index),
    /// until it gives nil.
    func evaluateBatches(steps: Int?, callbacks: [Callback], method: String, workers: Int,
                         _ next: (Int) throws -> (ArrayData, Int)?) throws -> Logs {
        let compiled = try requireCompiled(method)
        compiled.resetMetrics()
        for c in callbacks {
            if let steps { c.params["test_steps"] = steps }
            try c.onTestBegin(logs: Logs())
        }
        var step = 0
        while let (batch, first) = try next(step) {
            for c in callbacks { try c.onTestBatchBegin(step, logs: Logs()) }
            try checkFinite(batch.x, batch: step, firstSample: first, method: method)
            try testStep(batch, compiled: compiled, workers: workers)
            let logs = Logs(compiled.logs())
            for c in callbacks { try c.onTestBatchEnd(step, logs: logs) }
            step += 1
        }
        let logs = Logs(compiled.logs())
        for c in callbacks { try c.onTestEnd(logs: logs) }
        return logs
    }

    func testStep(_ batch: ArrayData, compiled: CompiledModel, workers: Int) throws {
        let result = try shardedStep(batch, compiled: compiled, workers: workers, training: false)
        try compiled.resolveMetrics(yTrue: batch.y, yPred: result.yPred, outputNames: outputNames)
        try compiled.record(total: result.total, parts: result.parts, batchSize: batch.count, yTrue: batch.y,
                            yPred: result.yPred, sampleWeight: batch.sampleWeight)
    }

    // MARK: - predict

    /// The outputs for every sample, computed in batches with dropout off (Keras's predict).
    public func predict(_ x: Tensor, batchSize: Int = 32, verbose: Verbosity = .auto, callbacks: [Callback] = [],
                        workers: Int? = nil) throws -> Tensor {
        let ys = try predict([x], batchSize: batchSize, verbose: verbose, callbacks: callbacks, workers: workers)
        guard ys.count == 1 else { throw LoomTrainingError("predict: the model has \(ys.count) outputs; use predict(_: [Tensor])") }
        return ys[0]
    }

    /// predict for models with several inputs or outputs: one array per output.
    public func predict(_ x: [Tensor], batchSize: Int = 32, verbose: Verbosity = .auto, callbacks: [Callback] = [],
                        workers: Int? = nil) throws -> [Tensor] {
        let workers = try resolveWorkers(workers)
        guard batchSize > 0 else { throw ConfigError(name, argument: "batch_size", "must be positive, got \(batchSize)") }
        let data = try ArrayData(x: x, y: [], sampleWeight: nil, method: "predict")
        let list = attached(callbacks, verbose.resolved)
        let steps = (data.count + batchSize - 1) / batchSize
        for c in list { c.params["steps"] = steps; try c.onPredictBegin(logs: Logs()) }
        var parts: [[Tensor]] = []
        for step in 0..<steps {
            let range = (step * batchSize)..<Swift.min((step + 1) * batchSize, data.count)
            for c in list { try c.onPredictBatchBegin(step, logs: Logs()) }
            let batch = data.rows(range)
            try checkFinite(batch.x, batch: step, firstSample: range.lowerBound, method: "predict")
            parts.append(try shardedPredict(batch.x, workers: workers))
            for c in list { try c.onPredictBatchEnd(step, logs: Logs()) }
        }
        for c in list { try c.onPredictEnd(logs: Logs()) }
        guard let first = parts.first else { return [] }
        return first.indices.map { o in parts.count == 1 ? parts[0][o] : Tensor.concatenate(parts.map { $0[o] }, axis: 0) }
    }

    // MARK: - One batch

    /// One optimizer step on one batch; returns the logs after it (Keras's train_on_batch).
    @discardableResult
    public func trainOnBatch(x: [Tensor], y: [Tensor], sampleWeight: Tensor? = nil, classWeight: [Int: Float]? = nil) throws -> Logs {
        let compiled = try requireCompiled("train_on_batch")
        try checkOutputCount(y, "train_on_batch")
        var data = try ArrayData(x: x, y: y, sampleWeight: sampleWeight, method: "train_on_batch")
        if let classWeight {
            data = ArrayData(data.x, data.y, try weighByClass(data.y[0], classWeight, sampleWeight: data.sampleWeight), count: data.count)
        }
        try checkFinite(data.x, batch: 0, firstSample: 0, method: "train_on_batch")
        compiled.resetMetrics()
        try trainStep(data, compiled: compiled, workers: try resolveWorkers(nil))
        return Logs(compiled.logs())
    }

    /// train_on_batch for one input and one output.
    @discardableResult
    public func trainOnBatch(x: Tensor, y: Tensor, sampleWeight: Tensor? = nil, classWeight: [Int: Float]? = nil) throws -> Logs {
        try trainOnBatch(x: [x], y: [y], sampleWeight: sampleWeight, classWeight: classWeight)
    }

    /// The loss and metrics of one batch without training (Keras's test_on_batch).
    @discardableResult
    public func testOnBatch(x: [Tensor], y: [Tensor], sampleWeight: Tensor? = nil) throws -> Logs {
        let compiled = try requireCompiled("test_on_batch")
        try checkOutputCount(y, "test_on_batch")
        let data = try ArrayData(x: x, y: y, sampleWeight: sampleWeight, method: "test_on_batch")
        try checkFinite(data.x, batch: 0, firstSample: 0, method: "test_on_batch")
        compiled.resetMetrics()
        try testStep(data, compiled: compiled, workers: try resolveWorkers(nil))
        return Logs(compiled.logs())
    }

    /// test_on_batch for one input and one output.
    @discardableResult
    public func testOnBatch(x: Tensor, y: Tensor, sampleWeight: Tensor? = nil) throws -> Logs {
        try testOnBatch(x: [x], y: [y], sampleWeight: sampleWeight)
    }

    /// The outputs of one batch (Keras's predict_on_batch).
    public func predictOnBatch(_ x: [Tensor]) throws -> [Tensor] {
        try checkFinite(x, batch: 0, firstSample: 0, method: "predict_on_batch")
        return try GradientRecording.disabled { try forward(x, context: ForwardContext(training: false, seed: seed)) }
    }
}

/// A permutation of 0..<n by Fisher-Yates, drawing from `stream` of the generator.
func permutation(_ n: Int, generator: RandomGenerator, stream: UInt64) -> [Int] {
    var order = Array(0..<n)
    guard n > 1 else { return order }
    var draws = [Float](repeating: 0, count: n)
    draws.withUnsafeMutableBufferPointer { generator.fillUniform($0, stream: stream) }
    for i in stride(from: n - 1, to: 0, by: -1) {
        let j = Swift.min(i, Int(draws[i] * Float(i + 1)))
        order.swapAt(i, j)
    }
    return order
}
