import Dispatch

/// Throughput measurements behind `loom bench`: best-of-repeats timing, so a noisy neighbour
/// on a shared machine lowers fewer samples than a mean would show.
public enum KernelBenchmark {
    public struct GemmResult: Sendable {
        public let label: String
        public let m: Int, n: Int, k: Int
        public let gflops: Double
    }

    public struct ConvolutionResult: Sendable {
        public let label: String
        /// The direct convolution's multiply-adds (x2) per second: the same count for both
        /// algorithms, so the figures compare their times.
        public let gflops: Double
    }

    public struct ElementwiseResult: Sendable {
        public let op: String
        public let gbps: Double
    }

    /// The shapes `loom bench gemm` measures: squares, and an MLP's layers (784-512-512-10)
    /// at batch 128, forward (x·W) and both backward products (dX = dY·Wᵀ, dW = Xᵀ·dY), then
    /// the same on one of two workers' shards (64 samples; half of dW's rows from each shard);
    /// then the MNIST CNN's 3x3 32 -> 64 convolution's products by im2col (one image's 576
    /// positions of 288 values at a time) and by Winograd (per chunk of tiles), and its Dense
    /// 9216 -> 128 on a shard.
    public static let gemmShapes: [(label: String, m: Int, n: Int, k: Int, ta: Bool, tb: Bool)] = {
        var shapes: [(String, Int, Int, Int, Bool, Bool)] = [256, 512, 1024, 2048].map { ("square", $0, $0, $0, false, false) }
        for (batch, workers) in [(128, 1), (64, 2)] {
            let suffix = workers == 1 ? "" : " (shard)"
            for (input, output) in [(784, 512), (512, 512), (512, 10)] {
                shapes.append(("dense \(input)->\(output) forward\(suffix)", batch, output, input, false, false))
                shapes.append(("dense \(input)->\(output) dX\(suffix)", batch, input, output, false, true))
                shapes.append(("dense \(input)->\(output) dW\(suffix)", input / workers, output, batch, true, false))
            }
        }
        shapes.append(("conv 3x3 32->64 forward (image)", 576, 64, 288, false, false))
        shapes.append(("conv 3x3 32->64 dX (image)", 576, 288, 64, false, true))
        shapes.append(("conv 3x3 32->64 dW (image)", 288, 64, 576, true, false))
        // The same convolution by Winograd F(2x2, 3x3): one of the 16 products of a chunk of
        // tiles, as `WinogradTiling.chunkTiles` sizes it (170 tiles of 2x2 outputs).
        let tiles = WinogradTiling(ConvolutionGeometry(input: [26, 26], channels: 32, kernel: [3, 3]), filters: 64)!.chunkTiles
        shapes.append(("winograd 32->64 forward (chunk)", tiles, 64, 32, false, false))
        shapes.append(("winograd 32->64 dX (chunk)", tiles, 32, 64, false, true))
        shapes.append(("winograd 32->64 dW (chunk)", 32, 64, tiles, true, false))
        shapes.append(("dense 9216->128 forward (shard)", 64, 128, 9216, false, false))
        shapes.append(("dense 9216->128 dX (shard)", 64, 9216, 128, false, true))
        shapes.append(("dense 9216->128 dW (shard)", 4608, 128, 64, true, false))
        return shapes
    }()

    /// Seconds per call of `body`, the best of repeated batches lasting `minimumSeconds` in all.
    public static func time(minimumSeconds: Double, _ body: () -> Void) -> Double {
        body() // warm up: first touch of buffers, library initialization
        var best = Double.infinity
        var spent = 0.0
        var calls = 1
        repeat {
            let start = DispatchTime.now().uptimeNanoseconds
            for _ in 0..<calls { body() }
            let elapsed = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
            best = min(best, elapsed / Double(calls))
            spent += elapsed
            if elapsed < 0.02 { calls *= 2 }
        } while spent < minimumSeconds
        return best
    }

