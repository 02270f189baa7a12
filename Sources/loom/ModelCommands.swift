import ArgumentParser
import Foundation
import LoomData
import LoomJobs
import LoomLayers
import LoomModels
import LoomTensor

/// Runs `body`, turning any error into one line on stderr and exit code 1: bad input is
/// reported, never a backtrace.
func reporting(_ command: String, _ body: () throws -> Void) throws {
    do {
        try body()
    } catch let exit as ExitCode {
        throw exit
    } catch {
        printError("\(command): \(error)")
        throw ExitCode(1)
    }
}

/// `--max-memory`: the memory a command's model may take, checked before it is allocated.
struct MemoryOption: ParsableArguments {
    @Option(name: .customLong("max-memory"),
            help: "The memory the model may take, e.g. 8G or 512M (default: what the machine can give: MemAvailable, or the cgroup's limit).")
    var maxMemory: String?

    func validate() throws {
        if let maxMemory, MemoryLimit.parseSize(maxMemory) == nil {
            throw ValidationError("--max-memory must be a size such as 8G, 512M or 1073741824, got '\(maxMemory)'")
        }
    }

    /// The option's limit, nil when not given.
    var given: MemoryLimit? {
        maxMemory.flatMap { text in MemoryLimit.parseSize(text).map { MemoryLimit(bytes: $0, source: "--max-memory \(text)") } }
    }

    /// The limit now: the option's, else the machine's.
    var limit: MemoryLimit? { given ?? MemoryLimit.machine() }

    /// Loads a .keras model, each weight checked against the limit before it is made.
    func load(_ path: String) throws -> Model {
        guard let limit else { return try KerasFile.load(path) }
        return try MemoryBudget.$current.withValue(MemoryEstimate.budget(limit: limit, for: .inference(outputSamples: 0))) {
            try KerasFile.load(path)
        }
    }

    /// Refuses `work` on the model at `path` at `batchSize` when it needs more than the limit.
    func check(_ net: Model, from path: String, batchSize: Int, work: MemoryEstimate.Work) throws {
        guard let limit else { return }
        do {
            try MemoryEstimate(net, batchSize: batchSize, work: work).check(against: limit, model: net.name)
        } catch {
            throw LoomTrainingError("\(path): \(error)")
        }
    }
}

/// `loom predict MODEL.keras --input X.npy ... --output Y.npy ...`.
struct Predict: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run a .keras model on .npy inputs and write its outputs as float32 .npy files.")

    @Argument(help: "The model, a Keras 3 .keras file.") var model: String
    @Option(name: .customLong("input"), help: "One .npy per model input, in the order of the model's inputs.")
    var inputs: [String] = []
    @Option(name: .customLong("output"), help: "One .npy per model output, in the order of the model's outputs.")
    var outputs: [String] = []
    @Option(name: .customLong("batch-size"), help: "Samples per batch.") var batchSize = 32
    @Option(help: "Worker threads (default: $LOOM_WORKERS, else the cores).") var workers: Int?
    @OptionGroup var memory: MemoryOption

    func validate() throws {
        guard !inputs.isEmpty else { throw ValidationError("give at least one --input") }
        guard !outputs.isEmpty else { throw ValidationError("give at least one --output") }
        guard batchSize >= 1 else { throw ValidationError("--batch-size must be at least 1, got \(batchSize)") }
        try checkOutputs(outputs.map { ("--output", $0) }, against: [("the model", model)] + inputs.map { ("--input", $0) })
    }

    func run() throws {
        try reporting("loom predict") {
            let net = try memory.load(model)
            guard outputs.count == net.outputShapes.count else {
                throw LoomTrainingError("\(model) has \(net.outputShapes.count) output(s) but \(outputs.count) --output file(s) were given")
            }
            let xs = try readInputs(inputs, of: net, model: model)
            let samples = xs.first?.shape.first ?? 0
            try memory.check(net, from: model, batchSize: Swift.min(batchSize, Swift.max(samples, 1)), work: .inference(outputSamples: samples))
            let ys = try net.predict(xs, batchSize: batchSize, verbose: .silent, workers: workers)
            for (y, path) in zip(ys, outputs) { try NPY.write(y, to: path) }
        }
    }
}

