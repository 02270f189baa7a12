import ArgumentParser
import Foundation
import LoomData
import LoomLayers
import LoomModels
import LoomTensor

/// `loom bench`: kernel throughput on this machine.
struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Measure kernel throughput.",
        subcommands: [Gemm.self, Convolution.self, Ops.self, CNN.self, Train.self, ModelSpeed.self, LSTMTraining.self, CSVParse.self, Decode.self, Pipeline.self]
    )

    struct Gemm: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "GFLOP/s of sgemm C[M,N] = A[M,K]·B[K,N] on square and MLP-layer shapes.")

        @Option(help: "OpenBLAS threads.") var threads: Int = 1
        @Flag(help: "One JSON object per line.") var json = false
        @Option(help: "Minimum seconds measured per shape.") var seconds: Double = 0.5

        func validate() throws {
            guard threads >= 1 else { throw ValidationError("--threads must be at least 1, got \(threads)") }
            guard seconds > 0 else { throw ValidationError("--seconds must be positive") }
        }

        func run() throws {
            BLAS.threads = threads
            for result in KernelBenchmark.gemm(minimumSeconds: seconds) {
                if json {
                    print(#"{"op": "sgemm", "shape": "\#(result.m)x\#(result.n)x\#(result.k)", "gflops": \#(rounded(result.gflops)), "threads": \#(threads)}"#)
                } else {
                    print("sgemm \(result.label.padding(toLength: 34, withPad: " ", startingAt: 0)) \(result.m)x\(result.n)x\(result.k)".padding(toLength: 58, withPad: " ", startingAt: 0)
                          + String(format: "%8.1f GFLOP/s", result.gflops))
                }
            }
        }
    }

    struct LSTMTraining: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "lstm",
            abstract: "Train LSTM(units) + Dense(1) (Adam, MSE) with fit on random sequences and report training samples/s.")

        @Option(help: "LSTM units.") var units = 128
        @Option(name: .customLong("time-steps"), help: "Time steps per sequence.") var timeSteps = 50
        @Option(help: "Features per time step.") var features = 32
        @Option(name: .customLong("batch-size"), help: "Samples per step.") var batchSize = 128
        @Option(help: "Training steps timed (after one warm-up epoch of 2 steps).") var steps = 20
        @Option(help: "Worker threads (default: $LOOM_WORKERS, else the cores).") var workers: Int?
        @Flag(help: "One JSON object.") var json = false

        func validate() throws {
            guard units >= 1, timeSteps >= 1, features >= 1, batchSize >= 1, steps >= 1 else {
                throw ValidationError("--units, --time-steps, --features, --batch-size and --steps must be at least 1")
            }
        }

        func run() throws {
            let net = try RandomSeeds.withSeed(5) {
                try Sequential([try LSTM(RecurrentLayer.Arguments(units: units)), try Dense(units: 1)])
            }
            try net.build(inputShape: [nil, timeSteps, features])
            try net.compile(optimizer: try Adam(), loss: MeanSquaredError())
            let n = batchSize * steps
            let x = Tensor.randomNormal([n, timeSteps, features], generator: RandomGenerator(seed: 1))
            let y = Tensor.randomNormal([n, 1], generator: RandomGenerator(seed: 2))
            let warm = x.slice(lower: [0, 0, 0], upper: [2 * batchSize, timeSteps, features])
            try net.fit(x: warm, y: y.slice(lower: [0, 0], upper: [2 * batchSize, 1]), batchSize: batchSize, epochs: 1,
                        verbose: .silent, workers: workers)
            let start = Date()
            try net.fit(x: x, y: y, batchSize: batchSize, epochs: 1, verbose: .silent, shuffle: false, workers: workers)
            let seconds = Date().timeIntervalSince(start)
            let rate = Double(n) / seconds
            let used = try net.resolveWorkers(workers)
            if json {
                print(#"{"tool": "loom", "units": \#(units), "time_steps": \#(timeSteps), "features": \#(features), "batch_size": \#(batchSize), "workers": \#(used), "train_samples_per_s": \#(rounded(rate))}"#)
            } else {
                print(String(format: "LSTM(%d) over %d steps x %d features, batch %d, %d workers: %.0f training samples/s",
                             units, timeSteps, features, batchSize, used, rate))
            }
        }
    }

    struct Train: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Train Keras's MNIST MLP or CNN with fit and report training and inference samples/s, peak RSS and test accuracy.")

        @Option(help: "mlp (RMSprop) or cnn (Adam).") var model: Demo.MNIST.Architecture = .mlp
        @Option(help: "Folder with the MNIST IDX files.") var data = "datasets/mnist"
        @Option(help: "Epochs.") var epochs = 1
        @Option(help: "Steps per epoch (default: the whole training set).") var steps: Int?
        @Option(name: .customLong("batch-size"), help: "Samples per step.") var batchSize = 128
        @Option(help: "Worker threads (default: $LOOM_WORKERS, else the cores).") var workers: Int?
        @Option(help: "Seed for initialization, dropout masks and shuffling.") var seed: UInt64 = 1337
        @Option(help: "Train from this image folder (one subfolder per digit, PNG or JPEG) through the pipeline instead of the IDX arrays.")
        var images: String?
        @Option(name: .customLong("data-workers"), help: "Decoding threads of the pipeline (with --images).") var dataWorkers = 1
        @Flag(help: "One JSON object.") var json = false

        func validate() throws {
            guard epochs >= 1, batchSize >= 1 else { throw ValidationError("--epochs and --batch-size must be at least 1") }
            guard dataWorkers >= 1 else { throw ValidationError("--data-workers must be at least 1, got \(dataWorkers)") }
            if let steps, steps < 1 { throw ValidationError("--steps must be at least 1, got \(steps)") }
            if let workers, workers < 1 { throw ValidationError("--workers must be at least 1, got \(workers)") }
        }

        func run() throws {
            do {
                let mnist = try MNISTData(folder: data, flatten: model == .mlp)
                let net = try model.compiledModel(seed: seed, workers: workers)
                // The whole fit call is timed, as the Keras peers are (after their step functions
                // are compiled): Loom has nothing to compile, so its first step counts too.
                var dataWait: Double? = nil
                var perEpoch = mnist.x.shape[0]
                let started = Date()
                if let images {
                    // Decoded, scaled to [0, 1] and batched on the pipeline's threads, ahead of training.
                    let folder = try ImageFolder(directory: images, options: ImageFolderOptions(
                        colorMode: .grayscale, imageSize: (28, 28), seed: UInt32(truncatingIfNeeded: seed)))
                    let flatten = model == .mlp
                    perEpoch = folder.files.count
                    let batches = folder.dataset(workers: dataWorkers).map(workers: 1) { sample, _ -> Sample in
                        let x = sample.inputs[0] * (1 / 255)
                        return Sample(inputs: [flatten ? x.reshaped([784]) : x], targets: sample.targets)
                    }.batch(batchSize).prefetch(4)
                    let history = try net.fit(batches, epochs: epochs, verbose: .silent, stepsPerEpoch: steps)
                    dataWait = history.dataWait.reduce(0, +)
                } else {
                    try net.fit(x: mnist.x, y: mnist.labels, batchSize: batchSize, epochs: epochs, verbose: .silent,
                                shuffle: true, stepsPerEpoch: steps)
                }
                let trainSeconds = Date().timeIntervalSince(started)
                let trained = epochs * (steps.map { $0 * batchSize } ?? perEpoch)
                let inferStart = Date()
                let predictions = try net.predict(mnist.xTest, batchSize: batchSize, verbose: .silent)
                let inferSeconds = Date().timeIntervalSince(inferStart)
                let accuracy = zip(predictions.argmax(axis: 1).scalars, mnist.testLabels.scalars).filter { $0 == $1 }.count
                let workerCount = try net.resolveWorkers(workers)
                let peak = peakResidentMiB()
                let train = Double(trained) / trainSeconds, infer = Double(mnist.xTest.shape[0]) / inferSeconds
                let testAccuracy = Double(accuracy) / Double(mnist.xTest.shape[0])
                let wait = dataWait.map { #", "data_wait_seconds": \#(rounded($0))"# } ?? ""
                if json {
                    print(#"{"tool": "loom", "model": "\#(model.rawValue)", "workers": \#(workerCount), "train_samples_per_second": \#(rounded(train)), "inference_samples_per_second": \#(rounded(infer)), "peak_rss_mib": \#(rounded(peak)), "test_accuracy": \#(testAccuracy), "epochs": \#(epochs), "train_seconds": \#(rounded(trainSeconds))\#(wait)}"#)
                } else {
                    print(String(format: "%@ with %d workers: train %.0f samples/s, inference %.0f samples/s, peak RSS %.0f MiB, test accuracy %.4f",
                                 model.rawValue, workerCount, train, infer, peak, testAccuracy)
                          + (dataWait.map { String(format: ", waited %.2f s for data", $0) } ?? ""))
                }
            } catch {
                printError("loom bench train: \(error)")
                throw ExitCode(1)
            }
        }
    }

    struct Convolution: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "conv",
            abstract: "GFLOP/s of a 3x3 convolution with ReLU (by default the MNIST CNN's 26x26x32 -> 64 on a 64-image shard), by im2col and by Winograd.")

        @Flag(help: "One JSON object per line.") var json = false
        @Option(help: "Minimum seconds measured per case.") var seconds: Double = 1
        @Option(help: "Images.") var batch = 64
        @Option(help: "Image height and width.") var size = 26
        @Option(help: "Input channels.") var channels = 32
        @Option(help: "Filters.") var filters = 64

        func validate() throws {
            guard seconds > 0 else { throw ValidationError("--seconds must be positive") }
            guard batch >= 1, size >= 3, channels >= 1, filters >= 1 else {
                throw ValidationError("--batch, --channels and --filters must be at least 1 and --size at least 3")
            }
            // Inputs, outputs and their gradients must fit in memory: at most 2^28 floats (1 GiB) each.
            guard Double(batch) * Double(size) * Double(size) * Double(max(channels, filters)) <= Double(1 << 28),
                  16 * Double(channels) * Double(filters) <= Double(1 << 28) else {
                throw ValidationError("--batch x --size x --size x max(--channels, --filters) and 16 x --channels x --filters must be at most 2^28 values")
            }
        }

        func run() throws {
            BLAS.threads = 1
            for result in KernelBenchmark.convolution(batch: batch, size: size, channels: channels, filters: filters,
                                                      minimumSeconds: seconds) {
                if json {
                    print(#"{"op": "conv3x3 \#(result.label)", "gflops": \#(rounded(result.gflops))}"#)
                } else {
                    print(result.label.padding(toLength: 28, withPad: " ", startingAt: 0) + String(format: "%8.1f GFLOP/s", result.gflops))
                }
            }
        }
    }

    struct Ops: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "GB/s of elementwise ops and sum on 16M floats.")

        @Flag(help: "One JSON object per line.") var json = false
        @Option(help: "Elements per tensor.") var elements: Int = 16 * 1024 * 1024
        @Option(help: "Minimum seconds measured per op.") var seconds: Double = 0.5

        func validate() throws {
            guard elements > 0 else { throw ValidationError("--elements must be positive") }
            guard seconds > 0 else { throw ValidationError("--seconds must be positive") }
        }

        func run() throws {
            for result in KernelBenchmark.elementwise(elements: elements, minimumSeconds: seconds) {
                if json {
                    print(#"{"op": "\#(result.op)", "elements": \#(elements), "gbps": \#(rounded(result.gbps))}"#)
                } else {
                    print(result.op.padding(toLength: 10, withPad: " ", startingAt: 0) + String(format: "%8.2f GB/s", result.gbps))
                }
            }
        }
    }
}

