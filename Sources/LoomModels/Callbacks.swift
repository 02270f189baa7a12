import Foundation
import LoomTensor
import LoomLayers

/// Metric values by name, in the order they were logged (Keras's `logs` dict).
public struct Logs: Sendable, Sequence, CustomStringConvertible {
    public private(set) var entries: [(key: String, value: Float)] = []

    public init(_ entries: [(String, Float)] = []) { for (k, v) in entries { self[k] = v } }

    public subscript(_ key: String) -> Float? {
        get { entries.first { $0.key == key }?.value }
        set {
            if let i = entries.firstIndex(where: { $0.key == key }) {
                if let newValue { entries[i].value = newValue } else { entries.remove(at: i) }
            } else if let newValue {
                entries.append((key, newValue))
            }
        }
    }

    public var keys: [String] { entries.map(\.key) }
    public func makeIterator() -> IndexingIterator<[(key: String, value: Float)]> { entries.makeIterator() }
    public var description: String { entries.map { "\($0.key): \($0.value)" }.joined(separator: ", ") }
}

/// A hook into fit, evaluate and predict (Keras's Callback); override the events you need.
/// Callbacks run on the thread that called fit.
open class Callback: @unchecked Sendable {
    /// The model being trained; set before on_train_begin.
    public internal(set) weak var model: Model?
    /// The fit parameters: epochs, steps, verbose.
    public internal(set) var params: [String: Int] = [:]

    public init() {}

    /// Entries this callback adds to an epoch's logs before its onEpochEnd runs (Keras's
    /// learning-rate callbacks log "learning_rate"); callbacks after it, History last, see them.
    open func epochLogEntries(_ epoch: Int) -> [(String, Float)] { [] }

    open func onTrainBegin(logs: Logs) throws {}
    open func onTrainEnd(logs: Logs) throws {}
    open func onEpochBegin(_ epoch: Int, logs: Logs) throws {}
    open func onEpochEnd(_ epoch: Int, logs: Logs) throws {}
    open func onTrainBatchBegin(_ batch: Int, logs: Logs) throws {}
    open func onTrainBatchEnd(_ batch: Int, logs: Logs) throws {}
    open func onTestBegin(logs: Logs) throws {}
    open func onTestEnd(logs: Logs) throws {}
    open func onTestBatchBegin(_ batch: Int, logs: Logs) throws {}
    open func onTestBatchEnd(_ batch: Int, logs: Logs) throws {}
    open func onPredictBegin(logs: Logs) throws {}
    open func onPredictEnd(logs: Logs) throws {}
    open func onPredictBatchBegin(_ batch: Int, logs: Logs) throws {}
    open func onPredictBatchEnd(_ batch: Int, logs: Logs) throws {}

    /// Called once an epoch is complete: after every callback's onEpochEnd, History's
    /// included (a Loom hook: where a checkpoint of the whole epoch belongs).
    open func onEpochRecorded(_ epoch: Int) throws {}
    /// What this callback has learned during fit (a patience count, a best value), for a
    /// checkpoint; nil when it keeps nothing worth restoring.
    open func checkpointState() -> JSONValue? { nil }
    /// Takes back what `checkpointState()` gave, after onTrainBegin, when a fit resumes.
    open func restoreCheckpointState(_ state: JSONValue) throws {}
}

/// The per-epoch logs of a fit (Keras's History): `history["loss"]` is the loss of each epoch.
public final class History: Callback, @unchecked Sendable {
    public private(set) var epochs: [Int] = []
    public private(set) var history: [String: [Float]] = [:]
    /// The keys in the order they were first logged.
    public private(set) var keys: [String] = []

    /// Seconds fit waited for its batches in each epoch (the pipeline's share of the time).
    public private(set) var dataWait: [Double] = []

    public override func onTrainBegin(logs: Logs) throws {
        epochs = []
        history = [:]
        keys = []
        dataWait = []
    }

