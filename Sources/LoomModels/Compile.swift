import LoomLayers
import LoomTensor

/// A metric as compile takes it: a Keras name ("accuracy", "mae", "AUC") or a metric object.
public enum MetricSpec: ExpressibleByStringLiteral, Sendable {
    case name(String)
    case metric(Metric)

    public init(stringLiteral value: String) { self = .name(value) }
}

/// What compile set: the optimizer, one loss per output (nil for outputs without one), the
/// loss weights, and the metrics asked for per output (made when the first batch shows the
/// label and output shapes, as Keras resolves "accuracy").
public final class CompiledModel: @unchecked Sendable {
    public let optimizer: Optimizer
    public let losses: [Loss?]
    public let lossWeights: [Float]
    let metricSpecs: [[MetricSpec]]
    let weightedMetricSpecs: [[MetricSpec]]
    /// The compile_config this came from, when it came from a Keras file.
    var kerasCompileConfig: JSONValue?
    /// The metrics per output, once resolved: the unweighted ones, then the weighted ones.
    public internal(set) var metrics: [[Metric]]?
    /// The metrics that take sample weights (Keras's weighted_metrics; plain metrics do not).
    private var weighted = Set<ObjectIdentifier>()
    /// The mean total loss, and each output's loss for models with several outputs.
    let lossTracker = MeanMetric(name: "loss")
    var outputLossTrackers: [MeanMetric] = []
    /// States to give the trackers and metrics of a resumed fit once they all exist.
    var pendingStates: [[Double]]?
    /// The label and output shapes the metrics were made for.
    var resolvedShapes: (yTrue: [[Int]], yPred: [[Int]])?

    init(optimizer: Optimizer, losses: [Loss?], lossWeights: [Float], metricSpecs: [[MetricSpec]],
         weightedMetricSpecs: [[MetricSpec]]) {
        self.optimizer = optimizer
        self.losses = losses
        self.lossWeights = lossWeights
        self.metricSpecs = metricSpecs
        self.weightedMetricSpecs = weightedMetricSpecs
    }

    /// Every metric to reset between epochs, in log order.
    var allTrackers: [Metric] { [lossTracker] + outputLossTrackers + (metrics ?? []).flatMap { $0 } }

    func resetMetrics() { for m in allTrackers { m.reset() } }
}

extension Model {
    /// Configures training (Keras's compile): an optimizer, one loss (or one per output),
    /// metrics (for every output, or per output), metrics weighted by sample weights, and loss
    /// weights per output.
    public func compile(optimizer: Optimizer, loss: Loss?, metrics: [MetricSpec] = [], weightedMetrics: [MetricSpec] = [],
                        lossWeights: [Float]? = nil) throws {
        let n = modelOutputCount
        try compile(optimizer: optimizer, losses: Array(repeating: loss, count: n),
                    metrics: Array(repeating: metrics, count: n), weightedMetrics: Array(repeating: weightedMetrics, count: n),
                    lossWeights: lossWeights)
    }

    /// compile with one loss per output and metrics per output.
    public func compile(optimizer: Optimizer, losses: [Loss?], metrics: [[MetricSpec]], weightedMetrics: [[MetricSpec]] = [],
                        lossWeights: [Float]? = nil) throws {
        let n = modelOutputCount
        guard losses.count == n else {
            throw ConfigError(name, argument: "loss", "the model has \(n) output\(n == 1 ? "" : "s") but \(losses.count) losses were given")
        }
        for (argument, given) in [("metrics", metrics), ("weighted_metrics", weightedMetrics)] where !(given.count == n || given.isEmpty) {
            throw ConfigError(name, argument: argument, "the model has \(n) outputs but metrics were given for \(given.count)")
        }
        let weights = lossWeights ?? Array(repeating: 1, count: n)
        guard weights.count == n else {
            throw ConfigError(name, argument: "loss_weights", "the model has \(n) outputs but \(weights.count) loss weights were given")
        }
        guard losses.contains(where: { $0 != nil }) else {
            throw ConfigError(name, argument: "loss", "no loss to compute: give compile a loss")
        }
        compiled = CompiledModel(optimizer: optimizer, losses: losses, lossWeights: weights,
                                 metricSpecs: metrics.isEmpty ? Array(repeating: [], count: n) : metrics,
                                 weightedMetricSpecs: weightedMetrics.isEmpty ? Array(repeating: [], count: n) : weightedMetrics)
    }

