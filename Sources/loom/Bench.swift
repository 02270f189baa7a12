import ArgumentParser
import Foundation
import LoomModels
import LoomTensor

/// `loom bench`: kernel throughput on this machine.
struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Measure kernel throughput.",
        subcommands: [Gemm.self, Ops.self, CNN.self]
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
                    print("sgemm \(result.label.padding(toLength: 26, withPad: " ", startingAt: 0)) \(result.m)x\(result.n)x\(result.k)".padding(toLength: 50, withPad: " ", startingAt: 0)
                          + String(format: "%8.1f GFLOP/s", result.gflops))
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

private func rounded(_ x: Double) -> Double { (x * 100).rounded() / 100 }