    func recordDataWait(_ d: Duration) {
        dataWait.append(Double(d.components.seconds) + Double(d.components.attoseconds) * 1e-18)
    }

    /// Puts back the epochs of a fit that is being resumed.
    func restore(_ finished: [(epoch: Int, logs: [(String, Float)])]) {
        for (epoch, logs) in finished { record(epoch, Logs(logs)) }
    }

    public override func onEpochEnd(_ epoch: Int, logs: Logs) throws { record(epoch, logs) }

    private func record(_ epoch: Int, _ logs: Logs) {
        epochs.append(epoch)
        for (k, v) in logs {
            if history[k] == nil { keys.append(k) }
            history[k, default: []].append(v)
        }
    }
}

/// Calls closures on events (Keras's LambdaCallback).
public final class LambdaCallback: Callback, @unchecked Sendable {
    let epochBegin: ((Int, Logs) throws -> Void)?, epochEnd: ((Int, Logs) throws -> Void)?
    let batchBegin: ((Int, Logs) throws -> Void)?, batchEnd: ((Int, Logs) throws -> Void)?
    let trainBegin: ((Logs) throws -> Void)?, trainEnd: ((Logs) throws -> Void)?

    public init(onEpochBegin: ((Int, Logs) throws -> Void)? = nil, onEpochEnd: ((Int, Logs) throws -> Void)? = nil,
                onTrainBatchBegin: ((Int, Logs) throws -> Void)? = nil, onTrainBatchEnd: ((Int, Logs) throws -> Void)? = nil,
                onTrainBegin: ((Logs) throws -> Void)? = nil, onTrainEnd: ((Logs) throws -> Void)? = nil) {
        epochBegin = onEpochBegin
        epochEnd = onEpochEnd
        batchBegin = onTrainBatchBegin
        batchEnd = onTrainBatchEnd
        trainBegin = onTrainBegin
        trainEnd = onTrainEnd
    }

    public override func onEpochBegin(_ epoch: Int, logs: Logs) throws { try epochBegin?(epoch, logs) }
    public override func onEpochEnd(_ epoch: Int, logs: Logs) throws { try epochEnd?(epoch, logs) }
    public override func onTrainBatchBegin(_ batch: Int, logs: Logs) throws { try batchBegin?(batch, logs) }
    public override func onTrainBatchEnd(_ batch: Int, logs: Logs) throws { try batchEnd?(batch, logs) }
    public override func onTrainBegin(logs: Logs) throws { try trainBegin?(logs) }
    public override func onTrainEnd(logs: Logs) throws { try trainEnd?(logs) }
}

/// Stops training when the loss becomes NaN or infinite (Keras's TerminateOnNaN).
public final class TerminateOnNaN: Callback, KerasCallback, @unchecked Sendable {
    public static let kerasClassName = "TerminateOnNaN"
    public override init() {}
    public static func from(config: Config) throws -> TerminateOnNaN { TerminateOnNaN() }
    public var config: Config { [:] }
    /// The batch at which training was stopped, if it was.
    public private(set) var stoppedAtBatch: Int?
    public override func onTrainBatchEnd(_ batch: Int, logs: Logs) throws {
        if let loss = logs["loss"], !loss.isFinite {
            FileHandle.standardError.write(Data("Batch \(batch): Invalid loss, terminating training\n".utf8))
            stoppedAtBatch = batch
            model?.stopTraining = true
        }
    }
}

/// How a monitored quantity improves.
public enum MonitorMode: String, Sendable {
    case auto, min, max
}

/// Tracks the best value of a monitored log entry (shared by EarlyStopping, ReduceLROnPlateau
/// and ModelCheckpoint).
struct Monitor {
    let key: String
    let minDelta: Float
    let higherIsBetter: Bool
    private(set) var best: Float

