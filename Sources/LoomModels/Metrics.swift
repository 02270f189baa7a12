import Foundation
import LoomLayers
import LoomTensor

/// A metric (keras.metrics): state accumulated over batches, read as one number.
/// Metrics are updated by the training loop's thread only.
open class Metric: @unchecked Sendable {
    /// The key it is logged under ("accuracy", "val_accuracy" for validation).
    public var name: String
    /// Whether larger is better, for callbacks that watch it with mode "auto".
    open var higherIsBetter: Bool { false }

    public init(name: String) { self.name = name }

    /// Adds a batch of labels and predictions; `sampleWeight` weighs samples [N].
    open func update(_ yTrue: Tensor, _ yPred: Tensor, sampleWeight: Tensor?) throws {}
    /// The value over everything added since the last reset.
    open func result() -> Float { 0 }
    /// Forgets everything added.
    open func reset() {}
    /// What it has accumulated, as numbers a resumed fit gives back (a checkpoint holds them);
    /// a metric that keeps none starts over when a fit resumes mid-epoch.
    open var state: [Double] {
        get { [] }
        set {}
    }
}

/// The weighted mean of per-sample values (Keras's Mean): each sample's values are averaged
/// over its non-batch axes, then samples are averaged by their weights.
open class MeanMetric: Metric, @unchecked Sendable {
    var total: Double = 0
    var count: Double = 0

    /// Adds per-sample values [N, ...] (or one scalar) with optional sample weights [N].
    public func add(_ values: Tensor, sampleWeight: Tensor?) {
        let perSample = values.rank > 1 ? values.mean(axes: Array(1..<values.rank)) : values
        let v = perSample.scalars
        if let w = sampleWeight {
            let ws = w.count == 1 && v.count > 1 ? Array(repeating: w.scalar, count: v.count) : w.scalars
            for (x, wi) in zip(v, ws) { total += Double(x) * Double(wi) }
            count += ws.reduce(0) { $0 + Double($1) }
        } else {
            for x in v { total += Double(x) }
            count += Double(max(values.rank == 0 ? 1 : v.count, 1))
        }
    }

    /// Adds one value with a weight (the loss of a batch weighted by its size).
    public func add(_ value: Float, weight: Double) {
        total += Double(value) * weight
        count += weight
    }

    open override func result() -> Float { count == 0 ? 0 : Float(total / count) }
    open override func reset() { total = 0; count = 0 }
    open override var state: [Double] {
        get { [total, count] }
        set { if newValue.count == 2 { (total, count) = (newValue[0], newValue[1]) } }
    }
}

/// The mean of a per-sample function of (y_true, y_pred) (Keras's MeanMetricWrapper).
public class MeanMetricWrapper: MeanMetric, @unchecked Sendable {
    let function: @Sendable (Tensor, Tensor) throws -> Tensor
    private let higher: Bool
    public override var higherIsBetter: Bool { higher }

    /// A metric from a per-sample function; `higherIsBetter` tells callbacks its direction.
    public init(name: String, higherIsBetter: Bool = false,
                _ function: @escaping @Sendable (_ yTrue: Tensor, _ yPred: Tensor) throws -> Tensor) {
        self.function = function
        higher = higherIsBetter
        super.init(name: name)
    }

    public override func update(_ yTrue: Tensor, _ yPred: Tensor, sampleWeight: Tensor?) throws {
        add(try function(yTrue, yPred), sampleWeight: sampleWeight)
    }
}

/// A metric class Keras knows by name, with the layers' anatomy: the type owns its Keras name
/// and aliases and `from(config:)`.
public protocol KerasMetric: Metric {
    /// Keras's class name ("BinaryAccuracy").
    static var kerasClassName: String { get }
    /// The function names Keras accepts for it ("binary_accuracy").
    static var kerasAliases: [String] { get }
    /// The metric a Keras config describes; absent keys take the init's defaults.
    static func from(config: Config) throws -> Self
}

