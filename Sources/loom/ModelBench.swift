import ArgumentParser
import Foundation
import LoomLayers
import LoomModels
import LoomTensor

extension Bench {
    /// `loom bench model`: a compiled .keras classifier's inference and training speed on random
    /// images, as benchmarks/resnet_vs_peers.sh times its peers.
    struct ModelSpeed: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "model",
            abstract: "Time a compiled .keras model (e.g. Keras's ResNet50) on random inputs: predict at --batch-size and at batch 1, and fit at --batch-size.")

        @Argument(help: "A .keras file saved from a compiled model with one input and one output.") var model: String
        @Option(name: .customLong("batch-size"), help: "Samples per batch for predict and fit.") var batchSize = 32
        @Option(help: "Batches of --batch-size timed in predict (after one warm-up batch).") var batches = 2
        @Option(help: "Single-sample predictions timed (after one warm-up).") var singles = 10
        @Option(help: "Training steps timed (after one warm-up step).") var steps = 3
        @Option(help: "Worker threads (default: $LOOM_WORKERS, else the cores).") var workers: Int?
        @Flag(help: "One JSON object.") var json = false
        @OptionGroup var memory: MemoryOption

        func validate() throws {
            guard batchSize >= 1, batches >= 1, singles >= 1, steps >= 0 else {
                throw ValidationError("--batch-size, --batches and --singles must be at least 1, --steps at least 0")
            }
            if let workers, workers < 1 { throw ValidationError("--workers must be at least 1, got \(workers)") }
        }

        func run() throws {
            do {
                let net = try loadCompiled(model, memory: memory)
                guard net.inputShapes.count == 1, net.outputShapes.count == 1 else {
                    throw LoomTrainingError("\(model): loom bench model takes a model with one input and one output")
                }
                let sample = try net.inputShapes[0].dropFirst().map { d throws(LoomTrainingError) -> Int in
                    guard let d else { throw LoomTrainingError("\(model): the input shape \(net.inputShapes[0].text) has an unknown size") }
                    return d
                }
                guard let classes = net.outputShapes[0].last ?? nil else {
                    throw LoomTrainingError("\(model): the output shape \(net.outputShapes[0].text) has an unknown size")
                }
                let x = Tensor.randomUniform([batchSize] + sample, low: 0, high: 1, generator: RandomGenerator(seed: 1))
                let one = x.slice(lower: [0] + sample.map { _ in 0 }, upper: [1] + sample)

                _ = try net.predict(x, batchSize: batchSize, verbose: .silent, workers: workers)
                var start = Date()
                for _ in 0..<batches { _ = try net.predict(x, batchSize: batchSize, verbose: .silent, workers: workers) }
                let inference = Double(batches * batchSize) / Date().timeIntervalSince(start)

                _ = try net.predict(one, batchSize: 1, verbose: .silent, workers: workers)
                start = Date()
                for _ in 0..<singles { _ = try net.predict(one, batchSize: 1, verbose: .silent, workers: workers) }
                let single = Double(singles) / Date().timeIntervalSince(start)

                var training: Double? = nil
                if steps > 0 {
                    // One-hot labels for the classes the output has.
                    let draws = Tensor.randomUniform([steps * batchSize], low: 0, high: 1, generator: RandomGenerator(seed: 2))
                    let labels = draws.scalars.map { Swift.min(classes - 1, Int($0 * Float(classes))) }
                    var y = Tensor.zeros([steps * batchSize, classes])
                    y.withUnsafeMutableBufferPointer { p in for (i, c) in labels.enumerated() { p[i * classes + c] = 1 } }
                    let xs = Tensor.concatenate(Array(repeating: x, count: steps), axis: 0)
                    let warm = y.slice(lower: [0, 0], upper: [batchSize, classes])
                    try net.fit(x: x, y: warm, batchSize: batchSize, epochs: 1, verbose: .silent, shuffle: false, workers: workers)
                    start = Date()
                    try net.fit(x: xs, y: y, batchSize: batchSize, epochs: 1, verbose: .silent, shuffle: false, workers: workers)
                    training = Double(steps * batchSize) / Date().timeIntervalSince(start)
                }
                let used = try net.resolveWorkers(workers)
                if json {
                    let train = training.map { #", "train_samples_per_second": \#(rounded($0))"# } ?? ""
                    print(#"{"tool": "loom", "workers": \#(used), "batch_size": \#(batchSize), "inference_samples_per_second": \#(rounded(inference)), "batch1_samples_per_second": \#(rounded(single))\#(train), "peak_rss_mib": \#(rounded(peakResidentMiB()))}"#)
                } else {
                    print(String(format: "%@, %d workers: predict %.2f samples/s at batch %d, %.2f samples/s at batch 1",
                                 model, used, inference, batchSize, single)
                          + (training.map { String(format: ", fit %.2f samples/s at batch %d", $0, batchSize) } ?? "")
                          + String(format: ", peak RSS %.0f MiB", peakResidentMiB()))
                }
            } catch {
                printError("loom bench model: \(error)")
                throw ExitCode(1)
            }
        }
    }
}