    init(key: String, mode: MonitorMode, minDelta: Float, model: Model?) {
        self.key = key
        self.minDelta = abs(minDelta)
        switch mode {
        case .min: higherIsBetter = false
        case .max: higherIsBetter = true
        case .auto:
            // Keras: "auto" is max for accuracy-like and AUC-like metrics, min otherwise.
            let base = key.hasPrefix("val_") ? String(key.dropFirst(4)) : key
            let metric = model?.compiled?.metrics?.flatMap { $0 }.first { $0.name == base }
            higherIsBetter = metric?.higherIsBetter ?? (base.hasSuffix("acc") || base.hasSuffix("accuracy") || base.hasSuffix("auc"))
        }
        best = higherIsBetter ? -.infinity : .infinity
    }

    /// Whether `value` improves on the best by more than minDelta.
    func improves(_ value: Float) -> Bool {
        higherIsBetter ? value - minDelta > best : value + minDelta < best
    }

    mutating func reset() { best = higherIsBetter ? -.infinity : .infinity }
    mutating func record(_ value: Float) { best = value }
}

private func warnMissing(_ key: String, _ logs: Logs, _ who: String) {
    FileHandle.standardError.write(Data(
        "\(who): metric '\(key)' is not available; available metrics are: \(logs.keys.joined(separator: ", "))\n".utf8))
}

/// A callback class built by name from its arguments (a job file's `callbacks`), with the
/// layers' anatomy: the type owns its Keras name, its config and `from(config:)`.
public protocol KerasCallback: Callback {
    /// Keras's class name ("EarlyStopping").
    static var kerasClassName: String { get }
    /// The callback its arguments describe; absent keys take the init's defaults.
    static func from(config: Config) throws -> Self
    /// Every argument with its value, defaults filled in.
    var config: Config { get }
}

/// The callbacks a job file can name, by Keras class name.
public let callbacks: Registry<Callback> = {
    let r = Registry<Callback>(kind: "callback")
    let builtIn: [any KerasCallback.Type] = [EarlyStopping.self, ReduceLROnPlateau.self, TerminateOnNaN.self]
    for type in builtIn { register(type, in: r) }
    return r
}()

/// Registers a callback type under its Keras class name.
public func register(_ type: any KerasCallback.Type, in registry: Registry<Callback> = callbacks) {
    registry.register(type.kerasClassName) { config in try type.from(config: config) }
}

/// A monitoring callback's `mode` (auto, min or max).
private func readMode(_ k: ConfigReader, default value: MonitorMode) throws(ConfigError) -> MonitorMode {
    let name = try k.string("mode", default: value.rawValue)
    guard let mode = MonitorMode(rawValue: name) else {
        throw ConfigError(k.object, argument: "mode", "expected auto, min or max, got '\(name)'")
    }
    return mode
}

/// A callback that watches one log entry (EarlyStopping, ReduceLROnPlateau, ModelCheckpoint).
open class MonitoringCallback: Callback, @unchecked Sendable {
    public let monitorKey: String, mode: MonitorMode, minDelta: Float
    var monitor: Monitor?
    /// Epochs since the last improvement.
    var wait = 0

    init(monitor: String, mode: MonitorMode, minDelta: Float) {
        monitorKey = monitor
        self.mode = mode
        self.minDelta = minDelta
    }

    open override func onTrainBegin(logs: Logs) throws {
        monitor = nil
        restoredBest = nil
        wait = 0
    }

    /// The best value a resumed fit had seen, kept until the monitor is made.
    private var restoredBest: Float?

    open override func checkpointState() -> JSONValue? {
        let best = monitor.map(\.best) ?? restoredBest
        return ["wait": .int(wait), "best": best.flatMap { $0.isFinite ? JSONValue.double(Double($0)) : nil } ?? .null]
    }

    open override func restoreCheckpointState(_ state: JSONValue) throws {
        guard case let .object(o) = state, case let .int(w)? = o["wait"] else {
            throw LoomTrainingError("\(type(of: self)): the checkpoint's state \(state) cannot be read")
        }
        wait = w
        monitor = nil
        restoredBest = o["best"]?.numberValue.map { Float($0) }
    }