/// Reads one .npy per model input, each checked against the input's shape (the batch axis
/// free), so a wrong array is named before any work.
func readInputs(_ paths: [String], of net: Model, model: String, flag: String = "--input") throws -> [Tensor] {
    guard paths.count == net.inputShapes.count else {
        throw LoomTrainingError("\(model) has \(net.inputShapes.count) input(s) but \(paths.count) \(flag) file(s) were given")
    }
    return try zip(paths, net.inputShapes).map { path, expected in
        let x = try NPY.read(path)
        guard expected.acceptsSamples(of: x) else {
            throw DataFileError(path: path, message: "shape \(x.shape) does not fit the model input \(expected.text)")
        }
        return x
    }
}

/// Reads one .npy of labels per model output.
func readTargets(_ paths: [String], of net: Model, model: String) throws -> [Tensor] {
    guard paths.count == net.outputShapes.count else {
        throw LoomTrainingError("\(model) has \(net.outputShapes.count) output(s) but \(paths.count) --y file(s) were given")
    }
    return try paths.map { try NPY.read($0) }
}

/// Loads a .keras model that was saved compiled: fit and evaluate need its loss.
func loadCompiled(_ model: String, memory: MemoryOption) throws -> Model {
    let net = try memory.load(model)
    guard net.compiled != nil else {
        throw LoomTrainingError("\(model) was saved from a model that was not compiled: it has no optimizer or loss; compile it before saving")
    }
    return net
}

/// What fit and evaluate share: a compiled .keras model and its .npy arrays.
struct CompiledModelArrays: ParsableArguments {
    @Argument(help: "The model, a Keras 3 .keras file saved from a compiled model.") var model: String
    @Option(name: .customLong("x"), help: "One .npy per model input.") var xs: [String] = []
    @Option(name: .customLong("y"), help: "One .npy per model output.") var ys: [String] = []
    @OptionGroup var memory: MemoryOption

    func validate() throws {
        guard !xs.isEmpty, !ys.isEmpty else { throw ValidationError("give at least one --x and one --y") }
    }

    /// The model, its inputs checked against its input shapes, and its labels.
    func load() throws -> (Model, [Tensor], [Tensor]) {
        let net = try loadCompiled(model, memory: memory)
        let (x, y) = (try readInputs(xs, of: net, model: model, flag: "--x"), try readTargets(ys, of: net, model: model))
        if let bad = net.labelOutOfRange(y) {
            throw DataFileError(path: ys[bad.output], message: "label \(bad.value) at index \(bad.sample) is out of range for \(bad.reason)")
        }
        return (net, x, y)
    }
}

/// `loom fit MODEL.keras --x X.npy ... --y Y.npy ... --epochs E --batch-size B --save OUT.keras`.
struct Fit: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Train a compiled .keras model on .npy arrays as Keras's fit does, and save it with its optimizer state.")

    @OptionGroup var data: CompiledModelArrays
    @Option(help: "Epochs to train.") var epochs: Int
    @Option(name: .customLong("batch-size"), help: "Samples per batch.") var batchSize: Int
    @Flag(name: .customLong("no-shuffle"), help: "Keep the samples in file order (Keras's shuffle=False).") var noShuffle = false
    @Option(name: .customLong("validation-split"), help: "The fraction of the samples, taken from the end, held out for validation.")
    var validationSplit: Float = 0
    @Option(help: "Worker threads (default: $LOOM_WORKERS, else the cores).") var workers: Int?
    @Option(help: "Seed for shuffling and dropout (default 1337: runs repeat exactly).") var seed: UInt64?
    @Option(help: "Where to write the trained model (.keras, with the optimizer state).") var save: String
    @Option(help: "Where to write the history as JSON (metric name to per-epoch values).") var history: String?
    @Option(help: "0 silent, 1 progress bar, 2 one line per epoch (default: a bar on a terminal, else lines).")
    var verbose: Int?

    func validate() throws {
        guard epochs >= 0 else { throw ValidationError("--epochs must not be negative, got \(epochs)") }
        guard batchSize >= 1 else { throw ValidationError("--batch-size must be at least 1, got \(batchSize)") }
        guard validationSplit >= 0 && validationSplit < 1 else {
            throw ValidationError("--validation-split must be in [0, 1), got \(validationSplit)")
        }
        guard save.hasSuffix(".keras") else { throw ValidationError("--save must name a .keras file, got \(save)") }
        // --save may be the model itself, as Keras's model.save(path) over the file it loaded.
        let arrays = data.xs.map { ("--x", $0) } + data.ys.map { ("--y", $0) }
        try checkOutputs([("--save", save)], against: arrays)
        if let history { try checkOutputs([("--history", history)], against: [("the model", data.model), ("--save", save)] + arrays) }
        if let workers, workers < 1 { throw ValidationError("--workers must be at least 1, got \(workers)") }
    }

    func run() throws {
        try reporting("loom fit") {
            let (net, x, y) = try data.load()
            if let seed { net.seed = seed }
            if let optimizer = net.compiled?.optimizer {
                let samples = x.first?.shape.first ?? 0
                try data.memory.check(net, from: data.model, batchSize: Swift.min(batchSize, Swift.max(samples, 1)), work: .training(optimizer))
            }
            let record = try net.fit(x: x, y: y, batchSize: batchSize, epochs: epochs, verbose: verbose.map(Verbosity.init) ?? .auto,
                                     validationSplit: validationSplit, shuffle: !noShuffle, workers: workers)
            try net.save(save)
            if let history {
                let entries = record.keys.map { key in
                    "\(JSONValue.string(key)): " + JSONValue.array(record.history[key, default: []].map { .double(Double($0)) }).description
                }
                try writeAtomically(Data(("{" + entries.joined(separator: ", ") + "}\n").utf8), to: history)
            }
        }
    }
}