extension KerasMetric {
    /// A reader of `config` and the metric's name (absent: `defaultName`).
    static func reading(_ config: Config, defaultName: String) throws(ConfigError) -> (ConfigReader, String) {
        let k = ConfigReader(config, object: kerasClassName)
        return (k, try k.string("name", default: defaultName))
    }
}

/// The square root of the mean squared error over everything seen.
public final class RootMeanSquaredError: MeanMetric, KerasMetric, @unchecked Sendable {
    public static let kerasClassName = "RootMeanSquaredError"
    public static let kerasAliases = ["root_mean_squared_error", "rmse"]
    public override init(name: String = "root_mean_squared_error") { super.init(name: name) }
    public static func from(config: Config) throws -> RootMeanSquaredError {
        RootMeanSquaredError(name: try reading(config, defaultName: RootMeanSquaredError().name).1)
    }
    public override func update(_ yTrue: Tensor, _ yPred: Tensor, sampleWeight: Tensor?) throws {
        let (t, p) = try matched(yTrue, yPred, name)
        add((p - t).square(), sampleWeight: sampleWeight)
    }
    public override func result() -> Float { super.result().squareRoot() }
}

// MARK: - Per-sample functions

/// 1 where (y_pred > threshold) equals y_true, averaged over the last axis.
public func binaryAccuracy(_ yTrue: Tensor, _ yPred: Tensor, threshold: Float = 0.5) throws -> Tensor {
    let (t, p) = try matched(yTrue, yPred, "binary_accuracy")
    let hits = t.equal(p.greater(Tensor(threshold)))
    return hits.mean(axes: [hits.rank - 1])
}

/// 1 where argmax(y_true) equals argmax(y_pred).
public func categoricalAccuracy(_ yTrue: Tensor, _ yPred: Tensor) throws -> Tensor {
    guard yTrue.shape == yPred.shape else {
        throw ConfigError("categorical_accuracy", "y_true of shape \(yTrue.shape) does not match y_pred of shape \(yPred.shape)")
    }
    return yTrue.argmax(axis: -1).equal(yPred.argmax(axis: -1))
}

/// 1 where the integer label equals argmax(y_pred).
public func sparseCategoricalAccuracy(_ yTrue: Tensor, _ yPred: Tensor) throws -> Tensor {
    let (labels, _, _) = try sparseLabels(yTrue, yPred, loss: "sparse_categorical_accuracy")
    return labels.equal(yPred.argmax(axis: -1))
}

/// 1 where the true class is among the k highest scores (ties counted as Keras's in_top_k does:
/// the true class is in when fewer than k scores are strictly higher).
public func topKCategoricalAccuracy(_ yTrue: Tensor, _ yPred: Tensor, k: Int = 5) throws -> Tensor {
    guard yTrue.shape == yPred.shape, yPred.rank == 2 else {
        throw ConfigError("top_k_categorical_accuracy", "expects y_true and y_pred of one shape (N, classes), got \(yTrue.shape) and \(yPred.shape)")
    }
    return topK(labels: yTrue.argmax(axis: -1), yPred, k: k)
}

/// topKCategoricalAccuracy for integer labels.
public func sparseTopKCategoricalAccuracy(_ yTrue: Tensor, _ yPred: Tensor, k: Int = 5) throws -> Tensor {
    let (labels, _, _) = try sparseLabels(yTrue, yPred, loss: "sparse_top_k_categorical_accuracy")
    return topK(labels: labels, yPred, k: k)
}

private func topK(labels: Tensor, _ yPred: Tensor, k: Int) -> Tensor {
    let classes = yPred.shape.last ?? 1, rows = yPred.count / Swift.max(classes, 1)
    let scores = yPred.scalars, truth = labels.scalars
    var out = [Float](repeating: 0, count: rows)
    for r in 0..<rows {
        let row = scores[(r * classes)..<((r + 1) * classes)]
        let target = row[r * classes + Int(truth[r])]
        guard target.isFinite else { continue }
        let higher = row.reduce(0) { $0 + ($1 > target ? 1 : 0) }
        out[r] = higher < k ? 1 : 0
    }
    return Tensor(shape: Array(yPred.shape.dropLast()), scalars: out)
}

