import LoomLayers

/// Where a fit stands between two batches: everything, besides the weights and the optimizer's
/// variables, that a fit resumed from it needs to carry on as if it had never stopped.
/// Taken by `Model.trainingState()` from a callback; given back to fit as `resume:`.
public struct TrainingState: Sendable, Equatable {
    /// The epoch in progress (0-based) and the batches of it already trained.
    public var epoch: Int, step: Int
    /// The training steps run before (the counter dropout masks are drawn from).
    public var trainStepsRun: UInt64
    /// Each loss tracker's and metric's accumulated state, in log order.
    public var metrics: [[Double]]
    /// Each callback's state, in the order fit was given them (nil: it keeps none).
    public var callbacks: [JSONValue?]
    /// The logs of the epochs finished: (epoch, [(key, value)]).
    public var history: [(epoch: Int, logs: [(String, Float)])]
    /// Whether a callback had asked training to stop (EarlyStopping) when the state was taken.
    public var stopped: Bool
    /// The seed each random layer (dropout, noise) draws with, by layer path.
    public var layerSeeds: [String: UInt64] = [:]
    /// The label and output shapes the metrics were made for (to make them again on resume).
    public var metricShapes: (yTrue: [[Int]], yPred: [[Int]])?

    public static func == (a: TrainingState, b: TrainingState) -> Bool { a.json == b.json }

    /// The state as JSON (numbers written so they read back to the same bits).
    public var json: JSONValue {
        let epochs: [JSONValue] = history.map { entry in
            ["epoch": .int(entry.epoch),
             "logs": .array(entry.logs.map { [.string($0.0), TrainingState.number(Double($0.1))] })]
        }
        return ["epoch": .int(epoch), "step": .int(step), "train_steps_run": .string(String(trainStepsRun)),
                "metrics": .array(metrics.map { .array($0.map(TrainingState.number)) }),
                "callbacks": .array(callbacks.map { $0 ?? .null }), "history": .array(epochs), "stopped": .bool(stopped),
                "layer_seeds": .object(layerSeeds.mapValues { .string(String($0)) }),
                "metric_shapes": metricShapes.map { ["y_true": TrainingState.shapes($0.yTrue), "y_pred": TrainingState.shapes($0.yPred)] } ?? .null]
    }

    /// Reads what `json` wrote; throws naming the first entry that is missing or malformed.
    public init(json: JSONValue) throws {
        func fail(_ what: String) -> LoomTrainingError { LoomTrainingError("training state: \(what) is missing or malformed") }
        guard case let .object(o) = json else { throw fail("the state object") }
        guard case let .int(e)? = o["epoch"], e >= 0 else { throw fail("epoch") }
        guard case let .int(s)? = o["step"], s >= 0 else { throw fail("step") }
        guard case let .string(run)? = o["train_steps_run"], let runs = UInt64(run) else { throw fail("train_steps_run") }
        guard case let .array(m)? = o["metrics"] else { throw fail("metrics") }
        metrics = try m.map { item in
            guard case let .array(values) = item else { throw fail("metrics") }
            return try values.map { try TrainingState.readNumber($0) ?? { throw fail("metrics") }() }
        }
        guard case let .array(c)? = o["callbacks"] else { throw fail("callbacks") }
        callbacks = c.map { $0 == .null ? nil : $0 }
        guard case let .array(h)? = o["history"] else { throw fail("history") }
        history = try h.map { entry in
            guard case let .object(eo) = entry, case let .int(epoch)? = eo["epoch"], case let .array(pairs)? = eo["logs"] else {
                throw fail("history")
            }
            let logs: [(String, Float)] = try pairs.map { pair in
                guard case let .array(kv) = pair, kv.count == 2, case let .string(k) = kv[0],
                      let v = TrainingState.readNumber(kv[1]) else { throw fail("history") }
                return (k, Float(v))
            }
            return (epoch, logs)
        }
        guard case let .bool(stop)? = o["stopped"] else { throw fail("stopped") }
        if let shapes = o["metric_shapes"], shapes != .null {
            guard case let .object(so) = shapes, let t = TrainingState.readShapes(so["y_true"]), let p = TrainingState.readShapes(so["y_pred"]) else {
                throw fail("metric_shapes")
            }
            metricShapes = (t, p)
        }
        guard case let .object(seeds)? = o["layer_seeds"] else { throw fail("layer_seeds") }
        for (path, v) in seeds {
            guard case let .string(text) = v, let seed = UInt64(text) else { throw fail("layer_seeds") }
            layerSeeds[path] = seed
        }
        (epoch, step, trainStepsRun, stopped) = (e, s, runs, stop)
    }