    /// The watched value in `logs` (a warning when it is missing); the first call decides
    /// the direction, once the model's metrics exist.
    func monitoredValue(_ logs: Logs) -> Float? {
        if monitor == nil {
            monitor = Monitor(key: monitorKey, mode: mode, minDelta: minDelta, model: model)
            if let restoredBest { monitor!.record(restoredBest) }
            restoredBest = nil
        }
        guard let value = logs[monitorKey] else {
            warnMissing(monitorKey, logs, "\(type(of: self))")
            return nil
        }
        return value
    }
}

/// Stops training when a monitored quantity has stopped improving (Keras's EarlyStopping).
public final class EarlyStopping: MonitoringCallback, KerasCallback, @unchecked Sendable {
    public static let kerasClassName = "EarlyStopping"
    public let patience: Int
    public let baseline: Float?, restoreBestWeights: Bool, startFromEpoch: Int
    private var bestWeights: [Tensor]?
    private var bestEpoch = 0
    /// The epoch (0-based) training stopped after, if it stopped early.
    public private(set) var stoppedEpoch: Int?

    public init(monitor: String = "val_loss", minDelta: Float = 0, patience: Int = 0, mode: MonitorMode = .auto,
                baseline: Float? = nil, restoreBestWeights: Bool = false, startFromEpoch: Int = 0) {
        self.patience = patience
        self.baseline = baseline
        self.restoreBestWeights = restoreBestWeights
        self.startFromEpoch = startFromEpoch
        super.init(monitor: monitor, mode: mode, minDelta: minDelta)
    }

    public static func from(config: Config) throws -> EarlyStopping {
        let d = EarlyStopping(), k = ConfigReader(config, object: kerasClassName)
        return EarlyStopping(monitor: try k.string("monitor", default: d.monitorKey), minDelta: try k.float("min_delta", default: d.minDelta),
                             patience: try k.count("patience", default: d.patience), mode: try readMode(k, default: d.mode),
                             baseline: k.has("baseline") ? try k.float("baseline") : d.baseline,
                             restoreBestWeights: try k.bool("restore_best_weights", default: d.restoreBestWeights),
                             startFromEpoch: try k.count("start_from_epoch", default: d.startFromEpoch))
    }

    public var config: Config {
        ["monitor": .string(monitorKey), "min_delta": .double(Double(minDelta)), "patience": .int(patience),
         "mode": .string(mode.rawValue), "baseline": baseline.map { .double(Double($0)) } ?? .null,
         "restore_best_weights": .bool(restoreBestWeights), "start_from_epoch": .int(startFromEpoch)]
    }

    public override func onTrainBegin(logs: Logs) throws {
        try super.onTrainBegin(logs: logs)
        bestWeights = nil
        stoppedEpoch = nil
        bestEpoch = 0
    }

    public override func onEpochEnd(_ epoch: Int, logs: Logs) throws {
        guard let current = monitoredValue(logs), epoch >= startFromEpoch else { return }
        if restoreBestWeights && bestWeights == nil {
            bestWeights = model?.weights.map(\.value)
            bestEpoch = epoch
        }
        wait += 1
        if monitor!.improves(current) {
            monitor!.record(current)
            bestEpoch = epoch
            if restoreBestWeights { bestWeights = model?.weights.map(\.value) }
            // Keras only resets the wait when the baseline is beaten too.
            if let baseline, !(monitor!.higherIsBetter ? current - minDelta > baseline : current + minDelta < baseline) { return }
            wait = 0
            return
        }
        if wait >= patience && epoch > 0 {
            stoppedEpoch = epoch
            model?.stopTraining = true
        }
    }

    public override func checkpointState() -> JSONValue? {
        guard case var .object(o)? = super.checkpointState() else { return nil }
        o["best_epoch"] = .int(bestEpoch)
        o["stopped_epoch"] = stoppedEpoch.map { .int($0) } ?? .null
        return .object(o)
    }