// MARK: - Accuracy metrics

/// The mean of binaryAccuracy at `threshold`.
public final class BinaryAccuracy: MeanMetricWrapper, KerasMetric, @unchecked Sendable {
    public static let kerasClassName = "BinaryAccuracy"
    public static let kerasAliases = ["binary_accuracy"]
    public let threshold: Float
    public init(threshold: Float = 0.5, name: String = "binary_accuracy") {
        self.threshold = threshold
        super.init(name: name, higherIsBetter: true) { try binaryAccuracy($0, $1, threshold: threshold) }
    }
    public static func from(config: Config) throws -> BinaryAccuracy {
        let d = BinaryAccuracy()
        let (k, name) = try reading(config, defaultName: d.name)
        return BinaryAccuracy(threshold: try k.float("threshold", default: d.threshold), name: name)
    }
}

/// The mean of categoricalAccuracy.
public final class CategoricalAccuracy: MeanMetricWrapper, KerasMetric, @unchecked Sendable {
    public static let kerasClassName = "CategoricalAccuracy"
    public static let kerasAliases = ["categorical_accuracy"]
    public init(name: String = "categorical_accuracy") {
        super.init(name: name, higherIsBetter: true) { try categoricalAccuracy($0, $1) }
    }
    public static func from(config: Config) throws -> CategoricalAccuracy {
        CategoricalAccuracy(name: try reading(config, defaultName: CategoricalAccuracy().name).1)
    }
}

/// The mean of sparseCategoricalAccuracy.
public final class SparseCategoricalAccuracy: MeanMetricWrapper, KerasMetric, @unchecked Sendable {
    public static let kerasClassName = "SparseCategoricalAccuracy"
    public static let kerasAliases = ["sparse_categorical_accuracy"]
    public init(name: String = "sparse_categorical_accuracy") {
        super.init(name: name, higherIsBetter: true) { try sparseCategoricalAccuracy($0, $1) }
    }
    public static func from(config: Config) throws -> SparseCategoricalAccuracy {
        SparseCategoricalAccuracy(name: try reading(config, defaultName: SparseCategoricalAccuracy().name).1)
    }
}

/// The mean of topKCategoricalAccuracy.
public final class TopKCategoricalAccuracy: MeanMetricWrapper, KerasMetric, @unchecked Sendable {
    public static let kerasClassName = "TopKCategoricalAccuracy"
    public static let kerasAliases = ["top_k_categorical_accuracy"]
    public let k: Int
    public init(k: Int = 5, name: String = "top_k_categorical_accuracy") {
        self.k = k
        super.init(name: name, higherIsBetter: true) { try topKCategoricalAccuracy($0, $1, k: k) }
    }
    public static func from(config: Config) throws -> TopKCategoricalAccuracy {
        let d = TopKCategoricalAccuracy()
        let (r, name) = try reading(config, defaultName: d.name)
        return TopKCategoricalAccuracy(k: try r.count("k", default: d.k), name: name)
    }
}

/// The mean of sparseTopKCategoricalAccuracy.
public final class SparseTopKCategoricalAccuracy: MeanMetricWrapper, KerasMetric, @unchecked Sendable {
    public static let kerasClassName = "SparseTopKCategoricalAccuracy"
    public static let kerasAliases = ["sparse_top_k_categorical_accuracy"]
    public let k: Int
    public init(k: Int = 5, name: String = "sparse_top_k_categorical_accuracy") {
        self.k = k
        super.init(name: name, higherIsBetter: true) { try sparseTopKCategoricalAccuracy($0, $1, k: k) }
    }
    public static func from(config: Config) throws -> SparseTopKCategoricalAccuracy {
        let d = SparseTopKCategoricalAccuracy()
        let (r, name) = try reading(config, defaultName: d.name)
        return SparseTopKCategoricalAccuracy(k: try r.count("k", default: d.k), name: name)
    }
}

