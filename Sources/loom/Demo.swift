import ArgumentParser
import Foundation
import LoomData
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
            abstract: "Train a 784-128-10 ReLU perceptron on MNIST and report test accuracy.")

        @Option(help: "Folder with the four MNIST IDX files (gzip or plain).") var data = "datasets/mnist"
        @Option(help: "Training epochs.") var epochs = 3
        @Option(name: .customLong("batch-size"), help: "Samples per step.") var batchSize = 128
        @Option(name: .customLong("hidden"), help: "Hidden units.") var hidden = 128
        @Option(name: .customLong("learning-rate"), help: "SGD learning rate (momentum 0.9).") var learningRate: Float = 0.05
        @Option(help: "Seed for initialization and shuffling.") var seed: UInt64 = 1

        func validate() throws {
            guard epochs >= 1 else { throw ValidationError("--epochs must be at least 1, got \(epochs)") }
            guard batchSize >= 1 else { throw ValidationError("--batch-size must be at least 1, got \(batchSize)") }
            guard hidden >= 1 else { throw ValidationError("--hidden must be at least 1, got \(hidden)") }
            guard learningRate > 0 else { throw ValidationError("--learning-rate must be positive") }
        }

        func load(_ stem: String) throws -> Tensor {
            for name in [stem + ".gz", stem] where FileManager.default.fileExists(atPath: data + "/" + name) {
                return try IDX.read(data + "/" + name)
            }
            throw DataFileError(path: data + "/" + stem + ".gz", message: "no such file")
        }

        func run() throws {
            let trainImages: Tensor, trainLabels: Tensor, testImages: Tensor, testLabels: Tensor
            do {
                trainImages = try load("train-images-idx3-ubyte")
                trainLabels = try load("train-labels-idx1-ubyte")
                testImages = try load("t10k-images-idx3-ubyte")
                testLabels = try load("t10k-labels-idx1-ubyte")
            } catch {
                printError("loom demo mnist: \(error)")
                throw ExitCode(1)
            }
            guard trainImages.shape.count == 3, trainImages.shape[0] == trainLabels.shape[0],
                  testImages.shape.count == 3, testImages.shape[0] == testLabels.shape[0] else {
                printError("loom demo mnist: image and label files in \(data) do not match")
                throw ExitCode(1)
            }
            let features = trainImages.shape[1] * trainImages.shape[2]
            let x = trainImages.reshaped([-1, features]) / 255
            let xTest = testImages.reshaped([-1, features]) / 255
            print("MNIST: \(x.shape[0]) training and \(xTest.shape[0]) test images from \(data)")
            let model = MLPClassifier(sizes: [features, hidden, 10], seed: seed)
            model.train(x: x, labels: trainLabels, epochs: epochs, batchSize: batchSize,
                        learningRate: learningRate, seed: seed) { r in
                print(String(format: "epoch %d/%d  loss %.4f  %.1f s  %.0f samples/s", r.epoch, epochs, r.meanLoss,
                             r.seconds, Double(x.shape[0]) / r.seconds))
            }
            print(String(format: "test accuracy %.4f", model.accuracy(x: xTest, labels: testLabels)))
        }
    }
}

/// Writes a line to standard error.
func printError(_ message: String) {
    FileHandle.standardError.write(Data((message + "\n").utf8))
}