    public override func restoreCheckpointState(_ state: JSONValue) throws {
        guard !restoreBestWeights else {
            throw LoomTrainingError("EarlyStopping: a fit with restore_best_weights cannot be resumed: the best weights are not in the checkpoint")
        }
        try super.restoreCheckpointState(state)
        if case let .object(o) = state {
            if case let .int(e)? = o["best_epoch"] { bestEpoch = e }
            if case let .int(e)? = o["stopped_epoch"] { stoppedEpoch = e }
        }
    }

    /// Keras restores the best weights at the end of training, stopped early or not.
    public override func onTrainEnd(logs: Logs) throws {
        if let epoch = stoppedEpoch, epoch > 0 { print("Epoch \(epoch + 1): early stopping") }
        if restoreBestWeights, let bestWeights, let model {
            for (p, v) in zip(model.weights, bestWeights) { p.assign(v) }
        }
    }
}

/// Multiplies the learning rate by `factor` when a monitored quantity has stopped improving
/// for `patience` epochs (Keras's ReduceLROnPlateau).
public final class ReduceLROnPlateau: MonitoringCallback, KerasCallback, @unchecked Sendable {
    public static let kerasClassName = "ReduceLROnPlateau"
    public let factor: Float, patience: Int, cooldown: Int, minLR: Float
    private var cooldownCounter = 0

    public init(monitor: String = "val_loss", factor: Float = 0.1, patience: Int = 10, mode: MonitorMode = .auto,
                minDelta: Float = 1e-4, cooldown: Int = 0, minLR: Float = 0) throws {
        guard factor < 1 else { throw LoomTrainingError("ReduceLROnPlateau: argument `factor` must be < 1, got \(factor)") }
        self.factor = factor
        self.patience = patience
        self.cooldown = cooldown
        self.minLR = minLR
        super.init(monitor: monitor, mode: mode, minDelta: minDelta)
    }

    public static func from(config: Config) throws -> ReduceLROnPlateau {
        let d = try ReduceLROnPlateau(), k = ConfigReader(config, object: kerasClassName)
        let factor = try k.float("factor", default: d.factor)
        guard factor < 1 else { throw ConfigError(kerasClassName, argument: "factor", "must be < 1, got \(factor)") }
        return try ReduceLROnPlateau(monitor: try k.string("monitor", default: d.monitorKey), factor: factor,
                                     patience: try k.count("patience", default: d.patience), mode: try readMode(k, default: d.mode),
                                     minDelta: try k.float("min_delta", default: d.minDelta),
                                     cooldown: try k.count("cooldown", default: d.cooldown),
                                     minLR: try k.float("min_lr", default: d.minLR))
    }

    public var config: Config {
        ["monitor": .string(monitorKey), "factor": .double(Double(factor)), "patience": .int(patience),
         "mode": .string(mode.rawValue), "min_delta": .double(Double(minDelta)), "cooldown": .int(cooldown),
         "min_lr": .double(Double(minLR))]
    }

    public override func onTrainBegin(logs: Logs) throws {
        try super.onTrainBegin(logs: logs)
        cooldownCounter = 0
    }

    public override func epochLogEntries(_ epoch: Int) -> [(String, Float)] {
        model?.compiled.map { [("learning_rate", $0.optimizer.learningRate)] } ?? []
    }

    public override func checkpointState() -> JSONValue? {
        guard case var .object(o)? = super.checkpointState() else { return nil }
        o["cooldown_counter"] = .int(cooldownCounter)
        return .object(o)
    }

    public override func restoreCheckpointState(_ state: JSONValue) throws {
        try super.restoreCheckpointState(state)
        if case let .object(o) = state, case let .int(c)? = o["cooldown_counter"] { cooldownCounter = c }
    }