// MARK: - Confusion-matrix metrics

/// Counts of true and false positives and negatives at thresholds, over every value seen
/// (Keras's confusion metrics: a prediction is positive when above the threshold).
open class ConfusionMetric: Metric, @unchecked Sendable {
    public let thresholds: [Float]
    var tp: [Double], fp: [Double], tn: [Double], fn: [Double]

    init(name: String, thresholds: [Float]) {
        self.thresholds = thresholds
        tp = Array(repeating: 0, count: thresholds.count)
        fp = tp; tn = tp; fn = tp
        super.init(name: name)
    }

    public override var higherIsBetter: Bool { true }

    public override func update(_ yTrue: Tensor, _ yPred: Tensor, sampleWeight: Tensor?) throws {
        let (t, p) = try matched(yTrue, yPred, name)
        let truth = t.scalars, scores = p.scalars
        let perSample = truth.count / Swift.max(t.shape.first ?? 1, 1)
        let weights = try sampleWeight.map { w -> [Float] in
            guard w.count == t.shape.first || w.count == truth.count else {
                throw ConfigError(name, "sample_weight of shape \(w.shape) does not fit y_true of shape \(t.shape)")
            }
            return w.count == truth.count ? w.scalars : w.scalars.flatMap { Array(repeating: $0, count: perSample) }
        }
        for (i, (y, s)) in zip(truth, scores).enumerated() {
            let w = Double(weights?[i] ?? 1)
            for (j, threshold) in thresholds.enumerated() {
                let predicted = s > threshold
                if y > 0.5 {
                    if predicted { tp[j] += w } else { fn[j] += w }
                } else {
                    if predicted { fp[j] += w } else { tn[j] += w }
                }
            }
        }
    }

    public override func reset() {
        for j in thresholds.indices { tp[j] = 0; fp[j] = 0; tn[j] = 0; fn[j] = 0 }
    }

    public override var state: [Double] {
        get { tp + fp + tn + fn }
        set {
            let n = thresholds.count
            guard newValue.count == 4 * n else { return }
            tp = Array(newValue[0..<n]); fp = Array(newValue[n..<2 * n])
            tn = Array(newValue[2 * n..<3 * n]); fn = Array(newValue[3 * n..<4 * n])
        }
    }
}

private func ratio(_ a: Double, _ b: Double) -> Double { b == 0 ? 0 : a / b }

/// Precision's and Recall's `thresholds`: Loom keeps one (a number, or a list of one);
/// `top_k` and `class_id` are refused by name.
private func singleThreshold(_ k: ConfigReader, default value: Float) throws(ConfigError) -> Float {
    for key in ["top_k", "class_id"] where k.has(key) { throw ConfigError(k.object, argument: key, "is not supported") }
    switch k.value("thresholds") {
    case .null: return value
    case let .array(list):
        guard list.count == 1, let t = list[0].numberValue.map(Float.init) else {
            throw ConfigError(k.object, argument: "thresholds", "only one threshold is supported, got \(list.count)")
        }
        return t
    default: return try k.float("thresholds")
    }
}

/// TP / (TP + FP) at `threshold` (0.5 by default).
public final class Precision: ConfusionMetric, KerasMetric, @unchecked Sendable {
    public static let kerasClassName = "Precision"
    public static let kerasAliases = ["precision"]
    public init(threshold: Float = 0.5, name: String = "precision") { super.init(name: name, thresholds: [threshold]) }
    public static func from(config: Config) throws -> Precision {
        let d = Precision()
        let (k, name) = try reading(config, defaultName: d.name)
        return Precision(threshold: try singleThreshold(k, default: d.thresholds[0]), name: name)
    }
    public override func result() -> Float { Float(ratio(tp[0], tp[0] + fp[0])) }
}