    /// compile by Keras names: `compile(optimizer: "adam", loss: "sparse_categorical_crossentropy", metrics: ["accuracy"])`.
    public func compile(optimizer: String, loss: String, metrics: [MetricSpec] = [], weightedMetrics: [MetricSpec] = [],
                        lossWeights: [Float]? = nil) throws {
        try compile(optimizer: try optimizers.make(.string(optimizer), owner: "compile", argument: "optimizer"),
                    loss: try losses.make(.string(loss), owner: "compile", argument: "loss"),
                    metrics: metrics, weightedMetrics: weightedMetrics, lossWeights: lossWeights)
    }

    /// The number of outputs.
    var modelOutputCount: Int { self is Sequential ? 1 : outputs.count }

    /// The compiled state, or Keras's error when compile has not run.
    func requireCompiled(_ method: String) throws -> CompiledModel {
        guard let compiled else {
            throw ConfigError(name, "you must call compile() before \(method)(): the model has no optimizer or loss yet")
        }
        return compiled
    }
}

extension CompiledModel {
    /// Makes the metric objects from the first batch's shapes.
    func resolveMetrics(yTrue: [Tensor], yPred: [Tensor], outputNames: [String]) throws {
        guard metrics == nil else { return }
        try resolveMetrics(yTrueShapes: yTrue.map(\.shape), yPredShapes: yPred.map(\.shape), outputNames: outputNames)
    }

    /// Makes the metric objects for labels and outputs of these shapes (batch axis first).
    func resolveMetrics(yTrueShapes: [[Int]], yPredShapes: [[Int]], outputNames: [String]) throws {
        guard metrics == nil else { return }
        resolvedShapes = (yTrueShapes, yPredShapes)
        var made: [[Metric]] = []
        for (o, specs) in metricSpecs.enumerated() {
            var list: [Metric] = []
            for (spec, isWeighted) in specs.map({ ($0, false) }) + weightedMetricSpecs[o].map({ ($0, true) }) {
                let metric: Metric
                switch spec {
                case let .name(n):
                    metric = try resolveMetric(n, yTrue: yTrueShapes[o].map(Optional.some), yPred: yPredShapes[o].map(Optional.some))
                case let .metric(m): metric = m
                }
                if isWeighted { weighted.insert(ObjectIdentifier(metric)) }
                list.append(metric)
            }
            // With several outputs Keras prefixes metric names with the output's name.
            if metricSpecs.count > 1 { for m in list where !m.name.hasPrefix(outputNames[o] + "_") { m.name = outputNames[o] + "_" + m.name } }
            made.append(list)
        }
        metrics = made
        if losses.count > 1 {
            outputLossTrackers = losses.indices.compactMap { losses[$0] == nil ? nil : MeanMetric(name: outputNames[$0] + "_loss") }
        }
        applyPendingStates()
    }

    /// The compiled losses of a batch: the weighted sum over outputs, and each output's own loss.
    func loss(yTrue: [Tensor], yPred: [Tensor], sampleWeight: Tensor?) throws -> (Tensor, [Tensor]) {
        var total: Tensor? = nil
        var parts: [Tensor] = []
        for (o, loss) in losses.enumerated() {
            guard let loss else { continue }
            // Keras logs each output's loss before its loss weight.
            let value = try loss(yTrue[o], yPred[o], sampleWeight: sampleWeight)
            parts.append(value)
            let weighted = lossWeights[o] == 1 ? value : value * lossWeights[o]
            total = total.map { $0 + weighted } ?? weighted
        }
        return (total ?? Tensor(0), parts)
    }

    /// Adds a batch to the trackers and metrics.
    func record(total: Float, parts: [Float], batchSize: Int, yTrue: [Tensor], yPred: [Tensor], sampleWeight: Tensor?) throws {
        lossTracker.add(total, weight: Double(batchSize))
        for (tracker, part) in zip(outputLossTrackers, parts) { tracker.add(part, weight: Double(batchSize)) }
        for (o, list) in (metrics ?? []).enumerated() {
            for m in list {
                try m.update(yTrue[o], yPred[o].detached, sampleWeight: weighted.contains(ObjectIdentifier(m)) ? sampleWeight : nil)
            }
        }
    }

    /// The current values, keyed as Keras logs them.
    func logs(prefix: String = "") -> [(String, Float)] {
        allTrackers.map { (prefix + $0.name, $0.result()) }
    }
}