    public static func gemm(minimumSeconds: Double) -> [GemmResult] {
        gemmShapes.map { s in
            let generator = RandomGenerator(seed: 1)
            let a = Tensor.randomUniform(s.ta ? [s.k, s.m] : [s.m, s.k], generator: generator, stream: 1)
            let b = Tensor.randomUniform(s.tb ? [s.n, s.k] : [s.k, s.n], generator: generator, stream: 2)
            var c = Tensor.zeros([s.m, s.n])
            let seconds = a.withUnsafeBufferPointer { pa in
                b.withUnsafeBufferPointer { pb in
                    c.withUnsafeMutableBufferPointer { pc in
                        time(minimumSeconds: minimumSeconds) {
                            BLAS.sgemm(transposeA: s.ta, transposeB: s.tb, m: s.m, n: s.n, k: s.k,
                                       a: pa.baseAddress!, b: pb.baseAddress!, c: pc.baseAddress!)
                        }
                    }
                }
            }
            return GemmResult(label: s.label, m: s.m, n: s.n, k: s.k, gflops: 2.0 * Double(s.m * s.n * s.k) / seconds / 1e9)
        }
    }

    /// GB/s counts the bytes each op must move: inputs read plus output written.
    public static func elementwise(elements n: Int, minimumSeconds: Double) -> [ElementwiseResult] {
        let generator = RandomGenerator(seed: 2)
        let a = Tensor.randomUniform([n], low: -1, high: 1, generator: generator, stream: 1)
        let b = Tensor.randomUniform([n], low: -1, high: 1, generator: generator, stream: 2)
        let bytes = Double(n * MemoryLayout<Float>.size)
        func measure(_ op: String, _ moved: Double, _ body: () -> Tensor) -> ElementwiseResult {
            var sink: Tensor? = nil
            let seconds = time(minimumSeconds: minimumSeconds) { sink = body() }
            precondition(sink != nil)
            return ElementwiseResult(op: op, gbps: moved * bytes / seconds / 1e9)
        }
        return [
            measure("add", 3) { a + b },
            measure("multiply", 3) { a * b },
            measure("relu", 2) { a.relu() },
            measure("exp", 2) { a.exp() },
            measure("sum", 1) { a.sum() },
        ]
    }

    /// A 3x3 "valid" convolution with ReLU over `batch` images of size x size x `channels` to
    /// `filters` (by default the MNIST CNN's second, 26x26x32 -> 24x24x64, on one of two
    /// workers' shards), forward and forward + backward, by im2col and, where it applies, by
    /// Winograd.
    public static func convolution(batch: Int = 64, size: Int = 26, channels: Int = 32, filters: Int = 64,
                                   minimumSeconds: Double) -> [ConvolutionResult] {
        let g = ConvolutionGeometry(input: [size, size], channels: channels, kernel: [3, 3])
        let out = size - 2
        let generator = RandomGenerator(seed: 3)
        let x = Tensor.randomUniform([batch, size, size, channels], low: 0, high: 1, generator: generator, stream: 1).requiringGradient()
        let w = Tensor.randomUniform([3, 3, channels, filters], low: -0.1, high: 0.1, generator: generator, stream: 2).requiringGradient()
        let b = Tensor.zeros([filters]).requiringGradient()
        let upstream = Tensor.randomUniform([batch, out, out, filters], low: -1, high: 1, generator: generator, stream: 3)
        let flops = 2.0 * Double(batch * out * out * filters * 9 * channels)
        var algorithms: [(String, () -> Tensor)] = [("im2col", { x.im2colConvolved(with: w, bias: b, relu: true, g) })]
        if let tiling = WinogradTiling(g, filters: filters) {
            algorithms.append(("winograd", { x.winogradConvolved(with: w, bias: b, relu: true, tiling) }))
        }
        return algorithms.flatMap { name, forward in
            var sink: [Tensor] = []
            let once = time(minimumSeconds: minimumSeconds) { sink = [forward()] }
            let trained = time(minimumSeconds: minimumSeconds) { sink = gradients(of: forward(), wrt: [x, w, b], seed: upstream) }
            precondition(!sink.isEmpty)
            return [ConvolutionResult(label: "\(name) forward", gflops: flops / once / 1e9),
                    ConvolutionResult(label: "\(name) forward + backward", gflops: 3 * flops / trained / 1e9)]
        }
    }
}