    public override func onEpochEnd(_ epoch: Int, logs: Logs) throws {
        guard let current = monitoredValue(logs), let optimizer = model?.compiled?.optimizer else { return }
        if cooldownCounter > 0 {
            cooldownCounter -= 1
            wait = 0
        }
        if monitor!.improves(current) {
            monitor!.record(current)
            wait = 0
        } else if cooldownCounter <= 0 {
            wait += 1
            if wait >= patience {
                let old = optimizer.learningRate
                if old > minLR {
                    optimizer.setLearningRate(Swift.max(old * factor, minLR))
                    cooldownCounter = cooldown
                    wait = 0
                }
            }
        }
    }
}

/// Sets the learning rate at the start of each epoch from a function of (epoch, current rate)
/// (Keras's LearningRateScheduler).
public final class LearningRateScheduler: Callback, @unchecked Sendable {
    let schedule: (Int, Float) throws -> Float

    public init(_ schedule: @escaping (_ epoch: Int, _ learningRate: Float) throws -> Float) { self.schedule = schedule }

    public override func onEpochBegin(_ epoch: Int, logs: Logs) throws {
        guard let optimizer = model?.compiled?.optimizer else { return }
        let rate = try schedule(epoch, optimizer.learningRate)
        guard rate.isFinite else { throw LoomTrainingError("LearningRateScheduler: the schedule returned \(rate) for epoch \(epoch)") }
        optimizer.setLearningRate(rate)
    }

    public override func epochLogEntries(_ epoch: Int) -> [(String, Float)] {
        model?.compiled.map { [("learning_rate", $0.optimizer.learningRate)] } ?? []
    }
}

/// Writes each epoch's logs as a CSV row (Keras's CSVLogger): a header of epoch and the sorted
/// log keys, then one line per epoch, flushed as it is written.
public final class CSVLogger: Callback, @unchecked Sendable {
    public let path: String, separator: String, append: Bool
    private var handle: FileHandle?
    private var columns: [String]?

    public init(_ path: String, separator: String = ",", append: Bool = false) {
        self.path = path
        self.separator = separator
        self.append = append
    }

    public override func onTrainBegin(logs: Logs) throws {
        let fm = FileManager.default
        let exists = fm.fileExists(atPath: path)
        columns = nil
        if append && exists, let text = try? String(contentsOfFile: path, encoding: .utf8),
           let header = text.split(separator: "\n").first {
            columns = header.split(separator: Character(separator)).dropFirst().map(String.init)
        }
        if !(append && exists) {
            guard fm.createFile(atPath: path, contents: nil) else {
                throw LoomTrainingError("CSVLogger: cannot create '\(path)'")
            }
        }
        guard let h = FileHandle(forWritingAtPath: path) else { throw LoomTrainingError("CSVLogger: cannot open '\(path)' for writing") }
        h.seekToEndOfFile()
        handle = h
    }

    public override func onEpochEnd(_ epoch: Int, logs: Logs) throws {
        guard let handle else { return }
        if columns == nil {
            columns = logs.keys.sorted()
            handle.write(Data(Self.header(columns!, separator: separator).utf8))
        }
        handle.write(Data(Self.row(epoch, logs, columns: columns!, separator: separator).utf8))
    }

    public override func onTrainEnd(logs: Logs) throws {
        try handle?.close()
        handle = nil
    }

    /// The header line: "epoch" and the columns (Keras sorts the log keys).
    public static func header(_ columns: [String], separator: String = ",") -> String {
        (["epoch"] + columns).joined(separator: separator) + "\n"
    }

    /// One epoch's line: its 0-based index, then each column's value ("NA" when not logged).
    public static func row(_ epoch: Int, _ logs: Logs, columns: [String], separator: String = ",") -> String {
        ([String(epoch)] + columns.map { key in logs[key].map { $0.isNaN ? "nan" : "\(Double($0))" } ?? "NA" })
            .joined(separator: separator) + "\n"
    }
}