/// TP / (TP + FN) at `threshold` (0.5 by default).
public final class Recall: ConfusionMetric, KerasMetric, @unchecked Sendable {
    public static let kerasClassName = "Recall"
    public static let kerasAliases = ["recall"]
    public init(threshold: Float = 0.5, name: String = "recall") { super.init(name: name, thresholds: [threshold]) }
    public static func from(config: Config) throws -> Recall {
        let d = Recall()
        let (k, name) = try reading(config, defaultName: d.name)
        return Recall(threshold: try singleThreshold(k, default: d.thresholds[0]), name: name)
    }
    public override func result() -> Float { Float(ratio(tp[0], tp[0] + fn[0])) }
}

/// The area under the ROC curve (or the precision-recall curve), by a Riemann sum over
/// `numThresholds` evenly spaced thresholds with Keras's summation rules.
public final class AUC: ConfusionMetric, KerasMetric, @unchecked Sendable {
    public static let kerasClassName = "AUC"
    public static let kerasAliases = ["auc"]
    public enum Curve: String, Sendable { case roc = "ROC", pr = "PR" }
    public enum Summation: String, Sendable { case interpolation, minoring, majoring }
    public let curve: Curve, summation: Summation

    public init(numThresholds: Int = 200, curve: Curve = .roc, summationMethod: Summation = .interpolation,
                name: String = "auc") throws(ConfigError) {
        guard numThresholds > 1 else { throw ConfigError(name, argument: "num_thresholds", "must be > 1, got \(numThresholds)") }
        self.curve = curve
        summation = summationMethod
        let inner = (0..<(numThresholds - 2)).map { Float($0 + 1) / Float(numThresholds - 1) }
        super.init(name: name, thresholds: [-kerasEpsilon] + inner + [1 + kerasEpsilon])
    }

    public static func from(config: Config) throws -> AUC {
        let d = try AUC()
        let (k, name) = try reading(config, defaultName: d.name)
        for key in ["multi_label", "from_logits"] where try k.bool(key, default: false) {
            throw ConfigError(k.object, argument: key, "is not supported")
        }
        for key in ["thresholds", "label_weights", "num_labels"] where k.has(key) {
            throw ConfigError(k.object, argument: key, "is not supported")
        }
        let curveName = try k.string("curve", default: d.curve.rawValue)
        guard let curve = Curve(rawValue: curveName.uppercased()) else {
            throw ConfigError(k.object, argument: "curve", "must be ROC or PR, got '\(curveName)'")
        }
        let summationName = try k.string("summation_method", default: d.summation.rawValue)
        guard let summation = Summation(rawValue: summationName.lowercased()) else {
            throw ConfigError(k.object, argument: "summation_method",
                              "must be interpolation, minoring or majoring, got '\(summationName)'")
        }
        return try AUC(numThresholds: try k.size("num_thresholds", default: d.thresholds.count), curve: curve,
                       summationMethod: summation, name: name)
    }

    public override func result() -> Float {
        let n = thresholds.count
        let recall = (0..<n).map { ratio(tp[$0], tp[$0] + fn[$0]) }
        let x: [Double], y: [Double]
        switch curve {
        case .roc:
            x = (0..<n).map { ratio(fp[$0], fp[$0] + tn[$0]) }
            y = recall
        case .pr:
            if summation == .interpolation { return Float(interpolatedPRArea()) }
            x = recall
            y = (0..<n).map { ratio(tp[$0], tp[$0] + fp[$0]) }
        }
        var area = 0.0
        for i in 0..<(n - 1) {
            let height: Double
            switch summation {
            case .interpolation: height = (y[i] + y[i + 1]) / 2
            case .minoring: height = Swift.min(y[i], y[i + 1])
            case .majoring: height = Swift.max(y[i], y[i + 1])
            }
            area += (x[i] - x[i + 1]) * height
        }
        return Float(area)
    }

