import ArgumentParser
import Foundation
import LoomData
import LoomLayers
import LoomModels
import LoomTensor

/// `loom demo`: end-to-end runs of the engine on bundled data.
struct Demo: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Train small models on the bundled datasets.",
        subcommands: [MNIST.self]
    )

    struct MNIST: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "mnist",
            abstract: "Train Keras's MNIST MLP (RMSprop) or CNN (Adam) with fit and report test accuracy.")

        /// Which of the two Keras MNIST models.
        enum Architecture: String, ExpressibleByArgument, CaseIterable {
            case mlp, cnn

            /// The Keras example model, its weights drawn from `seed`, compiled as Keras's
            /// example compiles it (RMSprop for the MLP, Adam for the CNN).
            func compiledModel(seed: UInt64, workers: Int?) throws -> Sequential {
                let net = try RandomSeeds.withSeed(seed) { self == .mlp ? try ExampleModels.mnistMLP() : try ExampleModels.mnistCNN() }
                net.seed = seed
                net.workers = workers
                try net.compile(optimizer: self == .mlp ? try RMSprop() : try Adam(),
                                loss: SparseCategoricalCrossentropy(), metrics: ["accuracy"])
                return net
            }
        }

        @Option(help: "Folder with the four MNIST IDX files (gzip or plain).") var data = "datasets/mnist"
        @Option(help: "mlp: 784-512-512-10 with dropout, RMSprop; cnn: the Keras MNIST convnet, Adam.")
        var model: Architecture = .mlp
        @Option(help: "Training epochs.") var epochs = 3
        @Option(name: .customLong("batch-size"), help: "Samples per step.") var batchSize = 128
        @Option(help: "Worker threads sharing each batch (default: $LOOM_WORKERS, else the cores).") var workers: Int?
        @Option(help: "Seed for initialization, dropout masks and shuffling.") var seed: UInt64 = 1
        @Option(help: "0 silent, 1 progress bar, 2 one line per epoch (default: bar on a terminal).") var verbose: Int?

        func validate() throws {
            guard epochs >= 1 else { throw ValidationError("--epochs must be at least 1, got \(epochs)") }
            guard batchSize >= 1 else { throw ValidationError("--batch-size must be at least 1, got \(batchSize)") }
            if let workers, workers < 1 { throw ValidationError("--workers must be at least 1, got \(workers)") }
        }

        func run() throws {
            let mnist: MNISTData
            do {
                mnist = try MNISTData(folder: data, flatten: model == .mlp)
            } catch {
                printError("loom demo mnist: \(error)")
                throw ExitCode(1)
            }
            let (x, trainLabels, xTest, testLabels) = (mnist.x, mnist.labels, mnist.xTest, mnist.testLabels)
            print("MNIST: \(x.shape[0]) training and \(xTest.shape[0]) test images from \(data)")
            do {
                let net = try model.compiledModel(seed: seed, workers: workers)
                let start = Date()
                try net.fit(x: x, y: trainLabels, batchSize: batchSize, epochs: epochs,
                            verbose: verbose.map(Verbosity.init) ?? .auto,
                            validationData: ValidationData(x: xTest, y: testLabels))
                let seconds = Date().timeIntervalSince(start)
                let result = try net.evaluate(x: xTest, y: testLabels, batchSize: 1000, verbose: .silent)
                print(String(format: "%@: test accuracy %.4f, test loss %.4f, %d epochs in %.1f s (%.0f samples/s with validation), %d workers",
                             model.rawValue, result["accuracy"] ?? .nan, result["loss"] ?? .nan, epochs, seconds,
                             Double(x.shape[0] * epochs) / seconds, try net.resolveWorkers(workers)))
            } catch {
                printError("loom demo mnist: \(error)")
                throw ExitCode(1)
            }
        }
    }
}

/// The four MNIST IDX files of a folder, scaled to [0, 1]: images flattened to 784 features,
/// or kept as 28x28x1.
struct MNISTData {
    let x: Tensor, labels: Tensor, xTest: Tensor, testLabels: Tensor

    init(folder: String, flatten: Bool) throws {
        func load(_ stem: String) throws -> Tensor {
            for name in [stem + ".gz", stem] where FileManager.default.fileExists(atPath: folder + "/" + name) {
                return try IDX.read(folder + "/" + name)
            }
            throw DataFileError(path: folder + "/" + stem + ".gz", message: "no such file")
        }
        // Scaled in place (each array has one owner here): the images are the largest arrays
        // the process holds.
        func scaled(_ stem: String) throws -> Tensor {
            var t = try load(stem)
            t.withUnsafeMutableBufferPointer { b in for i in b.indices { b[i] *= 1 / 255 } }
            return t
        }
        let trainImages = try scaled("train-images-idx3-ubyte"), trainLabels = try load("train-labels-idx1-ubyte")
        let testImages = try scaled("t10k-images-idx3-ubyte"), testLabels = try load("t10k-labels-idx1-ubyte")
        guard trainImages.shape.count == 3, trainImages.shape[0] == trainLabels.shape[0],
              testImages.shape.count == 3, testImages.shape[0] == testLabels.shape[0] else {
            throw DataFileError(path: folder, message: "image and label files do not match")
        }
        let (h, w) = (trainImages.shape[1], trainImages.shape[2])
        let shape = flatten ? [-1, h * w] : [-1, h, w, 1]
        x = trainImages.reshaped(shape)
        xTest = testImages.reshaped(shape)
        labels = trainLabels
        self.testLabels = testLabels
    }
}

/// Writes a line to standard error.
func printError(_ message: String) {
    FileHandle.standardError.write(Data((oneLine(message) + "\n").utf8))
}