/// An error in training that is not about a layer's configuration (bad data, NaN inputs).
public struct LoomTrainingError: Error, CustomStringConvertible, Equatable {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// Saves the model (a .keras file; its weights alone with saveWeightsOnly) after each epoch,
/// or only when a monitored quantity improves (Keras's ModelCheckpoint). A .keras checkpoint
/// holds the model's config and weights. The path may hold Keras's format fields: `{epoch:02d}`,
/// `{val_loss:.2f}`, any logged name with a `d` or `.Nf` format.
public final class ModelCheckpoint: MonitoringCallback, @unchecked Sendable {
    public let filepath: String, saveBestOnly: Bool, saveWeightsOnly: Bool
    public let initialValueThreshold: Float?
    /// The files written, in order.
    public private(set) var saved: [String] = []

    public init(_ filepath: String, monitor: String = "val_loss", saveBestOnly: Bool = false, saveWeightsOnly: Bool = false,
                mode: MonitorMode = .auto, initialValueThreshold: Float? = nil) throws {
        if saveWeightsOnly {
            guard filepath.hasSuffix(".weights.h5") else {
                throw LoomTrainingError("ModelCheckpoint: with saveWeightsOnly the path must end in .weights.h5, got '\(filepath)'")
            }
        } else {
            guard filepath.hasSuffix(".keras") else {
                throw LoomTrainingError("ModelCheckpoint: a whole-model checkpoint path must end in .keras, got '\(filepath)'")
            }
        }
        self.filepath = filepath
        self.saveBestOnly = saveBestOnly
        self.saveWeightsOnly = saveWeightsOnly
        self.initialValueThreshold = initialValueThreshold
        super.init(monitor: monitor, mode: mode, minDelta: 0)
    }

    public override func onTrainBegin(logs: Logs) throws {
        try super.onTrainBegin(logs: logs)
        saved = []
    }

    public override func onEpochEnd(_ epoch: Int, logs: Logs) throws {
        guard let model else { return }
        if saveBestOnly {
            let firstCheck = monitor == nil
            guard let current = monitoredValue(logs) else { return }
            if firstCheck, let threshold = initialValueThreshold { monitor!.record(threshold) }
            guard monitor!.improves(current) else { return }
            monitor!.record(current)
        }
        let path = try Self.format(filepath, epoch: epoch + 1, logs: logs)
        if saveWeightsOnly { try model.saveWeights(path) } else { try model.save(path) }
        saved.append(path)
    }

    /// The path with each `{name}` / `{name:fmt}` field filled with the epoch (1-based) or a logged value.
    static func format(_ template: String, epoch: Int, logs: Logs) throws -> String {
        var out = ""
        var rest = Substring(template)
        while let open = rest.firstIndex(of: "{") {
            out += rest[..<open]
            guard let close = rest[open...].firstIndex(of: "}") else {
                throw LoomTrainingError("ModelCheckpoint: unclosed '{' in path '\(template)'")
            }
            let field = rest[rest.index(after: open)..<close]
            let parts = field.split(separator: ":", maxSplits: 1).map(String.init)
            let key = parts.first ?? ""
            let value: Double
            if key == "epoch" {
                value = Double(epoch)
            } else if let v = logs[key] {
                value = Double(v)
            } else {
                throw LoomTrainingError("ModelCheckpoint: path '\(template)' names '\(key)', which is not logged "
                    + "(logged: \(["epoch"] + logs.keys))")
            }
            let spec = parts.count > 1 ? parts[1] : ""
            if spec.hasSuffix("d") {
                let width = Int(spec.dropLast().trimmingCharacters(in: CharacterSet(charactersIn: "0"))) ?? 0
                let digits = String(Int(value))
                out += (spec.hasPrefix("0") ? String(repeating: "0", count: max(0, width - digits.count)) : "") + digits
            } else if spec.hasPrefix("."), spec.hasSuffix("f"), let places = Int(spec.dropFirst().dropLast()) {
                out += String(format: "%.\(places)f", value)
            } else if spec.isEmpty {
                out += key == "epoch" ? String(Int(value)) : String(value)
            } else {
                throw LoomTrainingError("ModelCheckpoint: unsupported format '{\(field)}' in path '\(template)'")
            }
            rest = rest[rest.index(after: close)...]
        }
        return out + rest
    }
}