/// `loom evaluate MODEL.keras --x X.npy ... --y Y.npy ...`.
struct Evaluate: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Evaluate a compiled .keras model on .npy arrays and print its loss and metrics.")

    @OptionGroup var data: CompiledModelArrays
    @Option(name: .customLong("batch-size"), help: "Samples per batch.") var batchSize = 32
    @Option(help: "Worker threads (default: $LOOM_WORKERS, else the cores).") var workers: Int?
    @Flag(help: "One JSON object instead of name: value lines.") var json = false

    func validate() throws {
        guard batchSize >= 1 else { throw ValidationError("--batch-size must be at least 1, got \(batchSize)") }
    }

    func run() throws {
        try reporting("loom evaluate") {
            let (net, x, y) = try data.load()
            let samples = x.first?.shape.first ?? 0
            try data.memory.check(net, from: data.model, batchSize: Swift.min(batchSize, Swift.max(samples, 1)), work: .inference(outputSamples: 0))
            let logs = try net.evaluate(x: x, y: y, batchSize: batchSize, verbose: .silent, workers: workers)
            if json {
                print("{" + logs.map { "\"\($0.key)\": \(Double($0.value))" }.joined(separator: ", ") + "}")
            } else {
                for (key, value) in logs { print("\(key): \(value)") }
            }
        }
    }
}

/// `loom summary MODEL.keras`.
struct Summary: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Print a .keras model's summary as Keras prints it.")

    @Argument(help: "The model, a Keras 3 .keras file.") var model: String
    @OptionGroup var memory: MemoryOption

    func run() throws {
        try reporting("loom summary") { try memory.load(model).printSummary() }
    }
}

/// Refuses an output that is one of the command's inputs (the same file, by device and inode,
/// so `./x.npy` or a hard link is caught too) or that names the same file as another output:
/// writing it would lose the input, or one output would silently replace another.
func checkOutputs(_ outputs: [(flag: String, path: String)], against inputs: [(flag: String, path: String)]) throws {
    func identity(_ path: String) -> [UInt64]? {
        var info = stat()
        return stat(path, &info) == 0 ? [UInt64(info.st_dev), UInt64(info.st_ino)] : nil
    }
    func sameFile(_ a: String, _ b: String) -> Bool {
        if let x = identity(a), let y = identity(b) { return x == y }
        return URL(fileURLWithPath: a).standardizedFileURL.path == URL(fileURLWithPath: b).standardizedFileURL.path
    }
    for (k, output) in outputs.enumerated() {
        if let input = inputs.first(where: { sameFile($0.path, output.path) }) {
            throw ValidationError("\(output.flag) \(output.path) is \(input.flag == "the model" ? "the model" : "the \(input.flag) file") \(input.path): Loom does not write over its inputs; choose another path")
        }
        if let other = outputs[..<k].first(where: { sameFile($0.path, output.path) }) {
            throw ValidationError("\(output.flag) \(output.path) and \(other.flag) \(other.path) are the same file: give each output its own path")
        }
    }
}