    /// Davis & Goadrich's interpolation of the precision-recall curve, as Keras computes it.
    private func interpolatedPRArea() -> Double {
        let n = thresholds.count
        var area = 0.0
        for i in 0..<(n - 1) {
            let dtp = tp[i] - tp[i + 1]
            let p = tp[i] + fp[i], pNext = tp[i + 1] + fp[i + 1]
            let dp = Swift.max(p - pNext, 0)
            let slope = ratio(dtp, dp)
            let intercept = tp[i + 1] - slope * pNext
            let logTerm = (p > 0 && pNext > 0) ? Foundation.log(p / pNext) : 0
            let prAUC = ratio(slope * (dtp + intercept * logTerm), tp[i + 1] + fn[i + 1])
            area += prAUC
        }
        return area
    }
}

// MARK: - Names

/// Builds the metric compile asks for by name: "accuracy" resolves to binary, categorical or
/// sparse categorical accuracy from the shapes of y_true and y_pred (as Keras resolves it);
/// "crossentropy"-style names and every loss name give the mean of that loss.
public func resolveMetric(_ identifier: String, yTrue: TensorShape, yPred: TensorShape) throws -> Metric {
    let lower = identifier.lowercased()
    if lower == "accuracy" || lower == "acc" {
        let isBinary = yPred.last == 1
        let isSparse = yTrue.count < yPred.count || (yTrue.last == 1 && ((yPred.last ?? nil) ?? 0) > 1)
        if isBinary { return MeanMetricWrapper(name: identifier, higherIsBetter: true) { try binaryAccuracy($0, $1) } }
        if isSparse { return MeanMetricWrapper(name: identifier, higherIsBetter: true) { try sparseCategoricalAccuracy($0, $1) } }
        return MeanMetricWrapper(name: identifier, higherIsBetter: true) { try categoricalAccuracy($0, $1) }
    }
    let metric = try makeMetric(identifier)
    metric.name = identifier
    return metric
}

/// The metrics Keras knows by name: class names ("BinaryAccuracy") and function names
/// ("binary_accuracy"); every loss is a metric too (`makeMetric`).
public let metrics: Registry<Metric> = {
    let r = Registry<Metric>(kind: "metric")
    let builtIn: [any KerasMetric.Type] = [
        BinaryAccuracy.self, CategoricalAccuracy.self, SparseCategoricalAccuracy.self, TopKCategoricalAccuracy.self,
        SparseTopKCategoricalAccuracy.self, Precision.self, Recall.self, AUC.self, RootMeanSquaredError.self,
    ]
    for type in builtIn { register(type, in: r) }
    return r
}()

/// Registers a metric type under its Keras class name and aliases.
public func register(_ type: any KerasMetric.Type, in registry: Registry<Metric> = metrics) {
    registry.register(type.kerasClassName, aliases: type.kerasAliases) { config in try type.from(config: config) }
}

/// A metric by Keras name (class or function name) or serialized config, with its defaults;
/// a loss's name gives the mean of that loss.
public func makeMetric(_ value: JSONValue) throws -> Metric {
    if case let .string(name) = value, !metrics.names.contains(name) {
        // Every loss is also a metric: the mean of its per-sample values.
        let loss: Loss
        do {
            loss = try losses.make(.string(name), owner: "compile", argument: "metrics")
        } catch {
            throw ConfigError("compile", argument: "metrics", "unknown metric '\(name)'")
        }
        return MeanMetricWrapper(name: loss.name) { try loss.values($0, $1) }
    }
    return try metrics.make(value, owner: "compile", argument: "metrics")
}

/// A metric by Keras name (class or function name) with its defaults.
public func makeMetric(_ name: String) throws -> Metric { try makeMetric(.string(name)) }