    init(epoch: Int, step: Int, trainStepsRun: UInt64, metrics: [[Double]], callbacks: [JSONValue?],
         history: [(epoch: Int, logs: [(String, Float)])], stopped: Bool) {
        layerSeeds = [:]
        (self.epoch, self.step, self.trainStepsRun, self.metrics) = (epoch, step, trainStepsRun, metrics)
        (self.callbacks, self.history, self.stopped) = (callbacks, history, stopped)
    }

    static func shapes(_ s: [[Int]]) -> JSONValue { .array(s.map { .array($0.map { .int($0) }) }) }
    static func readShapes(_ v: JSONValue?) -> [[Int]]? {
        guard case let .array(list)? = v else { return nil }
        let out = list.compactMap { item -> [Int]? in
            guard case let .array(dims) = item else { return nil }
            let ints = dims.compactMap { d -> Int? in if case let .int(i) = d { return i }; return nil }
            return ints.count == dims.count ? ints : nil
        }
        return out.count == list.count ? out : nil
    }

    /// JSON has no NaN or infinity: those are written as strings.
    static func number(_ d: Double) -> JSONValue { d.isFinite ? .double(d) : .string("\(d)") }
    static func readNumber(_ v: JSONValue) -> Double? {
        if case let .string(s) = v { return Double(s) }
        return v.numberValue
    }
}

/// What runEpochs exposes while it runs, for `trainingState()`.
final class FitProgress {
    var epoch = 0, step = 0
    let callbacks: [Callback]
    let history: History
    init(callbacks: [Callback], history: History) {
        self.callbacks = callbacks
        self.history = history
    }
}

extension Model {
    /// Where the running fit stands, to resume it later: call it from a callback (after a
    /// batch it gives the position after that batch; in `onEpochRecorded` the next epoch's start).
    public func trainingState() throws -> TrainingState {
        guard let progress = fitProgress, let compiled else {
            throw LoomTrainingError("trainingState() is only available while fit runs (from a callback)")
        }
        let finished = progress.history.epochs.enumerated().map { i, epoch in
            (epoch: epoch, logs: progress.history.keys.compactMap { k in progress.history.history[k].map { (k, $0[i]) } })
        }
        var state = TrainingState(epoch: progress.epoch, step: progress.step, trainStepsRun: trainStepsRun,
                                  metrics: compiled.allTrackers.map(\.state), callbacks: progress.callbacks.map { $0.checkpointState() },
                                  history: finished, stopped: stopTraining)
        for (path, layer) in seededLayers() { state.layerSeeds[path] = layer.randomSeed }
        state.metricShapes = compiled.resolvedShapes
        return state
    }

    /// The random layers, nested models' and wrappers' included, by path ("outer/inner/dropout").
    func seededLayers(prefix: String = "") -> [(String, SeededLayer)] {
        func walk(_ layer: Layer, _ prefix: String) -> [(String, SeededLayer)] {
            let path = prefix + layer.name
            if let nested = layer as? Model { return nested.seededLayers(prefix: path + "/") }
            let own = (layer as? SeededLayer).map { [(path, $0)] } ?? []
            return own + layer.sublayers.flatMap { walk($0, path + "/") }
        }
        return layers.flatMap { walk($0, prefix) }
    }

    /// Puts a resumed fit's counters, callbacks and history back (after onTrainBegin reset them).
    func restore(_ state: TrainingState, callbacks: [Callback], history: History, compiled: CompiledModel) throws {
        guard state.callbacks.count == callbacks.count else {
            throw LoomTrainingError("fit: the state to resume holds \(state.callbacks.count) callback(s) but fit was given \(callbacks.count)")
        }
        trainStepsRun = state.trainStepsRun
        for (path, layer) in seededLayers() {
            guard let seed = state.layerSeeds[path] else {
                throw LoomTrainingError("fit: the state to resume has no seed for the random layer '\(path)': it belongs to another model")
            }
            layer.randomSeed = seed
        }
        for (c, s) in zip(callbacks, state.callbacks) {
            if let s { try c.restoreCheckpointState(s) }
        }
        history.restore(state.history)
        // A state taken after the last batch of an epoch resumes with no batch left to make
        // the metrics from, so they are made from the shapes they were made for.
        if let shapes = state.metricShapes {
            try compiled.resolveMetrics(yTrueShapes: shapes.yTrue, yPredShapes: shapes.yPred, outputNames: outputNames)
        }
    }
}

extension CompiledModel {
    /// Gives the trackers and metrics their saved states once all of them exist (metrics are
    /// made at the first batch).
    func applyPendingStates() {
        guard let pending = pendingStates, pending.count == allTrackers.count else { return }
        for (m, s) in zip(allTrackers, pending) { m.state = s }
        pendingStates = nil
    }
}