extension Bench {
    struct CNN: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "cnn",
            abstract: "Training steps per second of the Keras MNIST CNN (forward and backward, one thread).")

        @Option(name: .customLong("batch-size"), help: "Samples per step.") var batchSize = 128
        @Option(help: "Minimum seconds measured.") var seconds: Double = 3
        @Flag(help: "One JSON object per line.") var json = false

        func validate() throws {
            guard batchSize >= 1 else { throw ValidationError("--batch-size must be at least 1") }
            guard seconds > 0 else { throw ValidationError("--seconds must be positive") }
        }

        func run() throws {
            BLAS.threads = 1
            let r = try ModelBenchmark.mnistCNNStep(batch: batchSize, minimumSeconds: seconds)
            if json {
                print(#"{"op": "mnist_cnn_train_step", "batch": \#(r.batch), "samples_per_second": \#(rounded(r.samplesPerSecond)), "conv_gflops": \#(rounded(r.convolutionGFLOPS)), "seconds_per_step": \#(r.secondsPerStep)}"#)
            } else {
                print(String(format: "MNIST CNN, batch %d: %.1f ms/step, %.0f samples/s, convolutions at %.1f GFLOP/s",
                             r.batch, r.secondsPerStep * 1000, r.samplesPerSecond, r.convolutionGFLOPS))
            }
        }
    }
}

func rounded(_ x: Double) -> Double { (x * 100).rounded() / 100 }

/// The process's peak resident set size in MiB: VmHWM from /proc/self/status, which starts
/// afresh at exec (getrusage's ru_maxrss keeps the peak of the process that launched loom).
func peakResidentMiB() -> Double {
    if let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8),
       let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmHWM:") }),
       let kib = Double(line.split(separator: " ").dropFirst().first ?? "") {
        return kib / 1024
    }
    var usage = rusage()
    getrusage(__rusage_who_t(RUSAGE_SELF.rawValue), &usage)
    return Double(usage.ru_maxrss) / 1024
}
