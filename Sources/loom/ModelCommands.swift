import ArgumentParser
import Foundation
import LoomData
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

    func validate() throws {
        guard !inputs.isEmpty else { throw ValidationError("give at least one --input") }
        guard !outputs.isEmpty else { throw ValidationError("give at least one --output") }
        guard batchSize >= 1 else { throw ValidationError("--batch-size must be at least 1, got \(batchSize)") }
    }

    func run() throws {
        try reporting("loom predict") {
            let net = try KerasFile.load(model)
            guard inputs.count == net.inputShapes.count else {
                throw LoomTrainingError("\(model) has \(net.inputShapes.count) input(s) but \(inputs.count) --input file(s) were given")
            }
            guard outputs.count == net.outputShapes.count else {
                throw LoomTrainingError("\(model) has \(net.outputShapes.count) output(s) but \(outputs.count) --output file(s) were given")
            }
            var xs: [Tensor] = []
            for (path, expected) in zip(inputs, net.inputShapes) {
                let x = try NPY.read(path)
                let fits = x.rank == expected.count && zip(x.shape.dropFirst(), expected.dropFirst()).allSatisfy { $1 == nil || $0 == $1 }
                guard fits else {
                    throw DataFileError(path: path, message: "shape \(x.shape) does not fit the model input \(expected.text)")
                }
                xs.append(x)
            }
            let ys = try net.predict(xs, batchSize: batchSize, verbose: .silent, workers: workers)
            for (y, path) in zip(ys, outputs) { try NPY.write(y, to: path) }
        }
    }
}

/// `loom evaluate MODEL.keras --x X.npy ... --y Y.npy ...`.
struct Evaluate: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Evaluate a compiled .keras model on .npy arrays and print its loss and metrics.")

    @Argument(help: "The model, a Keras 3 .keras file saved from a compiled model.") var model: String
    @Option(name: .customLong("x"), help: "One .npy per model input.") var xs: [String] = []
    @Option(name: .customLong("y"), help: "One .npy per model output.") var ys: [String] = []
    @Option(name: .customLong("batch-size"), help: "Samples per batch.") var batchSize = 32
    @Option(help: "Worker threads (default: $LOOM_WORKERS, else the cores).") var workers: Int?
    @Flag(help: "One JSON object instead of name: value lines.") var json = false

    func validate() throws {
        guard !xs.isEmpty, !ys.isEmpty else { throw ValidationError("give at least one --x and one --y") }
        guard batchSize >= 1 else { throw ValidationError("--batch-size must be at least 1, got \(batchSize)") }
    }

    func run() throws {
        try reporting("loom evaluate") {
            let net = try KerasFile.load(model)
            guard net.compiled != nil else {
                throw LoomTrainingError("\(model) was saved from a model that was not compiled: it has no loss to evaluate")
            }
            let x = try xs.map { try NPY.read($0) }, y = try ys.map { try NPY.read($0) }
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

    func run() throws {
        try reporting("loom summary") { try KerasFile.load(model).printSummary() }
    }
}
